import Histogram

extension LatencyDistribution {
    /// The highest latency a report histogram tracks: one hour, in microseconds.
    ///
    /// Larger values are clamped to it when a distribution is turned back into a histogram.
    public static let highestTrackableMicroseconds: UInt64 = 3_600_000_000

    /// The percentile (0–100) that each key of ``percentileKeys`` names.
    ///
    /// ```swift
    /// LatencyDistribution.percentileValue(of: "p99.9") // 99.9
    /// ```
    ///
    /// - Parameter key: A key such as `p50` or `p99.99`.
    /// - Returns: The percentile, or `nil` when the key is not of the form `p<number>`.
    public static func percentileValue(of key: String) -> Double? {
        guard key.first == "p", let value = Double(key.dropFirst()), (0...100).contains(value) else { return nil }
        return value
    }

    /// Summarises a histogram of microsecond latencies: count, the fixed percentiles, max, mean and
    /// the non-empty buckets.
    ///
    /// The runner records each latency in microseconds into a `Histogram<UInt64>` and calls this
    /// once per workload. The buckets are kept as `[value, count]` pairs, where `value` is the
    /// highest value equivalent to the bucket, so ``makeHistogram()`` rebuilds the same counts and
    /// reports from several workers merge without loss.
    ///
    /// ```swift
    /// var histogram = Histogram<UInt64>(highestTrackableValue: LatencyDistribution.highestTrackableMicroseconds)
    /// histogram.record(1_250)
    /// let distribution = LatencyDistribution(histogram: histogram)
    /// print(distribution.percentiles["p99"] ?? 0)
    /// ```
    ///
    /// - Parameter histogram: Latencies in microseconds.
    public init(histogram: Histogram<UInt64>) {
        guard histogram.totalCount > 0 else {
            self = .empty
            return
        }
        var percentiles: [String: Double] = [:]
        for key in Self.percentileKeys {
            if let percentile = Self.percentileValue(of: key) {
                percentiles[key] = Double(histogram.valueAtPercentile(percentile))
            }
        }
        var buckets: [[UInt64]] = []
        for bucket in histogram.recordedValues() {
            buckets.append([bucket.value, bucket.count])
        }
        self.init(
            count: histogram.totalCount,
            percentiles: percentiles,
            max: Double(histogram.maxRecorded),
            mean: histogram.mean,
            histogram: buckets
        )
    }

    /// Rebuilds the histogram from ``histogram``'s `[value, count]` pairs.
    ///
    /// The result uses three significant digits and tracks up to
    /// ``highestTrackableMicroseconds``; larger values are clamped. The bucket that holds ``max``
    /// is recorded at ``max`` itself, so the rebuilt histogram's percentiles equal those of the
    /// histogram the distribution was made from.
    ///
    /// ```swift
    /// var merged = a.makeHistogram()
    /// merged.add(b.makeHistogram())
    /// let combined = LatencyDistribution(histogram: merged)
    /// ```
    ///
    /// - Returns: A histogram of microsecond latencies.
    public func makeHistogram() -> Histogram<UInt64> {
        var result = Histogram<UInt64>(
            lowestDiscernibleValue: 1,
            highestTrackableValue: Self.highestTrackableMicroseconds,
            numberOfSignificantValueDigits: .three
        )
        let maxValue = Swift.min(UInt64(Swift.max(max, 0)), Self.highestTrackableMicroseconds)
        for pair in histogram where pair.count == 2 && pair[1] > 0 {
            var value = Swift.min(pair[0], Self.highestTrackableMicroseconds)
            // Recording the top bucket at the true maximum keeps `maxRecorded`, and with it the
            // histogram's upper percentiles, exact; the bucket's counts are the same either way.
            if maxValue > 0, result.valuesAreEquivalent(value, maxValue) {
                value = maxValue
            }
            result.record(value, count: pair[1])
        }
        return result
    }
}
