import ArgumentParser
import Foundation
import Jadugar
import JadugarHarness

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run scenario files: workloads (and conformance) on one or more brokers, with reports.",
        discussion: """
            With no file, runs Scenarios/default.yaml on the embedded broker (under a minute).
            Writes reports/<run-id>/ (report.json, report.md, report.html, junit.xml) and points reports/latest at it.

            Examples:
              jadugar run
              jadugar run Scenarios/throughput.yaml --broker memory:// --broker redis://127.0.0.1:6379
              jadugar run Scenarios/latency.yaml --output /tmp/reports --quiet
              jadugar run Scenarios/soak.yaml --broker redis://127.0.0.1:6379 --metrics-port 9464
              jadugar run Scenarios/conformance.yaml --broker amqp://guest:guest@127.0.0.1:5672/%2f --restart rabbitmq='scripts/brokers restart rabbitmq'
            """
    )

    @Argument(help: "Scenario files (YAML). Default: Scenarios/default.yaml.")
    var scenarios: [String] = []

    @Option(name: .long, help: "A broker URL; replaces the scenario's brokers. Repeat to put brokers side by side.")
    var broker: [String] = []

    @Option(name: .long, help: "Where run folders go.")
    var output: String = "reports"

    @Option(name: .long, help: "NAME=COMMAND: how to restart a broker (by name: redis, rabbitmq, kafka) for reconnect scenarios. Repeatable.")
    var restart: [String] = []

    @Option(name: .long, help: "Worker number when several hosts run one scenario (0-65535); each counts only its own messages.")
    var worker: UInt16 = 0

    @Flag(name: .long, help: "No progress line.")
    var quiet = false

    @Option(name: .long, help: "Serve Prometheus metrics at http://127.0.0.1:PORT/metrics while the run lasts (0 picks a free port).")
    var metricsPort: Int?

    func validate() throws {
        for entry in restart where !entry.contains("=") {
            throw ValidationError("--restart takes NAME=COMMAND, got '\(entry)'")
        }
        for url in broker { _ = try BrokerURL(url) }
        if let metricsPort, !(0...65535).contains(metricsPort) {
            throw ValidationError("--metrics-port must be between 0 and 65535, got \(metricsPort)")
        }
    }

    func run() async throws {
        Brokers.registerAll()
        var metricsServer: MetricsServer?
        if let metricsPort {
            MetricsServer.bootstrapMetrics()
            let server = try MetricsServer(port: metricsPort)
            server.start()
            metricsServer = server
            print("Metrics: http://127.0.0.1:\(server.port)/metrics")
        }
        defer { metricsServer?.stop() }
        let files = scenarios.isEmpty ? ["Scenarios/default.yaml"] : scenarios
        var restarts: [String: String] = [:]
        for entry in restart {
            let parts = entry.split(separator: "=", maxSplits: 1)
            restarts[String(parts[0])] = String(parts[1])
        }
        var failed = false
        for file in files {
            let scenario: ScenarioFile
            do {
                scenario = try ScenarioFile.load(path: file)
            } catch let error as ScenarioError {
                throw ValidationError(error.description)
            }
            let options = RunOptions(brokers: broker, workerID: worker, progress: ProgressPrinter(quiet: quiet), restartCommands: restarts, clientLibraries: Brokers.clientLibraries())
            let report = try await ScenarioRunner(options: options).run(scenario)
            let folder = try ReportWriter.write(report, into: URL(fileURLWithPath: output))
            print(MarkdownReport.render(report))
            print("Report: \(folder.path)/report.html")
            let lost = report.workloads.reduce(0) { $0 + $1.summary.lost }
            let conformanceFailures = report.conformance.flatMap(\.scenarios).filter { $0.status == "failed" }.count
            if lost > 0 || conformanceFailures > 0 {
                print("FAILED: \(lost) confirmed messages lost, \(conformanceFailures) conformance scenarios failed")
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}
