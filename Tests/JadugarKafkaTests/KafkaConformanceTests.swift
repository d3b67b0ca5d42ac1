import Foundation
import Jadugar
import JadugarConformance
import JadugarKafka
import Testing

/// The universal conformance suite against the Kafka-compatible test broker: one test case per scenario.
///
/// Every client a scenario makes shares the configuration, so they share the process-wide queue
/// registry and the topic prefix: they are clients of the same broker.
@Suite("Conformance: Kafka broker", .timeLimit(.minutes(10)))
struct KafkaConformanceTests {
    @Test("scenario", arguments: ConformanceSuite.scenarioNames)
    func scenario(_ name: String) async throws {
        let url = try KafkaTestEnvironment.requireURL()
        // For local debugging: JADUGAR_CONFORMANCE_ONLY=name1,name2 runs only those scenarios.
        if let only = ProcessInfo.processInfo.environment["JADUGAR_CONFORMANCE_ONLY"], !only.split(separator: ",").contains(where: { $0 == name }) {
            try Test.cancel("skipped: not in JADUGAR_CONFORMANCE_ONLY")
        }
        let configuration = try KafkaTestEnvironment.configuration(url)
        // Tansu's group joins take seconds and grow with the machine's load (see deliveryTimeout).
        var suiteConfiguration = ConformanceConfiguration(deliveryTimeout: KafkaTestEnvironment.deliveryTimeout)
        if KafkaTestEnvironment.isDurable, let script = ProcessInfo.processInfo.environment["JADUGAR_BROKER_SCRIPT"] {
            suiteConfiguration.restartBroker = { try await restartKafka(script: script) }
        }
        let suite = ConformanceSuite(configuration: suiteConfiguration)
        let result = try await BrokerTestGate.shared.run {
            await suite.run(named: name) { KafkaBroker(configuration: configuration, logger: KafkaTestEnvironment.logger) }
        }
        let seconds = Double(result.duration.components.seconds) + Double(result.duration.components.attoseconds) / 1e18
        print("[kafka conformance] \(name): \(result.outcome) in \(String(format: "%.1f", seconds)) s; published \(result.counters.published), delivered \(result.counters.delivered), duplicates \(result.counters.duplicates), lost \(result.counters.lost)")
        if result.outcome.isSkipped {
            try Test.cancel(Comment(rawValue: "skipped: \(result.outcome.reason ?? "")"))
        }
        #expect(result.outcome.isPassed, "\(name): \(result.outcome)")
        #expect(result.counters.lost == 0, "\(name) lost \(result.counters.lost) messages")
    }

    @Test("the Kafka broker declares exactly the gaps the suite skips for")
    func declaredGaps() throws {
        let url = try KafkaTestEnvironment.requireURL()
        let broker = KafkaBroker(configuration: try KafkaTestEnvironment.configuration(url))
        let missing = ConformanceSuite.allScenarios.filter { scenario in scenario.requires.contains { !broker.capabilities.supports($0) } }.map(\.name).sorted()
        var expected = ["retry.expiration-to-dead-letter", "retry.priority-order"]
        if !KafkaTestEnvironment.isDurable { expected.append("reconnect.restart-mid-stream") }
        #expect(missing == expected.sorted())
        #expect(broker.capabilities.ordering == .key)
        #expect(broker.capabilities.emulated == [.delayedRedelivery, .deadLetter, .prefetch, .browse])
    }
}

/// Restarts the test broker through the project's script (Tansu on durable storage keeps its data).
func restartKafka(script: String) async throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: script)
    process.arguments = ["restart", "kafka"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        process.terminationHandler = { process in
            if process.terminationStatus == 0 {
                continuation.resume()
            } else {
                continuation.resume(throwing: MessagingError(.brokerError, "\(script) restart kafka exited with \(process.terminationStatus)"))
            }
        }
        do { try process.run() } catch { continuation.resume(throwing: error) }
    }
}
