/// How much worse a new run may be than its baseline before ``ReportComparison`` calls it a
/// regression.
///
/// Both are fractions: `0.1` allows a 10% throughput drop and a 10% latency rise.
///
/// ```swift
/// let strict = ComparisonThresholds(throughput: 0.05, latency: 0.2)
/// let comparison = ReportComparison(baseline: old, new: new, thresholds: strict)
/// ```
public struct ComparisonThresholds: Sendable, Equatable {
    /// The largest allowed relative drop of publish and consume rate.
    ///
    /// Default: `0.1` (a new rate below 90% of the baseline's is a regression).
    public var throughput: Double
    /// The largest allowed relative rise of p99 publish and end-to-end latency.
    ///
    /// Default: `0.1` (a new p99 above 110% of the baseline's is a regression).
    public var latency: Double

    /// Creates thresholds.
    ///
    /// - Parameters:
    ///   - throughput: The allowed relative throughput drop, in `0..<1`.
    ///   - latency: The allowed relative latency rise, `0` or more.
    public init(throughput: Double = 0.1, latency: Double = 0.1) {
        self.throughput = throughput
        self.latency = latency
    }

    /// 10% for both.
    public static let `default` = ComparisonThresholds()
}
