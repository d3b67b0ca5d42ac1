import Foundation
import Jadugar
import JadugarConformance

/// Runs a scenario file against its brokers and produces a ``RunReport``.
///
/// ```swift
/// let scenario = try ScenarioFile.load(path: "Scenarios/default.yaml")
/// let report = try await ScenarioRunner(options: RunOptions()).run(scenario)
/// ```
public struct ScenarioRunner: Sendable {
    /// How the runner runs.
    public var options: RunOptions

    /// Creates a runner.
    public init(options: RunOptions = RunOptions()) {
        self.options = options
    }

    /// Runs every workload on every broker (brokers side by side), then the conformance suite if asked.
    public func run(_ scenario: ScenarioFile) async throws -> RunReport {
        let started = Date()
        let runID = options.runID ?? Self.makeRunID(started)
        let urls = options.brokers.isEmpty ? scenario.brokers : options.brokers
        var brokers: [BrokerDescription] = []
        var workloads: [WorkloadResult] = []
        var conformance: [ConformanceSuiteResult] = []
        for url in urls {
            let parsed = try BrokerURL(url)
            // A bare memory:// would give every client its own private broker; the run shares one.
            let target = parsed.scheme == "memory" && parsed.host.isEmpty && parsed.path.isEmpty ? try BrokerURL("memory://run-\(runID)") : parsed
            let factory: @Sendable () throws -> any MessageBroker = { try BrokerRegistry.makeBroker(url: target) }
            let probe = try factory()
            var version: String?
            do {
                try await probe.connect()
                version = await probe.healthCheck().version
                try? await probe.disconnect()
            } catch {
                throw MessagingError(.connectionFailed, "cannot reach \(parsed.redacted): \(error)")
            }
            brokers.append(BrokerDescription(name: probe.name, url: parsed.redacted, version: version))
            for workload in scenario.workloads {
                let runner = WorkloadRunner(
                    workload: workload, brokerURL: parsed.redacted, brokerName: probe.name, runID: runID,
                    workerID: options.workerID, progress: options.progress, factory: factory,
                    restartCommand: options.restartCommands[probe.name]
                )
                workloads.append(try await runner.run())
            }
            if let settings = scenario.conformance {
                var configuration = ConformanceConfiguration(scale: settings.scale == "short" ? .short : .full, only: settings.only)
                if let command = options.restartCommands[probe.name] {
                    configuration.restartBroker = { try await Shell.run(command) }
                }
                let report = await ConformanceSuite(configuration: configuration).run { try factory() }
                conformance.append(ConformanceSuiteResult(
                    broker: probe.name, url: parsed.redacted,
                    scenarios: report.results.map { result in
                        ConformanceEntry(
                            scenario: result.scenario, category: result.category, status: result.outcome.status,
                            reason: result.outcome.reason.map(BrokerURL.redact), published: result.counters.published,
                            delivered: result.counters.delivered, duplicates: result.counters.duplicates, lost: result.counters.lost,
                            durationSeconds: result.duration.seconds
                        )
                    },
                    durationSeconds: report.duration.seconds
                ))
                options.progress.finish("[\(probe.name)] conformance: \(report.passed) passed, \(report.failed) failed, \(report.skipped) skipped")
            }
        }
        return RunReport(
            runID: runID, startedAt: started, finishedAt: Date(),
            environment: await RunEnvironment.current(brokers: brokers, clientLibraries: options.clientLibraries),
            scenario: scenario.source, workloads: workloads, conformance: conformance
        )
    }

    /// A run id: UTC time plus a random suffix, sortable and unique.
    public static func makeRunID(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return "\(formatter.string(from: date))-\(String(UInt16.random(in: .min ... .max), radix: 16).leftPadded(to: 4))"
    }
}

/// How a run is carried out.
public struct RunOptions: Sendable {
    /// Broker URLs that replace the scenario's. Default: empty (use the scenario's).
    public var brokers: [String]
    /// A fixed run id. Default: `nil` (time plus a random suffix).
    public var runID: String?
    /// This worker's number when several hosts run one scenario; consumers count only their own worker's messages. Default: `0`.
    public var workerID: UInt16
    /// Where progress goes.
    public var progress: ProgressPrinter
    /// Shell commands that restart each broker (by broker name), for the reconnect scenario.
    public var restartCommands: [String: String]
    /// Client library versions to record (librdkafka, rabbitmq-c, hiredis).
    public var clientLibraries: [String: String]

    /// Creates options.
    public init(brokers: [String] = [], runID: String? = nil, workerID: UInt16 = 0, progress: ProgressPrinter = ProgressPrinter(), restartCommands: [String: String] = [:], clientLibraries: [String: String] = [:]) {
        self.brokers = brokers
        self.runID = runID
        self.workerID = workerID
        self.progress = progress
        self.restartCommands = restartCommands
        self.clientLibraries = clientLibraries
    }
}

extension RunEnvironment {
    /// Describes this machine.
    static func current(brokers: [BrokerDescription], clientLibraries: [String: String]) async -> RunEnvironment {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let release = (try? String(contentsOfFile: "/etc/os-release", encoding: .utf8)) ?? ""
        let pretty = release.split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }.map { String($0.dropFirst(12)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        var uts = utsname()
        uname(&uts)
        let kernel = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return RunEnvironment(
            hostname: ProcessInfo.processInfo.hostName,
            cpuModel: model,
            cores: ProcessInfo.processInfo.activeProcessorCount,
            memoryBytes: ProcessInfo.processInfo.physicalMemory,
            operatingSystem: "\(pretty ?? "Linux") (kernel \(kernel))",
            toolchain: await Shell.firstLine("swift --version 2>/dev/null") ?? "unknown",
            gitCommit: await Shell.firstLine("git rev-parse HEAD 2>/dev/null"),
            clientLibraries: clientLibraries,
            brokers: brokers
        )
    }
}

/// Runs shell commands for broker restarts and environment facts.
///
/// ```swift
/// try await Shell.run("scripts/brokers restart redis")
/// ```
public enum Shell {
    /// Runs a command with `/bin/sh -c` and a clean signal mask (see ``BrokerCommand``); fails
    /// with its exit status and the end of its output (credentials redacted).
    public static func run(_ command: String) async throws {
        try await BrokerCommand.check(command)
    }

    /// The first line a command prints, or `nil` when it fails. Waits on a thread of its own:
    /// `swift --version` can take a second, and a blocked cooperative thread starves everything else.
    static func firstLine(_ command: String) async -> String? {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/bin/sh")
                process.arguments = ["-c", command]
                let output = Pipe()
                process.standardOutput = output
                process.standardError = FileHandle.nullDevice
                guard (try? process.run()) != nil else {
                    continuation.resume(returning: nil)
                    return
                }
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                let line = String(decoding: data, as: UTF8.self).split(separator: "\n").first.map(String.init)
                continuation.resume(returning: process.terminationStatus == 0 ? line : nil)
            }
            thread.start()
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
