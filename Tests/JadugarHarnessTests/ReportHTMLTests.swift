import Foundation
import JadugarHarness
import Testing

@Suite("HTML report")
struct ReportHTMLTests {
    static let html = HTMLReport.render(ReportFixture.report())

    @Test("is one self-contained document: no scripts, no external resources")
    func selfContained() throws {
        #expect(Self.html.hasPrefix("<!DOCTYPE html>"))
        #expect(Self.html.contains("Content-Security-Policy"))
        #expect(!Self.html.lowercased().contains("<script"))
        #expect(!Self.html.contains("<link"))
        #expect(!Self.html.contains("src=\""))
        // The only URL is the SVG namespace (the fixture's broker URLs are not http).
        let urls = Self.html.components(separatedBy: "://").dropLast().map { String($0.suffix(16)) }
        let external = urls.filter { !$0.hasSuffix("xmlns=\"http") && !$0.hasSuffix("memory") && !$0.hasSuffix("redis") && !$0.hasSuffix("amqp") && !$0.hasSuffix("kafka") }
        #expect(external.isEmpty, "\(external)")

        // Written as a sample when asked, for a look in a browser.
        if let folder = ProcessInfo.processInfo.environment["JADUGAR_REPORT_SAMPLE_DIR"] {
            try ReportWriter.write(ReportFixture.report(), into: URL(fileURLWithPath: folder))
        }
    }

    @Test("draws every chart for a workload with time series, histograms and a sweep")
    func charts() throws {
        for title in [
            "Publish rate by broker", "End-to-end p99 latency by broker",
            "Publish and consume rate over time", "p99 latency over time", "Backlog over time (published, not yet delivered)",
            "Latency by percentile", "End-to-end latency vs achieved rate (sweep)",
            "End-to-end latency vs achieved rate (rate search probes)",
        ] {
            let found = Self.html.contains(">\(title)<")
            #expect(found, "\(title)")
        }
        #expect(Self.html.components(separatedBy: "<svg").count - 1 >= 2 + 4 * 4 + 1)
        for tick in ["99%", "99.9%", "99.99%", "99.999%"] {
            let found = Self.html.contains(">\(tick)<")
            #expect(found, "\(tick)")
        }
        #expect(Self.html.contains("warm-up"))
        #expect(Self.html.contains("messages per second"))
        #expect(Self.html.contains("(ms, log scale)"))
    }

    @Test("each broker keeps one colour")
    func colours() {
        #expect(Self.html.contains(">redis end-to-end<"))
        #expect(Self.html.contains("<span class=\"swatch\" style=\"background:#0072B2\"></span>memory"))
        #expect(Self.html.contains("<span class=\"swatch\" style=\"background:#E69F00\"></span>redis"))
    }

    @Test("untrusted text is escaped everywhere")
    func escaping() {
        var report = ReportFixture.report()
        let attack = "\"><script>alert(1)</script><img src=x onerror=alert(2)>"
        report.runID = "run-1"
        report.environment.brokers[1].url = "redis://\(attack)"
        report.environment.hostname = attack
        report.workloads[0].name = attack
        report.workloads[1].broker = attack
        report.conformance[1].url = attack
        report.conformance[1].scenarios[0].status = "failed"
        report.conformance[1].scenarios[0].reason = attack
        report.scenario?.content = "</pre>\(attack)"
        let html = HTMLReport.render(report)
        #expect(!html.contains("<script"))
        #expect(!html.contains("<img"))
        #expect(!html.contains("onerror=alert(2)>"))
        #expect(html.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"))
    }

    @Test("a report without workloads or conformance still renders")
    func empty() {
        var report = ReportFixture.minimalReport()
        report.workloads = []
        let html = HTMLReport.render(report)
        #expect(html.contains("Environment"))
        #expect(html.hasSuffix("</html>\n"))
    }
}
