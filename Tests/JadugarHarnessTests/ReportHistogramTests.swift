import Foundation
import Histogram
import JadugarHarness
import Testing

@Suite("LatencyDistribution and Histogram")
struct ReportHistogramTests {
    @Test("a distribution summarises its histogram: count, percentiles, max, mean, buckets")
    func summarises() throws {
        let values = ReportFixture.latencies(count: 50_000, median: 800, seed: 11)
        let histogram = ReportFixture.histogram(values)
        let distribution = LatencyDistribution(histogram: histogram)
        #expect(distribution.count == 50_000)
        #expect(distribution.max == Double(values.max() ?? 0))
        #expect(Set(distribution.percentiles.keys) == Set(LatencyDistribution.percentileKeys))
        #expect(distribution.percentiles["p99"] == Double(histogram.valueAtPercentile(99)))
        #expect(distribution.percentiles["p99.99"] == Double(histogram.valueAtPercentile(99.99)))
        #expect(distribution.histogram.reduce(0) { $0 + $1[1] } == 50_000)
        #expect(distribution.histogram.map { $0[0] } == distribution.histogram.map { $0[0] }.sorted())
        let exactMean = Double(values.reduce(0, +)) / Double(values.count)
        #expect(abs(distribution.mean - exactMean) / exactMean < 0.001)
    }

    @Test("makeHistogram rebuilds the same histogram: every percentile, count and max equal")
    func roundTrip() throws {
        let histogram = ReportFixture.histogram(ReportFixture.latencies(count: 30_000, median: 2_000, seed: 12))
        let distribution = LatencyDistribution(histogram: histogram)
        let rebuilt = distribution.makeHistogram()
        #expect(rebuilt.totalCount == histogram.totalCount)
        #expect(rebuilt.maxRecorded == histogram.maxRecorded)
        for percentile in [0.0, 1, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 99.999, 100] {
            #expect(rebuilt.valueAtPercentile(percentile) == histogram.valueAtPercentile(percentile), "p\(percentile)")
        }
        #expect(LatencyDistribution(histogram: rebuilt) == distribution)
    }

    @Test("an empty histogram gives the empty distribution, and back")
    func empty() {
        let distribution = LatencyDistribution(histogram: Histogram<UInt64>(highestTrackableValue: 1_000_000))
        #expect(distribution == .empty)
        #expect(distribution.makeHistogram().totalCount == 0)
    }

    @Test("values above an hour are clamped, not dropped; zero is kept")
    func clamps() {
        let distribution = LatencyDistribution(count: 3, percentiles: [:], max: 7_200_000_000, mean: 0, histogram: [[0, 1], [5, 1], [7_200_000_000, 1]])
        let histogram = distribution.makeHistogram()
        #expect(histogram.totalCount == 3)
        #expect(histogram.countForValue(0) == 1)
        #expect(histogram.valuesAreEquivalent(histogram.maxRecorded, LatencyDistribution.highestTrackableMicroseconds))
    }

    @Test("percentile keys parse to numbers", arguments: [("p50", 50.0), ("p99.9", 99.9), ("p99.99", 99.99)])
    func percentileKeys(key: String, value: Double) {
        #expect(LatencyDistribution.percentileValue(of: key) == value)
    }

    @Test("malformed percentile keys are rejected")
    func badKeys() {
        #expect(LatencyDistribution.percentileValue(of: "50") == nil)
        #expect(LatencyDistribution.percentileValue(of: "p101") == nil)
        #expect(LatencyDistribution.percentileValue(of: "max") == nil)
    }
}
