import ArgumentParser
import Foundation
import JadugarHarness

/// `jadugar compare BASELINE NEW`: the CI regression gate.
struct CompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare a run's report with a baseline and fail on a throughput or latency regression.",
        discussion: """
            Workloads are matched by name and broker. A workload regresses when its publish or \
            consume rate drops below baseline × (1 − throughput threshold), or its p99 publish or \
            end-to-end latency rises above baseline × (1 + latency threshold). Lost messages in \
            the new run, and workloads missing from it, always fail. p50 and p99.9 are shown but \
            do not gate.

            BASELINE and NEW are report.json files or run folders (reports/<run-id>, reports/latest).

            Exit status: 0 no regression, 1 regression, 2 a report could not be read.

            Examples:
              jadugar compare baseline/report.json reports/latest
              jadugar compare base.json reports/latest --threshold 0.05
              jadugar compare base.json new.json --latency-threshold 0.25
              jadugar compare base.json new.json --throughput-threshold 0.05
              jadugar compare base.json new.json --format md >> "$GITHUB_STEP_SUMMARY"
            """
    )

    @Argument(help: "The baseline: a report.json or a run folder.")
    var baseline: String

    @Argument(help: "The run under test: a report.json or a run folder.")
    var new: String

    @Option(name: .long, help: "The allowed relative change for both throughput and latency, e.g. 0.1 for 10%. (default: 0.1)")
    var threshold: Double?

    @Option(name: .long, help: "The allowed relative throughput drop; overrides --threshold.")
    var throughputThreshold: Double?

    @Option(name: .long, help: "The allowed relative p99 latency rise; overrides --threshold.")
    var latencyThreshold: Double?

    @Option(name: .long, help: "Output format: text or md.")
    var format: ComparisonFormat = .text

    enum ComparisonFormat: String, ExpressibleByArgument, CaseIterable {
        case text
        case md
    }

    var thresholds: ComparisonThresholds {
        let base = threshold ?? ComparisonThresholds.default.throughput
        return ComparisonThresholds(
            throughput: throughputThreshold ?? base,
            latency: latencyThreshold ?? threshold ?? ComparisonThresholds.default.latency
        )
    }

    func validate() throws {
        let resolved = thresholds
        guard resolved.throughput >= 0, resolved.throughput < 1, resolved.throughput.isFinite else {
            throw ValidationError("the throughput threshold must be at least 0 and below 1 (0.1 = 10%), got \(resolved.throughput)")
        }
        guard resolved.latency >= 0, resolved.latency.isFinite else {
            throw ValidationError("the latency threshold must be 0 or more (0.1 = 10%), got \(resolved.latency)")
        }
    }

    func run() async throws {
        let baselineReport: RunReport
        let newReport: RunReport
        do {
            baselineReport = try RunReport.load(resultPath: baseline)
            newReport = try RunReport.load(resultPath: new)
        } catch {
            FileHandle.standardError.write(Data("jadugar compare: cannot read a report: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let comparison = ReportComparison(baseline: baselineReport, new: newReport, thresholds: thresholds)
        print(format == .md ? comparison.renderMarkdown() : comparison.renderText(), terminator: "")
        if comparison.hasRegression {
            throw ExitCode(1)
        }
    }
}
