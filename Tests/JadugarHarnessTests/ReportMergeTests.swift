import Foundation
import Histogram
import JadugarHarness
import Testing

@Suite("Merging worker reports")
struct ReportMergeTests {
    /// Splits one fixture report into two workers' reports: latencies split value by value, counters
    /// split unevenly, so only an exact merge gives back the whole.
    static func halves(of values: [UInt64]) -> (LatencyDistribution, LatencyDistribution) {
        let first = values.enumerated().filter { $0.offset % 3 == 0 }.map(\.element)
        let second = values.enumerated().filter { $0.offset % 3 != 0 }.map(\.element)
        return (
            LatencyDistribution(histogram: ReportFixture.histogram(first)),
            LatencyDistribution(histogram: ReportFixture.histogram(second))
        )
    }

    static func worker(_ base: WorkloadResult, summary: WorkloadSummary, endToEnd: LatencyDistribution, publish: LatencyDistribution) -> WorkloadResult {
        var result = base
        result.summary = summary
        result.endToEndLatency = endToEnd
        result.publishLatency = publish
        return result
    }

    @Test("merging two halves gives the percentiles of one histogram of all values")
    func percentilesExact() throws {
        let values = ReportFixture.latencies(count: 40_000, median: 900, seed: 21)
        let whole = LatencyDistribution(histogram: ReportFixture.histogram(values))
        let (a, b) = Self.halves(of: values)
        let merged = ReportMerge.merge([a, b])
        #expect(merged.count == whole.count)
        #expect(merged.percentiles == whole.percentiles)
        #expect(merged.max == whole.max)
        #expect(merged.histogram == whole.histogram)
        let exactMean = Double(values.reduce(0, +)) / Double(values.count)
        #expect(abs(merged.mean - exactMean) / exactMean < 0.001)
    }

    @Test("merged reports have exact totals and rates recomputed over the longest duration")
    func totalsExact() throws {
        let base = ReportFixture.report().workloads[1]
        let values = ReportFixture.latencies(count: 30_000, median: 700, seed: 22)
        let (e2eA, e2eB) = Self.halves(of: values)
        let (pubA, pubB) = Self.halves(of: ReportFixture.latencies(count: 30_000, median: 300, seed: 23))
        let summaryA = WorkloadSummary(
            published: 600_010, confirmed: 600_000, delivered: 599_990, duplicates: 3, lost: 10, errors: 10,
            durationSeconds: 60, publishRate: 10_000, consumeRate: 9_999.83, bytesPerSecond: 10_240_000,
            targetRate: 10_000, cpuSeconds: 30, peakRSSBytes: 100, runnerOverheadNanosPerMessage: 400
        )
        let summaryB = WorkloadSummary(
            published: 1_240_000, confirmed: 1_239_999, delivered: 1_239_999, duplicates: 0, lost: 0, errors: 1,
            durationSeconds: 62, publishRate: 20_000, consumeRate: 20_000, bytesPerSecond: 20_480_000,
            targetRate: 20_000, cpuSeconds: 50, peakRSSBytes: 300, runnerOverheadNanosPerMessage: 500
        )
        var reportA = ReportFixture.report(runID: "worker-a")
        var reportB = ReportFixture.report(runID: "worker-b")
        reportA.workloads = [Self.worker(base, summary: summaryA, endToEnd: e2eA, publish: pubA)]
        reportB.workloads = [Self.worker(base, summary: summaryB, endToEnd: e2eB, publish: pubB)]
        reportB.environment.hostname = "ci-runner-8"

        let merged = try ReportMerge.merge([reportA, reportB])
        let result = try #require(merged.workloads.first)
        #expect(merged.workloads.count == 1)
        #expect(merged.runID == "worker-a-merged")
        #expect(result.summary.published == 1_840_010)
        #expect(result.summary.confirmed == 1_839_999)
        #expect(result.summary.delivered == 1_839_989)
        #expect(result.summary.duplicates == 3)
        #expect(result.summary.lost == 10)
        #expect(result.summary.errors == 11)
        #expect(result.summary.durationSeconds == 62)
        #expect(result.summary.publishRate == 1_839_999.0 / 62)
        #expect(result.summary.consumeRate == 1_839_989.0 / 62)
        #expect(abs(result.summary.bytesPerSecond - (10_240_000.0 * 60 + 20_480_000.0 * 62) / 62) < 1e-6)
        #expect(result.summary.targetRate == 30_000)
        #expect(result.summary.cpuSeconds == 80)
        #expect(result.summary.peakRSSBytes == 300)
        #expect(result.parameters["workers"] == "2")
        #expect(result.endToEndLatency.count == 30_000)
        #expect(result.endToEndLatency.percentiles == LatencyDistribution(histogram: ReportFixture.histogram(values)).percentiles)
        #expect(merged.environment.hostname == "ci-runner-7, ci-runner-8")
        #expect(merged.environment.cores == 4)
    }

