import Foundation

/// A new run's report checked against a baseline: one row per metric with a verdict and a
/// reason, and an overall pass or fail for CI.
///
/// Workloads are matched by name and broker. For each pair:
/// - publish and consume rate regress when new < baseline × (1 − ``ComparisonThresholds/throughput``);
/// - p99 publish and p99 end-to-end latency regress when new > baseline × (1 + ``ComparisonThresholds/latency``);
///   p50 and p99.9 are shown for context but do not gate;
/// - any lost message in the new run fails, whatever the baseline;
/// - a workload in the baseline but missing from the new run fails; one only in the new run is
///   listed for information.
///
/// ```swift
/// let comparison = ReportComparison(
///     baseline: try RunReport.load(resultPath: "baseline.json"),
///     new: try RunReport.load(resultPath: "reports/latest")
/// )
/// print(comparison.renderText())
/// if comparison.hasRegression { exit(1) }
/// ```
public struct ReportComparison: Sendable {
    /// The outcome of one metric.
    public struct Verdict: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case ok, improved, regressed, failed, info
        }

        private let base: Base

        /// Within the threshold.
        public static let ok = Verdict(base: .ok)
        /// Better than the baseline by more than the threshold.
        public static let improved = Verdict(base: .improved)
        /// Worse than the baseline by more than the threshold.
        public static let regressed = Verdict(base: .regressed)
        /// A hard failure: messages lost, a workload or its samples missing.
        public static let failed = Verdict(base: .failed)
        /// Shown for context; does not gate.
        public static let info = Verdict(base: .info)

        /// Whether this verdict fails the comparison.
        public var isFailure: Bool { base == .regressed || base == .failed }

        /// `ok`, `improved`, `REGRESSED`, `FAILED` or `info`.
        public var description: String {
            isFailure ? base.rawValue.uppercased() : base.rawValue
        }

        var symbol: String {
            switch base {
            case .ok: "✅"
            case .improved: "🟢"
            case .regressed, .failed: "❌"
            case .info: "➖"
            }
        }
    }

    /// One metric of one workload on one broker.
    public struct Row: Sendable, Equatable {
        /// The workload's name.
        public var workload: String
        /// The broker's name.
        public var broker: String
        /// What was compared: `publish rate`, `end-to-end p99`, `lost`, `workload` …
        public var metric: String
        /// The unit of ``baseline`` and ``new``: `msg/s`, `ms` or `messages`; empty for `workload` rows.
        public var unit: String
        /// The baseline's value, when it has one.
        public var baseline: Double?
        /// The new run's value, when it has one.
        public var new: Double?
        /// `(new − baseline) / baseline`, when both exist and the baseline is not zero.
        public var change: Double?
        /// The outcome.
        public var verdict: Verdict
        /// Why, in words: the change against the threshold, or what is missing.
        public var reason: String
    }

    /// The thresholds used.
    public let thresholds: ComparisonThresholds
    /// The baseline's run id.
    public let baselineRunID: String
    /// The new run's id.
    public let newRunID: String
    /// Every compared metric, workload by workload in the baseline's order.
    public let rows: [Row]

    /// Whether any row fails (a regression, lost messages, or a missing workload).
    public var hasRegression: Bool { rows.contains { $0.verdict.isFailure } }

    /// The failing rows.
    public var failures: [Row] { rows.filter { $0.verdict.isFailure } }

    /// Compares `new` against `baseline`.
    ///
    /// - Parameters:
    ///   - baseline: The report to compare against.
    ///   - new: The report under test.
    ///   - thresholds: How much worse `new` may be. Default: 10% for both.
    public init(baseline: RunReport, new: RunReport, thresholds: ComparisonThresholds = .default) {
        self.thresholds = thresholds
        self.baselineRunID = baseline.runID
        self.newRunID = new.runID
        var rows: [Row] = []
        var matched = Set<WorkloadKey>()
        for old in baseline.workloads {
            let key = WorkloadKey(old)
            guard matched.insert(key).inserted else { continue }
            guard let current = new.workloads.first(where: { WorkloadKey($0) == key }) else {
                rows.append(Row(
                    workload: old.name, broker: old.broker, metric: "workload", unit: "", baseline: nil, new: nil, change: nil,
                    verdict: .failed, reason: "in the baseline but missing from the new report"
                ))
                continue
            }
            rows += Self.compare(old, current, thresholds)
        }
        for current in new.workloads where !matched.contains(WorkloadKey(current)) {
            matched.insert(WorkloadKey(current))
            rows.append(Row(
                workload: current.name, broker: current.broker, metric: "workload", unit: "", baseline: nil, new: nil, change: nil,
                verdict: .info, reason: "new workload, not in the baseline"
            ))
            if current.summary.lost > 0 {
                rows.append(Self.lostRow(nil, current))
            }
        }
        self.rows = rows
    }

    private struct WorkloadKey: Hashable {
        var name: String
        var broker: String

        init(_ result: WorkloadResult) {
            name = result.name
            broker = result.broker
        }
    }

    // MARK: Rules

    private static func compare(_ old: WorkloadResult, _ new: WorkloadResult, _ thresholds: ComparisonThresholds) -> [Row] {
        func row(_ metric: String, _ unit: String, _ baseline: Double?, _ current: Double?, _ verdict: Verdict, _ reason: String) -> Row {
            var change: Double?
            if let baseline, let current, baseline != 0 { change = (current - baseline) / baseline }
            return Row(workload: old.name, broker: old.broker, metric: metric, unit: unit, baseline: baseline, new: current, change: change, verdict: verdict, reason: reason)
        }

        var rows: [Row] = []
        for (metric, baseline, current) in [
            ("publish rate", old.summary.publishRate, new.summary.publishRate),
            ("consume rate", old.summary.consumeRate, new.summary.consumeRate),
        ] {
            guard baseline > 0 else {
                if current > 0 {
                    rows.append(row(metric, "msg/s", baseline, current, .info, "no baseline throughput to compare with"))
                }
                continue
            }
            let floor = baseline * (1 - thresholds.throughput)
            let change = (current - baseline) / baseline
            let limit = "−\(ReportText.percent(thresholds.throughput))"
            if current < floor {
                rows.append(row(metric, "msg/s", baseline, current, .regressed, "\(ReportText.percentChange(change)) is below the \(limit) threshold"))
            } else if current > baseline * (1 + thresholds.throughput) {
                rows.append(row(metric, "msg/s", baseline, current, .improved, "\(ReportText.percentChange(change)), faster"))
            } else {
                rows.append(row(metric, "msg/s", baseline, current, .ok, "within \(limit)"))
            }
        }

        for (label, oldDistribution, newDistribution) in [
            ("publish", old.publishLatency, new.publishLatency),
            ("end-to-end", old.endToEndLatency, new.endToEndLatency),
        ] {
            let baseline = oldDistribution.count > 0 ? oldDistribution.percentiles["p99"] : nil
            let current = newDistribution.count > 0 ? newDistribution.percentiles["p99"] : nil
            for key in ["p50", "p99", "p99.9"] {
                let metric = "\(label) \(key)"
                let oldValue = oldDistribution.count > 0 ? oldDistribution.percentiles[key].map { $0 / 1000 } : nil
                let newValue = newDistribution.count > 0 ? newDistribution.percentiles[key].map { $0 / 1000 } : nil
                guard key == "p99" else {
                    if oldValue != nil || newValue != nil {
                        rows.append(row(metric, "ms", oldValue, newValue, .info, "context, not gated"))
                    }
                    continue
                }
                switch (baseline, current) {
                case (nil, nil):
                    continue
                case (nil, .some):
                    rows.append(row(metric, "ms", oldValue, newValue, .info, "no baseline samples to compare with"))
                case (.some, nil):
                    rows.append(row(metric, "ms", oldValue, newValue, .failed, "the baseline has \(label) latency samples, the new run has none"))
                case let (.some(baseline), .some(current)):
                    // Histograms resolve 1 µs; below that a zero baseline would make any sample a regression.
                    let reference = Swift.max(baseline, 1)
                    let change = (current - reference) / reference
                    let limit = "+\(ReportText.percent(thresholds.latency))"
                    if current > reference * (1 + thresholds.latency) {
                        rows.append(row(metric, "ms", oldValue, newValue, .regressed, "\(ReportText.percentChange(change)) is above the \(limit) threshold"))
                    } else if current < reference * (1 - thresholds.latency) {
                        rows.append(row(metric, "ms", oldValue, newValue, .improved, "\(ReportText.percentChange(change)), lower"))
                    } else {
                        rows.append(row(metric, "ms", oldValue, newValue, .ok, "within \(limit)"))
                    }
                }
            }
        }

        rows.append(lostRow(old, new))
        if old.summary.errors > 0 || new.summary.errors > 0 {
            rows.append(row("errors", "messages", Double(old.summary.errors), Double(new.summary.errors), .info, "failed publishes, not gated"))
        }
        return rows
    }

    private static func lostRow(_ old: WorkloadResult?, _ new: WorkloadResult) -> Row {
        let lost = new.summary.lost
        return Row(
            workload: new.name, broker: new.broker, metric: "lost", unit: "messages",
            baseline: old.map { Double($0.summary.lost) }, new: Double(lost), change: nil,
            verdict: lost > 0 ? .failed : .ok,
            reason: lost > 0 ? "\(lost) confirmed message\(lost == 1 ? " was" : "s were") never delivered" : "none lost"
        )
    }

    // MARK: Rendering

    /// The comparison as an aligned plain-text table with a summary line, for terminals and logs.
    ///
    /// - Returns: Text ending in a newline.
    public func renderText() -> String {
        let header = ["Workload", "Broker", "Metric", "Baseline", "New", "Change", "Verdict", "Reason"]
        let body = rows.map { row in
            [row.workload, row.broker, row.metric, Self.format(row.baseline, row.unit), Self.format(row.new, row.unit),
             row.change.map(ReportText.percentChange) ?? "", row.verdict.description, row.reason]
        }
        var widths = header.map(\.count)
        for cells in body {
            for (index, cell) in cells.enumerated() { widths[index] = Swift.max(widths[index], cell.count) }
        }
        let rightAligned: Set<Int> = [3, 4, 5]
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return index == cells.count - 1 ? cell : (rightAligned.contains(index) ? pad + cell : cell + pad)
            }.joined(separator: "  ")
        }
        var out = [headline(), ""]
        out.append(line(header))
        out.append(line(widths.map { String(repeating: "-", count: $0) }))
        out += body.map(line)
        out.append("")
        out.append(verdictLine())
        return out.joined(separator: "\n") + "\n"
    }

    /// The comparison as a GitHub-flavoured Markdown table, for a CI job summary.
    ///
    /// - Returns: Markdown ending in a newline.
    public func renderMarkdown() -> String {
        var out = ["## Comparison with the baseline", "", headline(), ""]
        out.append("| Workload | Broker | Metric | Baseline | New | Change | Verdict | Reason |")
        out.append("|---|---|---|--:|--:|--:|---|---|")
        for row in rows {
            let cells = [
                ReportText.markdownCode(row.workload), ReportText.markdownCode(row.broker), ReportText.markdown(row.metric),
                Self.format(row.baseline, row.unit), Self.format(row.new, row.unit), row.change.map(ReportText.percentChange) ?? "",
                "\(row.verdict.symbol) \(row.verdict)", ReportText.markdown(row.reason),
            ]
            out.append("| " + cells.joined(separator: " | ") + " |")
        }
        out.append("")
        out.append("**\(verdictLine())**")
        return out.joined(separator: "\n") + "\n"
    }

    private func headline() -> String {
        let workloads = Set(rows.map { "\($0.workload)\u{0}\($0.broker)" }).count
        return "Baseline \(baselineRunID) vs new \(newRunID): \(workloads) workload result\(workloads == 1 ? "" : "s"); "
            + "thresholds: throughput −\(ReportText.percent(thresholds.throughput)), p99 latency +\(ReportText.percent(thresholds.latency)); lost messages always fail."
    }

    private func verdictLine() -> String {
        let failing = failures
        guard !failing.isEmpty else { return "PASS: no regressions." }
        let list = failing.prefix(5).map { "\($0.broker) \($0.workload) \($0.metric)" }.joined(separator: "; ")
        let more = failing.count > 5 ? "; and \(failing.count - 5) more" : ""
        return "FAIL: \(failing.count) regression\(failing.count == 1 ? "" : "s") (\(list)\(more))."
    }

    private static func format(_ value: Double?, _ unit: String) -> String {
        guard let value else { return "–" }
        switch unit {
        case "ms": return ReportText.milliseconds(fromMicroseconds: value * 1000) + " ms"
        case "msg/s": return ReportText.rate(value) + " msg/s"
        case "messages": return ReportText.number(value)
        default: return ReportText.number(value, decimals: 2)
        }
    }
}
