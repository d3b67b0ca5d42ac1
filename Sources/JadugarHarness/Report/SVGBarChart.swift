import Foundation

/// A horizontal grouped bar chart as inline SVG: one group per category (workload), one bar per
/// series (broker) in the series' colour, value labels at the bar ends, and a legend.
struct SVGBarChart {
    struct Series {
        var name: String
        var color: String
        /// One value per category; `nil` where the series has no result (no bar is drawn).
        var values: [Double?]
    }

    var title: String
    var valueTitle: String
    var categories: [String]
    var series: [Series]
    var format: (Double) -> String
    var width = 640.0

    private let barHeight = 14.0
    private let barGap = 3.0
    private let groupGap = 12.0
    private let marginTop = 34.0
    private let marginRight = 70.0

    func render() -> String {
        let labelLimit = 30
        let longest = categories.map { SVG.textWidth(SVG.truncated($0, to: labelLimit)) }.max() ?? 40
        let marginLeft = Swift.min(Swift.max(longest + 16, 60), width * 0.4)
        let plotWidth = width - marginLeft - marginRight
        // Only the series with a value get a bar, so a workload that ran on two of four brokers
        // takes two rows, not four with gaps.
        let present = categories.indices.map { category in
            series.indices.filter { category < series[$0].values.count && series[$0].values[category]?.isFinite == true }
        }
        func groupHeight(_ bars: Int) -> Double { Double(Swift.max(bars, 1)) * (barHeight + barGap) - barGap }
        let plotHeight = present.reduce(groupGap) { $0 + groupHeight($1.count) + groupGap }
        let legend = ChartLegend(entries: series.map { .init(label: $0.name, color: $0.color, box: true) })
        let legendHeight = legend.height(width: width - marginLeft - 10) + 6
        let axisBlock = 40.0
        let height = marginTop + plotHeight + axisBlock + legendHeight
        let plotBottom = marginTop + plotHeight

        let values = series.flatMap { $0.values.compactMap { $0 } }
        let scale = ChartScale.linear(values: values, includeZero: true, format: format)
        func px(_ value: Double) -> Double { marginLeft + scale.fraction(ofTransformed: value) * plotWidth }

        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(SVG.n(width)) \(SVG.n(height))\" width=\"\(SVG.n(width))\" height=\"\(SVG.n(height))\" role=\"img\" aria-label=\"\(ReportText.html(title))\">"
        svg += "<title>\(ReportText.html(title))</title>"
        svg += "<text x=\"\(SVG.n(marginLeft))\" y=\"20\" class=\"chart-title\">\(ReportText.html(title))</text>"
        svg += "<rect x=\"\(SVG.n(marginLeft))\" y=\"\(SVG.n(marginTop))\" width=\"\(SVG.n(plotWidth))\" height=\"\(SVG.n(plotHeight))\" class=\"plot\"/>"
        for tick in scale.ticks where scale.domain.contains(tick.position) {
            let x = px(tick.position)
            svg += "<line x1=\"\(SVG.n(x))\" y1=\"\(SVG.n(marginTop))\" x2=\"\(SVG.n(x))\" y2=\"\(SVG.n(plotBottom))\" class=\"grid\"/>"
            svg += "<text x=\"\(SVG.n(x))\" y=\"\(SVG.n(plotBottom + 16))\" class=\"tick\" text-anchor=\"middle\">\(ReportText.html(tick.label))</text>"
        }
        svg += "<text x=\"\(SVG.n(marginLeft + plotWidth / 2))\" y=\"\(SVG.n(plotBottom + 34))\" class=\"axis-title\" text-anchor=\"middle\">\(ReportText.html(valueTitle))</text>"

        var groupTop = marginTop + groupGap
        for (categoryIndex, category) in categories.enumerated() {
            let bars = present[categoryIndex]
            let span = groupHeight(bars.count)
            svg += "<text x=\"\(SVG.n(marginLeft - 8))\" y=\"\(SVG.n(groupTop + span / 2 + 4))\" class=\"tick\" text-anchor=\"end\"><title>\(ReportText.html(category))</title>\(ReportText.html(SVG.truncated(category, to: labelLimit)))</text>"
            if bars.isEmpty {
                svg += "<text x=\"\(SVG.n(marginLeft + 4))\" y=\"\(SVG.n(groupTop + barHeight - 3))\" class=\"bar-label\">no data</text>"
            }
            for (row, seriesIndex) in bars.enumerated() {
                let line = series[seriesIndex]
                guard let value = line.values[categoryIndex] else { continue }
                let y = groupTop + Double(row) * (barHeight + barGap)
                let x0 = px(0)
                let x1 = px(value)
                let tip = "\(line.name) · \(category): \(format(value))"
                svg += "<rect x=\"\(SVG.n(Swift.min(x0, x1)))\" y=\"\(SVG.n(y))\" width=\"\(SVG.n(Swift.max(abs(x1 - x0), 1)))\" height=\"\(SVG.n(barHeight))\" fill=\"\(ReportText.html(line.color))\" rx=\"2\"><title>\(ReportText.html(tip))</title></rect>"
                svg += "<text x=\"\(SVG.n(Swift.max(x0, x1) + 4))\" y=\"\(SVG.n(y + barHeight - 3))\" class=\"bar-label\">\(ReportText.html(format(value)))</text>"
            }
            groupTop += span + groupGap
        }
        svg += "<line x1=\"\(SVG.n(marginLeft))\" y1=\"\(SVG.n(marginTop))\" x2=\"\(SVG.n(marginLeft))\" y2=\"\(SVG.n(plotBottom))\" class=\"axis\"/>"
        svg += legend.render(x: marginLeft, y: plotBottom + axisBlock, width: width - marginLeft - 10)
        svg += "</svg>"
        return svg
    }
}
