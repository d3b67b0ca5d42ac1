import Foundation
import JadugarConformance

/// A plain-text table of a conformance report, fit for a terminal or a CI log.
enum ConformanceTable {
    static func render(_ report: ConformanceReport) -> String {
        let header = ["scenario", "result", "published", "delivered", "dup", "lost", "time", "reason"]
        var rows = [header]
        for result in report.results {
            rows.append([
                result.scenario,
                result.outcome.status.uppercased(),
                String(result.counters.published),
                String(result.counters.delivered),
                String(result.counters.duplicates),
                String(result.counters.lost),
                format(result.duration),
                String((result.outcome.reason ?? "").prefix(160)),
            ])
        }
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        widths[widths.count - 1] = min(widths[widths.count - 1], 160)
        func line(_ row: [String]) -> String {
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        var lines = [line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        lines += rows.dropFirst().map(line)
        let totals = report.totals
        lines.append("")
        lines.append("\(report.broker): \(report.passed) passed, \(report.failed) failed, \(report.skipped) skipped in \(format(report.duration)); published \(totals.published), delivered \(totals.delivered), duplicates \(totals.duplicates), lost \(totals.lost)")
        return lines.joined(separator: "\n")
    }

    static func format(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : String(format: "%.2f s", seconds)
    }
}
