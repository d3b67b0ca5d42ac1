import Foundation

/// The legend under an SVG chart: one swatch (solid or dashed line, or a filled box) and label
/// per entry, wrapped into rows that fit the chart's width.
struct ChartLegend {
    struct Entry {
        var label: String
        var color: String
        var dashed: Bool = false
        var box: Bool = false
    }

    var entries: [Entry]

    static let rowHeight = 18.0
    private static let swatchWidth = 22.0

    /// Rows of entries, each with its x offset, for a legend `width` wide.
    func layout(width: Double) -> [[(entry: Entry, x: Double)]] {
        var rows: [[(entry: Entry, x: Double)]] = []
        var row: [(entry: Entry, x: Double)] = []
        var x = 0.0
        for entry in entries {
            let entryWidth = Self.swatchWidth + 6 + SVG.textWidth(entry.label) + 18
            if x > 0, x + entryWidth > width {
                rows.append(row)
                row = []
                x = 0
            }
            row.append((entry, x))
            x += entryWidth
        }
        if !row.isEmpty { rows.append(row) }
        return rows
    }

    /// The height the legend takes at `width`.
    func height(width: Double) -> Double {
        Double(layout(width: width).count) * Self.rowHeight
    }

    /// SVG elements for the legend with its top-left corner at (`x`, `y`).
    func render(x originX: Double, y originY: Double, width: Double) -> String {
        var svg = ""
        for (index, row) in layout(width: width).enumerated() {
            let y = originY + Double(index) * Self.rowHeight + Self.rowHeight / 2
            for (entry, offset) in row {
                let x = originX + offset
                let color = ReportText.html(entry.color)
                if entry.box {
                    svg += "<rect x=\"\(SVG.n(x + 4))\" y=\"\(SVG.n(y - 5))\" width=\"14\" height=\"10\" fill=\"\(color)\" rx=\"2\"/>"
                } else {
                    let dash = entry.dashed ? " stroke-dasharray=\"5 3\"" : ""
                    svg += "<line x1=\"\(SVG.n(x))\" y1=\"\(SVG.n(y))\" x2=\"\(SVG.n(x + Self.swatchWidth))\" y2=\"\(SVG.n(y))\" stroke=\"\(color)\" stroke-width=\"2.5\"\(dash)/>"
                }
                svg += "<text x=\"\(SVG.n(x + Self.swatchWidth + 6))\" y=\"\(SVG.n(y + 4))\" class=\"legend\">\(ReportText.html(entry.label))</text>"
            }
        }
        return svg
    }
}

/// Small SVG helpers: coordinates, text width estimates.
enum SVG {
    /// A coordinate with one decimal, without trailing `.0`.
    static func n(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(format: "%.1f", rounded)
    }

    /// An estimate of the width of `text` at the charts' 12 px font; SVG has no layout engine to ask.
    static func textWidth(_ text: String, fontSize: Double = 12) -> Double {
        Double(text.count) * fontSize * 0.56
    }

    /// `text` cut to `limit` characters with an ellipsis.
    static func truncated(_ text: String, to limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(Swift.max(limit - 1, 1))) + "…"
    }
}
