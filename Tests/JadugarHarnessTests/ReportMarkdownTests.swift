import Foundation
import JadugarHarness
import Testing

@Suite("Markdown report")
struct ReportMarkdownTests {
    static let markdown = MarkdownReport.render(ReportFixture.report())

    @Test("has the summary, environment, workload and conformance sections")
    func sections() {
        for heading in ["# Jadugar run `20261129T034501Z-4f2a`", "## Summary", "## Environment", "## Workloads", "### `throughput[size=1024]`", "## Conformance", "### Failures and skips"] {
            #expect(Self.markdown.contains(heading + "\n"), "\(heading)")
        }
        for table in ["**Rates**", "**Totals**", "**Latency (ms)**", "**Rate vs latency sweep**", "**Maximum sustainable rate**"] {
            #expect(Self.markdown.contains(table), "\(table)")
        }
    }

    @Test("brokers of one workload are rows of the same tables")
    func sideBySide() throws {
        let section = try #require(Self.markdown.components(separatedBy: "### `throughput[size=1024]`").last?.components(separatedBy: "### ").first)
        let rates = try #require(section.components(separatedBy: "**Totals**").first)
        for broker in ["memory", "redis", "rabbitmq", "kafka"] {
            #expect(rates.contains("| `\(broker)` |"), "\(broker)")
        }
        // Three latency rows per broker: publish, end-to-end, publish delay.
        #expect(section.components(separatedBy: "| `redis` | end-to-end |").count == 2)
    }

    @Test("latencies are in milliseconds")
    func milliseconds() throws {
        let report = ReportFixture.report()
        let redis = try #require(report.workloads.first { $0.broker == "redis" })
        let p99 = try #require(redis.endToEndLatency.percentiles["p99"])
        let expected = String(format: "%.2f", p99 / 1000)
        #expect(Self.markdown.contains(expected) || Self.markdown.contains(String(format: "%.1f", p99 / 1000)))
    }

    @Test("the conformance matrix marks passed, failed and skipped, and lists reasons")
    func conformance() {
        #expect(Self.markdown.contains("| Scenario | `memory` | `redis` |"))
        #expect(Self.markdown.contains("| `groups.rebalance` | ✅ | ❌ |"))
        #expect(Self.markdown.contains("| `reconnect.broker-restart` | ⏭ | ✅ |"))
        #expect(Self.markdown.contains("- ❌ `redis` `groups.rebalance`: expected 1000 deliveries"))
        #expect(Self.markdown.contains("- ⏭ `memory` `reconnect.broker-restart`: the embedded broker cannot be restarted"))
    }

    @Test("untrusted text cannot break a table or inject markup")
    func escaping() {
        var report = ReportFixture.report()
        report.environment.brokers[1].url = "redis://x|y@host/<img src=x onerror=alert(1)>"
        report.conformance[1].scenarios[0].status = "failed"
        report.conformance[1].scenarios[0].reason = "bad | reason\nwith <script>alert(1)</script> and `code`"
        let markdown = MarkdownReport.render(report)
        // Outside code spans (which Markdown shows verbatim) every `<` of the untrusted text is
        // backslash-escaped, so it is shown as text too.
        let prose = markdown.replacingOccurrences(of: "`[^`\n]*`", with: "", options: .regularExpression)
        #expect(prose.range(of: #"(?<!\\)<(script|img)"#, options: .regularExpression) == nil)
        #expect(markdown.contains("`redis://x\\|y@host/<img src=x onerror=alert(1)>`"))
        #expect(markdown.contains("bad \\| reason with \\<script\\>"))
        for line in markdown.split(separator: "\n") where line.hasPrefix("|") {
            #expect(line.hasSuffix("|"), "\(line)")
        }
    }

    @Test("lost and errors stand out")
    func flagsBadCounts() {
        var report = ReportFixture.minimalReport()
        report.workloads[0].summary.lost = 3
        #expect(MarkdownReport.render(report).contains("**3** ⚠️"))
    }
}
