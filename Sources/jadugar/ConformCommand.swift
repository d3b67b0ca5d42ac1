import ArgumentParser
import Foundation
import Jadugar
import JadugarConformance
import JadugarHarness

struct ConformCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conform",
        abstract: "Run the universal conformance suite against one or more brokers.",
        discussion: """
            Prints one row per scenario: result, reason and duration. Exits non-zero when any scenario fails.

            Examples:
              jadugar conform --broker memory://
              jadugar conform --broker memory:// --short
              jadugar conform --broker memory:// --only request-reply --only retry
              jadugar conform --broker memory:// --stress 4
            """
    )

    @Option(name: .long, help: "A broker URL (memory://, redis://, amqp://, kafka://). Repeat for several.")
    var broker: [String] = ["memory://"]

    @Flag(name: .long, help: "Shrink message counts about five-fold for a quick run.")
    var short = false

    @Option(name: .long, help: "Run only scenarios whose name contains this text. Repeatable.")
    var only: [String] = []

    @Option(name: .long, help: "Stress mode: run this many copies of the suite at once.")
    var stress: Int = 1

    @Option(name: .long, help: "A shell command that restarts the broker, for the reconnect scenario.")
    var restartCommand: String?

    @Option(name: .long, help: "Seconds a scenario may run before it fails.")
    var timeout: Int = 120

    func validate() throws {
        if stress < 1 { throw ValidationError("--stress must be at least 1, got \(stress)") }
        if timeout < 1 { throw ValidationError("--timeout must be at least 1 second, got \(timeout)") }
        for url in broker { _ = try BrokerURL(url) }
    }

    func run() async throws {
        var configuration = ConformanceConfiguration(
            scale: short ? .short : .full, scenarioTimeout: .seconds(timeout), only: only, parallelRuns: stress
        )
        if let restartCommand {
            configuration.restartBroker = { try await Shell.run(restartCommand) }
        }
        var failed = false
        for url in broker {
            let parsed = try BrokerURL(url)
            _ = try BrokerRegistry.makeBroker(url: parsed)
            print("Conformance suite against \(parsed.redacted) (\(configuration.scale) scale\(stress > 1 ? ", \(stress) parallel runs" : ""))")
            let suite = ConformanceSuite(configuration: configuration)
            let target = try Self.sharedTarget(parsed)
            let report = await suite.run { try BrokerRegistry.makeBroker(url: target) }
            print(ConformanceTable.render(report))
            failed = failed || !report.succeeded
        }
        if failed { throw ExitCode(1) }
    }
}

extension ConformCommand {
    /// Scenarios open extra connections that must reach the same broker; a bare `memory://` would
    /// give each its own private broker, so the run gets a shared one of its own.
    static func sharedTarget(_ url: BrokerURL) throws -> BrokerURL {
        guard url.scheme == "memory", url.host.isEmpty, url.path.isEmpty else { return url }
        return try BrokerURL("memory://conform-\(Message.makeID())")
    }
}
