import Foundation
import JadugarHarness
import Testing

@Suite("Comparing a run with a baseline")
struct ReportComparisonTests {
    static let baseline = ReportFixture.report(runID: "baseline")

    static func modified(_ change: (inout WorkloadResult) -> Void, where predicate: (WorkloadResult) -> Bool = { $0.broker == "redis" && $0.name == "throughput[size=1024]" }) -> RunReport {
        var report = baseline
        report.runID = "new"
        for index in report.workloads.indices where predicate(report.workloads[index]) {
            change(&report.workloads[index])
        }
        return report
    }

    /// Every latency of a distribution multiplied by `factor`, through its histogram, as a slower
    /// build would record them.
    static func scaled(_ distribution: LatencyDistribution, by factor: Double) -> LatencyDistribution {
        var values: [UInt64] = []
        for pair in distribution.histogram {
            values += Array(repeating: UInt64((Double(pair[0]) * factor).rounded()), count: Int(pair[1]))
        }
        return LatencyDistribution(histogram: ReportFixture.histogram(values))
    }

    @Test("identical reports pass")
    func identical() {
        let comparison = ReportComparison(baseline: Self.baseline, new: Self.baseline)
        #expect(!comparison.hasRegression)
        #expect(comparison.failures.isEmpty)
        #expect(comparison.renderText().contains("PASS: no regressions."))
        #expect(comparison.rows.contains { $0.metric == "end-to-end p99" && $0.verdict == .ok })
    }

    @Test("a 20% throughput regression fails")
    func throughputRegression() throws {
        let new = Self.modified { $0.summary.publishRate *= 0.8 }
        let comparison = ReportComparison(baseline: Self.baseline, new: new)
        #expect(comparison.hasRegression)
        let failure = try #require(comparison.failures.first)
        #expect(comparison.failures.count == 1)
        #expect(failure.broker == "redis" && failure.metric == "publish rate" && failure.verdict == .regressed)
        #expect(abs((failure.change ?? 0) + 0.2) < 1e-9)
        #expect(failure.reason.contains("−20.0%"))
        #expect(comparison.renderText().contains("REGRESSED"))
        #expect(comparison.renderText().contains("FAIL: 1 regression"))
    }

    @Test("a 20% consume-rate regression fails")
    func consumeRegression() {
        let new = Self.modified { $0.summary.consumeRate *= 0.8 }
        #expect(ReportComparison(baseline: Self.baseline, new: new).failures.map(\.metric) == ["consume rate"])
    }

    @Test("a 20% p99 end-to-end latency regression fails")
    func latencyRegression() throws {
        let new = Self.modified { $0.endToEndLatency = Self.scaled($0.endToEndLatency, by: 1.2) }
        let comparison = ReportComparison(baseline: Self.baseline, new: new)
        #expect(comparison.hasRegression)
        #expect(comparison.failures.map(\.metric) == ["end-to-end p99"])
        let change = try #require(comparison.failures.first?.change)
        #expect(change > 0.19 && change < 0.21)
    }

    @Test("a 20% p99 publish latency regression fails")
    func publishLatencyRegression() {
        let new = Self.modified { $0.publishLatency.percentiles["p99"] = ($0.publishLatency.percentiles["p99"] ?? 0) * 1.2 }
        #expect(ReportComparison(baseline: Self.baseline, new: new).failures.map(\.metric) == ["publish p99"])
    }

    @Test("p50 and p99.9 changes are reported but do not gate")
    func contextOnly() {
        let new = Self.modified { $0.endToEndLatency.percentiles["p50"] = ($0.endToEndLatency.percentiles["p50"] ?? 0) * 2 }
        let comparison = ReportComparison(baseline: Self.baseline, new: new)
        #expect(!comparison.hasRegression)
        #expect(comparison.rows.contains { $0.metric == "end-to-end p50" && $0.verdict == .info && ($0.change ?? 0) > 0.99 })
        #expect(comparison.rows.contains { $0.metric == "end-to-end p99.9" })
    }

    @Test("an improvement passes")
    func improvement() {
        let new = Self.modified { result in
            result.summary.publishRate *= 1.5
            result.summary.consumeRate *= 1.5
            result.endToEndLatency = Self.scaled(result.endToEndLatency, by: 0.5)
        }
        let comparison = ReportComparison(baseline: Self.baseline, new: new)
        #expect(!comparison.hasRegression)
        #expect(comparison.rows.filter { $0.verdict == .improved }.map(\.metric).sorted() == ["consume rate", "end-to-end p99", "publish rate"])
    }

    @Test("any lost message fails, even when the baseline lost as many")
    func lost() throws {
        var baseline = Self.baseline
        baseline.workloads[0].summary.lost = 5
        let new = Self.modified({ $0.summary.lost = 1 }, where: { $0.broker == "kafka" })
        let comparison = ReportComparison(baseline: baseline, new: new)
        #expect(comparison.hasRegression)
        #expect(comparison.failures.allSatisfy { $0.metric == "lost" && $0.broker == "kafka" && $0.verdict == .failed })
        #expect(comparison.failures.count == new.workloads.filter { $0.broker == "kafka" }.count)
        #expect(comparison.failures.first?.reason == "1 confirmed message was never delivered")
    }

    @Test("a workload missing from the new run fails; a new one is listed")
    func missing() {
        var new = Self.baseline
        new.workloads.removeAll { $0.broker == "rabbitmq" && $0.name == "throughput[size=1024]" }
        new.workloads.append(ReportFixture.workload("brand-new", ReportFixture.profiles[0], parameters: [:]))
        let comparison = ReportComparison(baseline: Self.baseline, new: new)
        #expect(comparison.failures.map(\.broker) == ["rabbitmq"])
        #expect(comparison.failures.first?.metric == "workload")
        #expect(comparison.rows.contains { $0.workload == "brand-new" && $0.verdict == .info })
    }

    @Test("thresholds are configurable: a 20% drop passes at 25% and fails at 15%")
    func thresholds() {
        let new = Self.modified { result in
            result.summary.publishRate *= 0.8
            result.endToEndLatency = Self.scaled(result.endToEndLatency, by: 1.2)
        }
        #expect(!ReportComparison(baseline: Self.baseline, new: new, thresholds: .init(throughput: 0.25, latency: 0.25)).hasRegression)
        let onlyLatency = ReportComparison(baseline: Self.baseline, new: new, thresholds: .init(throughput: 0.25, latency: 0.15))
        #expect(onlyLatency.failures.map(\.metric) == ["end-to-end p99"])
    }

    @Test("a drop exactly at the threshold passes; just beyond fails")
    func boundary() {
        let at = Self.modified { $0.summary.publishRate *= 0.9 }
        #expect(!ReportComparison(baseline: Self.baseline, new: at).hasRegression)
        let beyond = Self.modified { $0.summary.publishRate *= 0.899 }
        #expect(ReportComparison(baseline: Self.baseline, new: beyond).hasRegression)
    }

    @Test("the Markdown table escapes names and shows the verdict")
    func markdown() {
        var new = Self.modified { $0.summary.publishRate *= 0.5 }
        new.workloads[0].name = "evil|name"
        var baseline = Self.baseline
        baseline.workloads[0].name = "evil|name"
        let markdown = ReportComparison(baseline: baseline, new: new).renderMarkdown()
        #expect(markdown.contains("`evil\\|name`"))
        #expect(markdown.contains("❌ REGRESSED"))
        #expect(markdown.contains("**FAIL: 1 regression"))
    }
}
