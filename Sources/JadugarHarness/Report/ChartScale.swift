import Foundation

/// Maps data values onto one axis of an SVG chart: linear, logarithmic, or the "nines" axis of a
/// latency quantile plot, with the ticks and gridlines each needs.
struct ChartScale {
    /// A gridline position in transformed coordinates, with its label; minor ticks are unlabelled.
    struct Tick {
        var position: Double
        var label: String
        var major: Bool
    }

    /// Data value to transformed coordinate; `nil` when the value cannot be shown (log of zero).
    let transform: (Double) -> Double?
    /// The visible range, in transformed coordinates.
    let domain: ClosedRange<Double>
    let ticks: [Tick]

    /// Where a transformed coordinate falls in `0...1` of the axis, clamped.
    func fraction(ofTransformed value: Double) -> Double {
        let span = domain.upperBound - domain.lowerBound
        guard span > 0 else { return 0.5 }
        return Swift.min(Swift.max((value - domain.lowerBound) / span, 0), 1)
    }

    /// A linear axis over `values` with "nice" steps (1, 2, 2.5, 5 × 10ⁿ).
    static func linear(values: [Double], includeZero: Bool, format: @escaping (Double) -> String) -> ChartScale {
        let finite = values.filter(\.isFinite)
        var low = finite.min() ?? 0
        var high = finite.max() ?? 1
        if includeZero {
            low = Swift.min(low, 0)
            high = Swift.max(high, 0)
        }
        if high - low < 1e-12 {
            let pad = abs(high) > 0 ? abs(high) * 0.1 : 1
            low = includeZero && low >= 0 ? 0 : low - pad
            high += pad
        }
        let step = niceStep((high - low) / 5)
        let domainLow = (low / step).rounded(.down) * step
        let domainHigh = (high / step).rounded(.up) * step
        var ticks: [Tick] = []
        var value = domainLow
        while value <= domainHigh + step * 1e-6 {
            let clean = abs(value) < step * 1e-6 ? 0 : value
            ticks.append(Tick(position: clean, label: format(clean), major: true))
            value += step
        }
        return ChartScale(transform: { $0.isFinite ? $0 : nil }, domain: domainLow...domainHigh, ticks: ticks)
    }

    /// A base-10 logarithmic axis over the positive `values`, one labelled gridline per decade and
    /// unlabelled ones at 2× and 5×.
    static func logarithmic(values: [Double], format: @escaping (Double) -> String) -> ChartScale {
        let positive = values.filter { $0 > 0 && $0.isFinite }
        let low = floor(log10(positive.min() ?? 1))
        var high = ceil(log10(positive.max() ?? 10))
        if high <= low { high = low + 1 }
        var ticks: [Tick] = []
        var decade = low
        while decade <= high {
            let base = pow(10, decade)
            ticks.append(Tick(position: decade, label: format(base), major: true))
            if decade < high {
                // With few decades the 2× and 5× lines get labels too, or the axis would show only two numbers.
                let labelMinor = high - low <= 2
                for multiple in [2.0, 5.0] {
                    ticks.append(Tick(position: log10(base * multiple), label: labelMinor ? format(base * multiple) : "", major: labelMinor))
                }
            }
            decade += 1
        }
        return ChartScale(transform: { $0 > 0 && $0.isFinite ? log10($0) : nil }, domain: low...high, ticks: ticks)
    }

    /// The "nines" axis of a quantile plot: percentiles 0, 90, 99, 99.9 … equally spaced, so the
    /// tail gets as much room as the body. Values are percentiles (0–100).
    static func nines(count: Int = 5) -> ChartScale {
        var ticks = [Tick(position: 0, label: "0%", major: true)]
        for nines in 1...Swift.max(count, 1) {
            let percentile = 100 * (1 - pow(10, -Double(nines)))
            ticks.append(Tick(position: Double(nines), label: ReportText.number(percentile, decimals: nines) + "%", major: true))
        }
        let maximum = Double(Swift.max(count, 1))
        return ChartScale(
            transform: { percentile in
                guard percentile.isFinite else { return nil }
                let remaining = 1 - Swift.min(Swift.max(percentile, 0), 100) / 100
                return remaining <= 0 ? maximum : Swift.min(-log10(remaining), maximum)
            },
            domain: 0...maximum,
            ticks: ticks
        )
    }

    private static func niceStep(_ rough: Double) -> Double {
        guard rough > 0, rough.isFinite else { return 1 }
        let magnitude = pow(10, floor(log10(rough)))
        let normalized = rough / magnitude
        let nice: Double = switch normalized {
        case ..<1.5: 1
        case ..<2.25: 2
        case ..<3.5: 2.5
        case ..<7.5: 5
        default: 10
        }
        return nice * magnitude
    }
}
