import Foundation

/// Renders a ``RunReport`` as GitHub-flavoured Markdown, fit for a CI job summary.
///
/// Sections: a one-table summary, the environment, then per workload its rates, totals and
/// latency percentiles in milliseconds with one row per broker (brokers side by side), its sweep
/// and rate search, and finally the conformance matrix (scenario × broker → ✅ ❌ ⏭) with the
/// reasons of failures and skips listed below it. Text from the report is escaped, so broker URLs
/// and reasons cannot break the tables or inject markup.
///
/// ```swift
/// let markdown = MarkdownReport.render(try RunReport.load(from: url))
/// try markdown.write(toFile: ProcessInfo.processInfo.environment["GITHUB_STEP_SUMMARY"]!, atomically: true, encoding: .utf8)
/// ```
public enum MarkdownReport {
    /// Renders the whole report.
    ///
    /// - Parameter report: The report to render.
    /// - Returns: Markdown text ending in a newline.
    public static func render(_ report: RunReport) -> String {
        var out: [String] = []
        out.append("# Jadugar run \(ReportText.markdownCode(report.runID))")
        out.append("")
        let duration = report.finishedAt.timeIntervalSince(report.startedAt)
        out.append("Started \(ReportText.timestamp(report.startedAt)), finished \(ReportText.timestamp(report.finishedAt)) (\(ReportText.seconds(duration)) s). "
            + "\(report.workloads.count) workload result\(report.workloads.count == 1 ? "" : "s"), "
            + "\(report.conformance.count) conformance suite\(report.conformance.count == 1 ? "" : "s"). Latencies in milliseconds.")
        out.append("")
        if !report.workloads.isEmpty {
            out += summary(report)
        }
        out += environment(report)
        if !report.workloads.isEmpty {
            out.append("## Workloads")
            out.append("")
            for name in report.workloadNames {
                out += workload(name: name, results: report.results(named: name))
            }
        }
        if !report.conformance.isEmpty {
            out += conformance(report.conformance)
        }
        return out.joined(separator: "\n") + "\n"
    }

    // MARK: Sections

    private static func summary(_ report: RunReport) -> [String] {
        var out = ["## Summary", ""]
        out.append("| Workload | Broker | Publish msg/s | Consume msg/s | MB/s | Publish p99 | End-to-end p99 | Lost | Errors |")
        out.append("|---|---|--:|--:|--:|--:|--:|--:|--:|")
        for result in report.workloads {
            let s = result.summary
            out.append(row([
                ReportText.markdownCode(result.name), ReportText.markdownCode(result.broker),
                ReportText.rate(s.publishRate), ReportText.rate(s.consumeRate), ReportText.megabytesPerSecond(s.bytesPerSecond),
                percentile(result.publishLatency, "p99"), percentile(result.endToEndLatency, "p99"),
                flagged(s.lost), flagged(s.errors),
            ]))
        }
        out.append("")
        return out
    }

    private static func environment(_ report: RunReport) -> [String] {
        let env = report.environment
        var out = ["## Environment", "", "| | |", "|---|---|"]
        out.append(row(["Host", ReportText.markdown(env.hostname)]))
        out.append(row(["CPU", ReportText.markdown("\(env.cpuModel) (\(env.cores) logical cores)")]))
        out.append(row(["Memory", ReportText.bytes(Double(env.memoryBytes))]))
        out.append(row(["Operating system", ReportText.markdown(env.operatingSystem)]))
        out.append(row(["Toolchain", ReportText.markdown(env.toolchain)]))
        out.append(row(["Git commit", env.gitCommit.map(ReportText.markdownCode) ?? "unknown"]))
        let libraries = env.clientLibraries.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        out.append(row(["Client libraries", libraries.isEmpty ? "–" : ReportText.markdown(libraries.joined(separator: ", "))]))
        out.append(row(["Scenario", report.scenario.map { ReportText.markdownCode($0.path) } ?? "–"]))
        out.append(row(["Report format", ReportText.markdown(report.schemaVersion)]))
        out.append("")
        if !env.brokers.isEmpty {
            out.append("| Broker | URL | Version |")
            out.append("|---|---|---|")
            for broker in env.brokers {
                out.append(row([ReportText.markdownCode(broker.name), ReportText.markdownCode(broker.url), broker.version.map(ReportText.markdown) ?? "unknown"]))
            }
            out.append("")
        }
        return out
    }

