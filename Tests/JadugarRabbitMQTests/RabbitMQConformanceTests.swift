import Foundation
import Jadugar
import JadugarConformance
import JadugarRabbitMQ
import Testing

/// The universal conformance suite against the real rabbitmq-server from `scripts/brokers`: one
/// test case per scenario, each with clients whose connections carry a name of their own.
///
/// The reconnect scenario's "restart" closes this case's connections from the broker side
/// (`rabbitmq_networking:close_connection`, what `rabbitmqctl close_connection` does), so other
/// users of the shared broker are not disturbed; with `JADUGAR_RABBITMQ_FULL_RESTART=1` it runs
/// `scripts/brokers restart rabbitmq` instead (8-15 s, and everyone's connections drop).
@Suite("Conformance: RabbitMQ", .timeLimit(.minutes(5)))
struct RabbitMQConformanceTests {
    @Test("scenario", arguments: ConformanceSuite.scenarioNames)
    func scenario(_ name: String) async throws {
        let url = try RabbitMQTestEnvironment.url()
        let connectionName = RabbitMQTestEnvironment.uniqueName("conformance.\(name)")
        var configuration = try RabbitMQConfiguration(url: url)
        configuration.connectionName = connectionName
        configuration.reconnect = RabbitMQReconnectPolicy(initialDelay: .milliseconds(50), maxDelay: .seconds(1))
        let clientConfiguration = configuration
        var suiteConfiguration = ConformanceConfiguration(scale: Self.scale)
        if name.hasPrefix("reconnect.") {
            let script = try RabbitMQTestEnvironment.brokerScript()
            suiteConfiguration.restartBroker = {
                if ProcessInfo.processInfo.environment["JADUGAR_RABBITMQ_FULL_RESTART"] == "1" {
                    let result = try await ProcessRunner.run(script, ["restart", "rabbitmq"], timeout: .seconds(120))
                    if result.status != 0 { throw RabbitMQTestEnvironment.MissingEnvironment(description: "scripts/brokers restart rabbitmq failed: \(result.errorOutput)") }
                } else {
                    let closed = try await RabbitMQTestEnvironment.closeConnections(named: connectionName)
                    if closed == 0 { throw RabbitMQTestEnvironment.MissingEnvironment(description: "no connection named \(connectionName) was open to close") }
                }
            }
        }
        let result = await ConformanceSuite(configuration: suiteConfiguration).run(named: name) {
            RabbitMQBroker(configuration: clientConfiguration)
        }
        if result.outcome.isSkipped {
            try Test.cancel(Comment(rawValue: "skipped: \(result.outcome.reason ?? "")"))
        }
        #expect(result.outcome.isPassed, "\(name): \(result.outcome)")
        #expect(result.counters.lost == 0, "\(name) lost \(result.counters.lost) messages")
    }

    /// `JADUGAR_CONFORMANCE_SCALE=short` runs about a fifth of the messages; the default is the full counts.
    static var scale: ConformanceConfiguration.Scale {
        ProcessInfo.processInfo.environment["JADUGAR_CONFORMANCE_SCALE"] == "short" ? .short : .full
    }

    @Test("RabbitMQ skips only the scenarios for capabilities it lacks (replay)")
    func skipsAreDeclaredGaps() throws {
        let broker = RabbitMQBroker(configuration: RabbitMQConfiguration())
        let skipped = ConformanceSuite.allScenarios
            .filter { !$0.requires.allSatisfy(broker.capabilities.supports) }
            .map(\.name)
        #expect(skipped == ["groups.replay-for-new-group"])
        #expect(broker.capabilities.emulated == [.delayedRedelivery, .reconnect])
    }
}
