import Histogram
import Synchronization

/// A latency histogram in microseconds for the whole run and one for the current interval.
final class LatencyRecorder: Sendable {
    /// One hour in microseconds: anything slower is clamped (and still counted).
    static let highest: UInt64 = 3_600_000_000

    private struct State {
        var total = LatencyRecorder.makeHistogram()
        var interval = LatencyRecorder.makeHistogram()
    }
    private let state = Mutex(State())

    static func makeHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: highest, numberOfSignificantValueDigits: .three)
    }

    func record(nanos: Int64) {
        let micros = UInt64(clamping: max(nanos, 0) / 1000)
        let value = min(max(micros, 1), Self.highest)
        state.withLock {
            _ = $0.total.record(value)
            _ = $0.interval.record(value)
        }
    }

    /// The p99 of the interval since the last call, in microseconds; starts a new interval.
    func takeIntervalP99() -> Double {
        state.withLock { state in
            defer { state.interval.reset() }
            return state.interval.totalCount == 0 ? 0 : Double(state.interval.valueAtPercentile(99))
        }
    }

    var total: Histogram<UInt64> { state.withLock { $0.total } }
}
