import Foundation

/// A line chart drawn as inline SVG: title, gridlines, labelled axes with units, one polyline per
/// series, optional point markers with hover tooltips, and a legend.
///
/// No JavaScript and no external resources, so the HTML report stays one self-contained file.
struct SVGLineChart {
    struct Series {
        var name: String
        var color: String
        var dashed: Bool = false
        /// Draw a dot at each point, with a tooltip; for measured points such as a sweep.
        var markers: Bool = false
        /// Data coordinates (before the axes' transforms).
        var points: [(x: Double, y: Double)]
        /// Tooltip text per point, when `markers` is set.
        var tooltips: [String] = []
    }

    /// A shaded band across the plot, such as the warm-up part of a time series.
    struct Band {
        var range: ClosedRange<Double>
        var label: String
    }

    var title: String
    var xTitle: String
    var yTitle: String
    var xScale: ChartScale
    var yScale: ChartScale
    var series: [Series]
    var band: Band?
    var width = 640.0
    var plotHeight = 230.0

    private let marginLeft = 70.0
    private let marginRight = 24.0
    private let marginTop = 34.0
    private let axisBlock = 46.0

    func render() -> String {
        let plotWidth = width - marginLeft - marginRight
        let legend = ChartLegend(entries: series.map { .init(label: $0.name, color: $0.color, dashed: $0.dashed) })
        let legendHeight = series.count > 1 ? legend.height(width: plotWidth) + 6 : 0
        let height = marginTop + plotHeight + axisBlock + legendHeight
        let plotBottom = marginTop + plotHeight
        let plotRight = marginLeft + plotWidth

        func px(_ transformed: Double) -> Double { marginLeft + xScale.fraction(ofTransformed: transformed) * plotWidth }
        func py(_ transformed: Double) -> Double { plotBottom - yScale.fraction(ofTransformed: transformed) * plotHeight }

        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(SVG.n(width)) \(SVG.n(height))\" width=\"\(SVG.n(width))\" height=\"\(SVG.n(height))\" role=\"img\" aria-label=\"\(ReportText.html(title))\">"
        svg += "<title>\(ReportText.html(title))</title>"
        svg += "<text x=\"\(SVG.n(marginLeft))\" y=\"20\" class=\"chart-title\">\(ReportText.html(title))</text>"
        svg += "<rect x=\"\(SVG.n(marginLeft))\" y=\"\(SVG.n(marginTop))\" width=\"\(SVG.n(plotWidth))\" height=\"\(SVG.n(plotHeight))\" class=\"plot\"/>"

        if let band, let low = xScale.transform(band.range.lowerBound), let high = xScale.transform(band.range.upperBound) {
            let x1 = px(low)
            let x2 = px(high)
            if x2 - x1 > 0.5 {
                svg += "<rect x=\"\(SVG.n(x1))\" y=\"\(SVG.n(marginTop))\" width=\"\(SVG.n(x2 - x1))\" height=\"\(SVG.n(plotHeight))\" class=\"band\"/>"
                svg += "<text x=\"\(SVG.n(x1 + 4))\" y=\"\(SVG.n(marginTop + 13))\" class=\"band-label\">\(ReportText.html(band.label))</text>"
            }
        }

        for tick in yScale.ticks where yScale.domain.contains(tick.position) {
            let y = py(tick.position)
            svg += "<line x1=\"\(SVG.n(marginLeft))\" y1=\"\(SVG.n(y))\" x2=\"\(SVG.n(plotRight))\" y2=\"\(SVG.n(y))\" class=\"\(tick.major ? "grid" : "grid-minor")\"/>"
            if !tick.label.isEmpty {
                svg += "<text x=\"\(SVG.n(marginLeft - 6))\" y=\"\(SVG.n(y + 4))\" class=\"tick\" text-anchor=\"end\">\(ReportText.html(tick.label))</text>"
            }
        }
        for tick in xScale.ticks where xScale.domain.contains(tick.position) {
            let x = px(tick.position)
            svg += "<line x1=\"\(SVG.n(x))\" y1=\"\(SVG.n(marginTop))\" x2=\"\(SVG.n(x))\" y2=\"\(SVG.n(plotBottom))\" class=\"\(tick.major ? "grid" : "grid-minor")\"/>"
            if !tick.label.isEmpty {
                // Keep edge labels (the 99.999% of a nines axis) inside the picture.
                let half = SVG.textWidth(tick.label, fontSize: 11) / 2
                let labelX = Swift.min(Swift.max(x, half + 2), width - half - 2)
                svg += "<text x=\"\(SVG.n(labelX))\" y=\"\(SVG.n(plotBottom + 16))\" class=\"tick\" text-anchor=\"middle\">\(ReportText.html(tick.label))</text>"
            }
        }
        svg += "<line x1=\"\(SVG.n(marginLeft))\" y1=\"\(SVG.n(plotBottom))\" x2=\"\(SVG.n(plotRight))\" y2=\"\(SVG.n(plotBottom))\" class=\"axis\"/>"
        svg += "<line x1=\"\(SVG.n(marginLeft))\" y1=\"\(SVG.n(marginTop))\" x2=\"\(SVG.n(marginLeft))\" y2=\"\(SVG.n(plotBottom))\" class=\"axis\"/>"
        svg += "<text x=\"\(SVG.n(marginLeft + plotWidth / 2))\" y=\"\(SVG.n(plotBottom + 36))\" class=\"axis-title\" text-anchor=\"middle\">\(ReportText.html(xTitle))</text>"
        let yMid = marginTop + plotHeight / 2
        svg += "<text x=\"16\" y=\"\(SVG.n(yMid))\" class=\"axis-title\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(SVG.n(yMid)))\">\(ReportText.html(yTitle))</text>"

        var plotted = 0
        for line in series {
            var pixels: [(x: Double, y: Double, index: Int)] = []
            for (index, point) in line.points.enumerated() {
                guard let tx = xScale.transform(point.x), let ty = yScale.transform(point.y) else { continue }
                pixels.append((px(tx), py(ty), index))
            }
            guard !pixels.isEmpty else { continue }
            plotted += 1
            let color = ReportText.html(line.color)
            let simplified = Self.simplify(pixels.map { ($0.x, $0.y) })
            if simplified.count > 1 {
                let path = simplified.map { "\(SVG.n($0.x)),\(SVG.n($0.y))" }.joined(separator: " ")
                let dash = line.dashed ? " stroke-dasharray=\"6 4\"" : ""
                svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" stroke-linejoin=\"round\"\(dash)><title>\(ReportText.html(line.name))</title></polyline>"
            }
            if line.markers || simplified.count == 1 {
                for pixel in pixels {
                    let tip = pixel.index < line.tooltips.count ? line.tooltips[pixel.index] : line.name
                    svg += "<circle cx=\"\(SVG.n(pixel.x))\" cy=\"\(SVG.n(pixel.y))\" r=\"3.5\" fill=\"\(line.dashed ? "#fff" : color)\" stroke=\"\(color)\" stroke-width=\"1.5\"><title>\(ReportText.html(tip))</title></circle>"
                }
            }
        }
        if plotted == 0 {
            svg += "<text x=\"\(SVG.n(marginLeft + plotWidth / 2))\" y=\"\(SVG.n(yMid))\" class=\"no-data\" text-anchor=\"middle\">no data</text>"
        }
        if series.count > 1 {
            svg += legend.render(x: marginLeft, y: plotBottom + axisBlock, width: plotWidth)
        }
        svg += "</svg>"
        return svg
    }

    /// Drops points that add nothing at screen resolution: repeats of the same pixel, and middle
    /// points of straight horizontal or vertical runs (the steps of a quantile curve).
    static func simplify(_ points: [(x: Double, y: Double)]) -> [(x: Double, y: Double)] {
        var kept: [(x: Double, y: Double)] = []
        kept.reserveCapacity(points.count)
        for point in points {
            if let last = kept.last, abs(last.x - point.x) < 0.25, abs(last.y - point.y) < 0.25 {
                continue
            }
            if kept.count >= 2 {
                let a = kept[kept.count - 2]
                let b = kept[kept.count - 1]
                let horizontal = abs(a.y - b.y) < 0.25 && abs(b.y - point.y) < 0.25 && a.x <= b.x && b.x <= point.x
                let vertical = abs(a.x - b.x) < 0.25 && abs(b.x - point.x) < 0.25 && (a.y - b.y) * (b.y - point.y) >= 0
                if horizontal || vertical {
                    kept[kept.count - 1] = point
                    continue
                }
            }
            kept.append(point)
        }
        return kept
    }
}
