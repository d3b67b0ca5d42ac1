import ArgumentParser
import Foundation
import JadugarHarness

/// `jadugar report`: renders a report.json in another format, or merges worker reports.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Render a run's report as Markdown, HTML, JUnit XML or JSON, or merge the reports of several workers.",
        discussion: """
            RESULT is a report.json file or a run folder (reports/<run-id>, reports/latest). \
            Without --output the result goes to standard output.

            With --merge, every RESULT is a worker's report of the same scenario. Workloads with \
            the same name and broker are combined: counters summed, latency histograms merged \
            bucket by bucket and their percentiles recomputed, rates recomputed over the longest \
            worker's duration, time series aligned and summed. The field-by-field rules are in \
            reports/README.md.

            Exit status: 0 done, 2 a report could not be read or the output not written.

            Examples:
              jadugar report reports/latest --format md >> "$GITHUB_STEP_SUMMARY"
              jadugar report reports/latest --format html --output report.html
              jadugar report reports/latest/report.json --format junit -o junit.xml
              jadugar report --merge w1/report.json w2/report.json -o merged.json
              jadugar report --merge w1.json w2.json w3.json --format html -o all.html
            """
    )

    @Argument(help: ArgumentHelp("A report.json or a run folder; several with --merge.", valueName: "result"))
    var results: [String]

    @Option(name: .long, help: "Output format: md, html, junit or json. (default: md; json with --merge)")
    var format: ReportFormat?

    @Option(name: [.short, .long], help: "Write to this file instead of standard output.")
    var output: String?

    @Flag(name: .long, help: "Merge the reports of several workers into one.")
    var merge = false

    @Option(name: .long, help: "With --merge: the merged report's run id. (default: the first report's id with -merged)")
    var runID: String?

    enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
        case md
        case html
        case junit
        case json
    }

    func validate() throws {
        if results.isEmpty {
            throw ValidationError("give a report: jadugar report reports/latest --format md")
        }
        if !merge, results.count > 1 {
            throw ValidationError("one RESULT at a time; to combine worker reports use --merge")
        }
        if merge, results.count < 2 {
            throw ValidationError("--merge needs at least two reports")
        }
        if runID != nil, !merge {
            throw ValidationError("--run-id only applies with --merge")
        }
    }

    func run() async throws {
        let report: RunReport
        do {
            let reports = try results.map { try RunReport.load(resultPath: $0) }
            report = merge ? try ReportMerge.merge(reports, runID: runID) : reports[0]
        } catch {
            FileHandle.standardError.write(Data("jadugar report: \(error)\n".utf8))
            throw ExitCode(2)
        }

        let text: Data
        switch format ?? (merge ? .json : .md) {
        case .md:
            text = Data(MarkdownReport.render(report).utf8)
        case .html:
            text = Data(HTMLReport.render(report).utf8)
        case .junit:
            text = Data(JUnitReport.render(report).utf8)
        case .json:
            do {
                text = try report.encoded() + Data("\n".utf8)
            } catch {
                FileHandle.standardError.write(Data("jadugar report: cannot encode the report as JSON: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }

        guard let output else {
            FileHandle.standardOutput.write(text)
            return
        }
        do {
            try text.write(to: URL(fileURLWithPath: output), options: .atomic)
        } catch {
            FileHandle.standardError.write(Data("jadugar report: cannot write \(output): \(error.localizedDescription)\n".utf8))
            throw ExitCode(2)
        }
        FileHandle.standardError.write(Data("Wrote \(output)\n".utf8))
    }
}