    @Test("time series are aligned by time and summed; p99s take the worst worker")
    func timeSeries() throws {
        var a = ReportFixture.report().workloads[0]
        var b = a
        a.timeSeries = [
            TimeSample(time: 0, publishRate: 100, consumeRate: 90, errorRate: 0, backlog: 10, publishP99: 500, endToEndP99: 900),
            TimeSample(time: 1, publishRate: 110, consumeRate: 100, errorRate: 1, backlog: 20, publishP99: 600, endToEndP99: 1_000),
        ]
        // The second worker sampled a few milliseconds off the first's clock, and one interval longer.
        b.timeSeries = [
            TimeSample(time: 0.004, publishRate: 50, consumeRate: 50, errorRate: 0, backlog: 0, publishP99: 700, endToEndP99: 800),
            TimeSample(time: 1.003, publishRate: 60, consumeRate: 55, errorRate: 0, backlog: 5, publishP99: 400, endToEndP99: 1_200),
            TimeSample(time: 2.001, publishRate: 70, consumeRate: 70, errorRate: 0, backlog: 5, publishP99: 400, endToEndP99: 700),
        ]
        let merged = ReportMerge.merge([a, b]).timeSeries
        #expect(merged.map(\.time) == [0, 1, 2])
        #expect(merged.map(\.publishRate) == [150, 170, 70])
        #expect(merged.map(\.consumeRate) == [140, 155, 70])
        #expect(merged.map(\.backlog) == [10, 25, 5])
        #expect(merged.map(\.errorRate) == [0, 1, 0])
        #expect(merged.map(\.publishP99) == [700, 600, 400])
        #expect(merged.map(\.endToEndP99) == [900, 1_200, 700])
    }

    @Test("different workloads and brokers stay apart; order is kept")
    func keepsApart() throws {
        let report = ReportFixture.report()
        let merged = try ReportMerge.merge([report, report])
        #expect(merged.workloads.map(\.name) == report.workloads.map(\.name))
        #expect(merged.workloads.map(\.broker) == report.workloads.map(\.broker))
        for (single, double) in zip(report.workloads, merged.workloads) {
            #expect(double.summary.confirmed == single.summary.confirmed * 2)
            #expect(double.endToEndLatency.count == single.endToEndLatency.count * 2)
            #expect(double.endToEndLatency.percentiles == single.endToEndLatency.percentiles)
            #expect(double.summary.publishRate == single.summary.publishRate * 2)
        }
        #expect(merged.environment.cores == report.environment.cores)
    }

    @Test("conformance results combine scenario by scenario; a failure anywhere fails")
    func conformance() throws {
        var a = ReportFixture.report(runID: "a")
        var b = ReportFixture.report(runID: "b")
        a.conformance = [ReportFixture.conformance(broker: "redis", url: "redis://", failing: [], skipped: [:])]
        b.conformance = [ReportFixture.conformance(broker: "redis", url: "redis://", failing: ["retry.exponential-backoff"], skipped: [:])]
        let merged = try ReportMerge.merge([a, b])
        let suite = try #require(merged.conformance.first)
        #expect(merged.conformance.count == 1)
        let retry = try #require(suite.scenarios.first { $0.scenario == "retry.exponential-backoff" })
        #expect(retry.status == "failed")
        #expect(retry.lost == 3)
        #expect(suite.scenarios.filter { $0.status == "failed" }.count == 1)
    }

    @Test("nothing to merge, or mixed format versions, is an error")
    func errors() throws {
        #expect(throws: ReportError.self) { try ReportMerge.merge([RunReport]()) }
        var old = ReportFixture.minimalReport()
        old.schemaVersion = "0.9"
        let error = try #require(throws: ReportError.self) { try ReportMerge.merge([ReportFixture.minimalReport(), old]) }
        #expect(error.code == .cannotMerge)
    }

    @Test("a merged report survives JSON and loads back equal")
    func roundTripsThroughJSON() throws {
        let merged = try ReportMerge.merge([ReportFixture.report(runID: "a"), ReportFixture.report(runID: "b")])
        let decoded = try RunReport.decoder.decode(RunReport.self, from: merged.encoded())
        #expect(decoded == merged)
    }
}