    private static func workload(name: String, results: [WorkloadResult]) -> [String] {
        var out = ["### \(ReportText.markdownCode(name))", ""]
        let parameterKeys = Set(results.flatMap(\.parameters.keys)).sorted()
        if !parameterKeys.isEmpty {
            if results.count == 1 || results.allSatisfy({ $0.parameters == results[0].parameters }) {
                let text = results[0].parameters.sorted { $0.key < $1.key }.map { ReportText.markdownCode("\($0.key)=\($0.value)") }
                out.append("Parameters: " + text.joined(separator: " "))
                out.append("")
            } else {
                out.append("| Broker | " + parameterKeys.map(ReportText.markdown).joined(separator: " | ") + " |")
                out.append("|---|" + String(repeating: "---|", count: parameterKeys.count))
                for result in results {
                    out.append(row([ReportText.markdownCode(result.broker)] + parameterKeys.map { ReportText.markdown(result.parameters[$0] ?? "–") }))
                }
                out.append("")
            }
        }

        out.append("**Rates**")
        out.append("")
        out.append("| Broker | Publish msg/s | Consume msg/s | MB/s | Target msg/s | Measured s | CPU s | Peak RSS | Runner ns/msg |")
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for result in results {
            let s = result.summary
            out.append(row([
                ReportText.markdownCode(result.broker), ReportText.rate(s.publishRate), ReportText.rate(s.consumeRate),
                ReportText.megabytesPerSecond(s.bytesPerSecond), s.targetRate.map(ReportText.rate) ?? "max",
                ReportText.seconds(s.durationSeconds), ReportText.seconds(s.cpuSeconds), ReportText.bytes(Double(s.peakRSSBytes)),
                s.runnerOverheadNanosPerMessage.map { ReportText.number($0, decimals: 1) } ?? "–",
            ]))
        }
        out.append("")

        out.append("**Totals**")
        out.append("")
        out.append("| Broker | Published | Confirmed | Delivered | Duplicates | Lost | Errors |")
        out.append("|---|--:|--:|--:|--:|--:|--:|")
        for result in results {
            let s = result.summary
            out.append(row([
                ReportText.markdownCode(result.broker), ReportText.number(Double(s.published)), ReportText.number(Double(s.confirmed)),
                ReportText.number(Double(s.delivered)), flagged(s.duplicates), flagged(s.lost), flagged(s.errors),
            ]))
        }
        out.append("")

        out.append("**Latency (ms)**")
        out.append("")
        let keys = LatencyDistribution.percentileKeys
        out.append("| Broker | Latency | " + keys.joined(separator: " | ") + " | max | mean | samples |")
        out.append("|---|---|" + String(repeating: "--:|", count: keys.count + 3))
        for result in results {
            let kinds: [(String, LatencyDistribution)] = [
                ("publish", result.publishLatency), ("end-to-end", result.endToEndLatency), ("publish delay", result.publishDelay),
            ]
            for (label, distribution) in kinds {
                var cells = [ReportText.markdownCode(result.broker), label]
                cells += keys.map { percentile(distribution, $0) }
                cells += [
                    distribution.count > 0 ? ReportText.milliseconds(fromMicroseconds: distribution.max) : "–",
                    distribution.count > 0 ? ReportText.milliseconds(fromMicroseconds: distribution.mean) : "–",
                    ReportText.number(Double(distribution.count)),
                ]
                out.append(row(cells))
            }
        }
        out.append("")

        if results.contains(where: { !$0.sweep.isEmpty }) {
            out.append("**Rate vs latency sweep**")
            out.append("")
            out += sweepTable(results.flatMap { result in result.sweep.map { (result.broker, $0) } })
        }

        let faulted = results.filter { !($0.faults ?? []).isEmpty }
        if !faulted.isEmpty {
            out.append("**Faults**")
            out.append("")
            out.append("| Broker | Fault | At | Outcome | Reconnect | Published | Confirmed | Delivered | Duplicates | Lost | Guarantee held |")
            out.append("|---|---|--:|---|--:|--:|--:|--:|--:|--:|---|")
            for result in faulted {
                let s = result.summary
                let guarantee = s.lost == 0 ? "at-least-once: every confirmed message delivered" : "**no: \(s.lost) confirmed messages lost**"
                for fault in result.faults ?? [] {
                    out.append(row([
                        ReportText.markdownCode(result.broker), ReportText.markdown(fault.name),
                        ReportText.number(fault.atSeconds, decimals: 1) + " s",
                        fault.outcome == "ran" ? "ran" : "**\(fault.outcome)**" + (fault.detail.map { ": " + ReportText.markdown($0) } ?? ""),
                        fault.reconnectSeconds.map { ReportText.number($0, decimals: 2) + " s" } ?? "–",
                        ReportText.number(Double(s.published)), ReportText.number(Double(s.confirmed)), ReportText.number(Double(s.delivered)),
                        ReportText.number(Double(s.duplicates)), flagged(s.lost), guarantee,
                    ]))
                }
            }
            out.append("")
        }

        let searches = results.compactMap { result in result.rateSearch.map { (result.broker, $0) } }
        if !searches.isEmpty {
            out.append("**Maximum sustainable rate**")
            out.append("")
            out.append("| Broker | Sustainable msg/s | Converged | Criterion | Note |")
            out.append("|---|--:|---|---|---|")
            for (broker, search) in searches {
                out.append(row([
                    ReportText.markdownCode(broker), ReportText.rate(search.sustainableRate), search.converged ? "yes" : "**no**",
                    ReportText.markdown(search.criterion), search.note.map(ReportText.markdown) ?? "",
                ]))
            }
            out.append("")
            let steps = searches.flatMap { broker, search in search.steps.map { (broker, $0) } }
            if !steps.isEmpty {
                out.append("<details><summary>Search steps</summary>")
                out.append("")
                out += sweepTable(steps)
                out.append("</details>")
                out.append("")
            }
        }
        return out
    }

