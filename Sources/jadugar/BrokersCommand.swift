import ArgumentParser
import Foundation
import Jadugar

struct BrokersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "brokers",
        abstract: "Inspect brokers.",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Connect to each broker: reachability, round-trip latency, version and declared capabilities.",
            discussion: """
                Exits non-zero when any broker is unreachable. Passwords in URLs are never printed.

                Examples:
                  jadugar brokers check memory://
                  jadugar brokers check redis://127.0.0.1:6379 amqp://guest:guest@127.0.0.1:5672/%2f kafka://127.0.0.1:9092
                """
        )

        @Argument(help: "Broker URLs.")
        var urls: [String]

        @Option(name: .long, help: "Seconds to wait for each connection.")
        var timeout: Int = 10

        func run() async throws {
            Brokers.registerAll()
            var unhealthy = 0
            for url in urls {
                let redacted = BrokerURL.redact(url)
                do {
                    let broker = try BrokerRegistry.makeBroker(url: url)
                    let limit = Duration.seconds(timeout)
                    let connected: Bool = try await withThrowingTaskGroup(of: Bool.self) { group in
                        group.addTask { try await broker.connect(); return true }
                        group.addTask { try await Task.sleep(for: limit); return false }
                        defer { group.cancelAll() }
                        return try await group.next() ?? false
                    }
                    guard connected else { throw MessagingError(.timeout, "no connection within \(timeout) s") }
                    let health = await broker.healthCheck()
                    let capabilities = broker.capabilities
                    print("\(redacted): \(health.isHealthy ? "healthy" : "UNHEALTHY")\(health.latency.map { ", round trip \($0)" } ?? "")\(health.version.map { ", version \($0)" } ?? "")\(health.reason.map { ", \($0)" } ?? "")")
                    let features = capabilities.features.sorted().map { capabilities.emulated.contains($0) ? "\($0.name) (emulated)" : $0.name }
                    print("  broker: \(broker.name); ordering: \(capabilities.ordering); max payload: \(capabilities.maxPayloadBytes) bytes")
                    print("  capabilities: \(features.joined(separator: ", "))")
                    if !health.isHealthy { unhealthy += 1 }
                    try? await broker.disconnect()
                } catch {
                    unhealthy += 1
                    print("\(redacted): UNREACHABLE, \(BrokerURL.redact(String(describing: error)))")
                }
            }
            if unhealthy > 0 { throw ExitCode(1) }
        }
    }
}