    private static func sweepTable(_ points: [(broker: String, point: SweepPoint)]) -> [String] {
        var out = ["| Broker | Target msg/s | Achieved msg/s | Achieved % | End-to-end p50 | End-to-end p99 | End-to-end p99.9 | Publish p99 |"]
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|")
        for (broker, point) in points {
            let achieved = point.targetRate > 0 ? ReportText.number(point.achievedRate / point.targetRate * 100, decimals: 1) + "%" : "–"
            out.append(row([
                ReportText.markdownCode(broker), ReportText.rate(point.targetRate), ReportText.rate(point.achievedRate), achieved,
                value(point.endToEnd["p50"]), value(point.endToEnd["p99"]), value(point.endToEnd["p99.9"]), value(point.publish["p99"]),
            ]))
        }
        out.append("")
        return out
    }

    private static func conformance(_ suites: [ConformanceSuiteResult]) -> [String] {
        var out = ["## Conformance", ""]
        let brokers = suites.map(\.broker)
        var scenarios: [String] = []
        var seen = Set<String>()
        for suite in suites {
            for entry in suite.scenarios where seen.insert(entry.scenario).inserted {
                scenarios.append(entry.scenario)
            }
        }
        out.append("| Scenario | " + brokers.map(ReportText.markdownCode).joined(separator: " | ") + " |")
        out.append("|---|" + String(repeating: ":-:|", count: brokers.count))
        for scenario in scenarios {
            var cells = [ReportText.markdownCode(scenario)]
            for suite in suites {
                cells.append(suite.scenarios.first { $0.scenario == scenario }?.outcome.symbol ?? "–")
            }
            out.append(row(cells))
        }
        var totals = ["**Passed / failed / skipped**"]
        for suite in suites {
            let outcomes = suite.scenarios.map(\.outcome)
            totals.append("\(outcomes.filter { $0 == .passed }.count) / \(outcomes.filter { $0 == .failed }.count) / \(outcomes.filter { $0 == .skipped }.count)")
        }
        out.append(row(totals))
        out.append("")
        out.append("✅ passed · ❌ failed · ⏭ skipped · – not run")
        out.append("")

        let notes = suites.flatMap { suite in
            suite.scenarios.filter { $0.outcome != .passed }.map { (suite.broker, $0) }
        }
        if !notes.isEmpty {
            out.append("### Failures and skips")
            out.append("")
            for (broker, entry) in notes.sorted(by: { ($0.1.outcome == .failed ? 0 : 1) < ($1.1.outcome == .failed ? 0 : 1) }) {
                let reason = entry.reason.map(ReportText.markdown) ?? "no reason given"
                var counts = ""
                if entry.outcome == .failed {
                    counts = " (published \(entry.published), delivered \(entry.delivered), duplicates \(entry.duplicates), lost \(entry.lost))"
                }
                out.append("- \(entry.outcome.symbol) \(ReportText.markdownCode(broker)) \(ReportText.markdownCode(entry.scenario)): \(reason)\(counts)")
            }
            out.append("")
        }
        return out
    }

    // MARK: Cells

    private static func row(_ cells: [String]) -> String {
        "| " + cells.joined(separator: " | ") + " |"
    }

    private static func percentile(_ distribution: LatencyDistribution, _ key: String) -> String {
        guard distribution.count > 0 else { return "–" }
        return value(distribution.percentiles[key])
    }

    private static func value(_ micros: Double?) -> String {
        micros.map { ReportText.milliseconds(fromMicroseconds: $0) } ?? "–"
    }

    /// Non-zero counts of bad things in bold with a warning sign, so they stand out in a summary.
    private static func flagged(_ count: Int) -> String {
        count == 0 ? "0" : "**\(ReportText.number(Double(count)))** ⚠️"
    }
}
