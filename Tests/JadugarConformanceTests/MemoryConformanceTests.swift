import Jadugar
import JadugarConformance
import Testing

/// The universal conformance suite against the embedded broker: one test case per scenario.
/// Every adapter's test target runs the same scenarios against its real broker.
@Suite("Conformance: memory broker", .timeLimit(.minutes(3)))
struct MemoryConformanceTests {
    @Test("scenario", arguments: ConformanceSuite.scenarioNames)
    func scenario(_ name: String) async throws {
        // Extra connections a scenario opens must reach the same broker, so each case shares one by name.
        let shared = "conformance-\(Message.makeID())"
        let result = await ConformanceSuite().run(named: name) { InMemoryBroker(sharedName: shared) }
        if result.outcome.isSkipped {
            try Test.cancel(Comment(rawValue: "skipped: \(result.outcome.reason ?? "")"))
        }
        #expect(result.outcome.isPassed, "\(name): \(result.outcome)")
        #expect(result.counters.lost == 0, "\(name) lost \(result.counters.lost) messages")
    }

    @Test("the memory broker skips only scenarios for capabilities it lacks")
    func skipsAreDeclaredGaps() async {
        let shared = "skips-\(Message.makeID())"
        let report = await ConformanceSuite(configuration: ConformanceConfiguration(scale: .short)).run { InMemoryBroker(sharedName: shared) }
        let skipped = report.results.filter(\.outcome.isSkipped).map(\.scenario).sorted()
        #expect(skipped == ["groups.replay-for-new-group", "reconnect.restart-mid-stream"])
        #expect(report.failed == 0, "\(report.results.filter(\.outcome.isFailed).map { "\($0.scenario): \($0.outcome)" })")
    }

    @Test("stress mode: the whole suite three times at once, nothing lost")
    func stress() async {
        let shared = "stress-\(Message.makeID())"
        let configuration = ConformanceConfiguration(scale: .short, parallelRuns: 3)
        let report = await ConformanceSuite(configuration: configuration).run { InMemoryBroker(sharedName: shared) }
        #expect(report.results.count == 3 * ConformanceSuite.allScenarios.count)
        #expect(report.failed == 0, "\(report.results.filter(\.outcome.isFailed).map { "\($0.scenario): \($0.outcome)" })")
        #expect(report.totals.lost == 0)
    }

    @Test("a failing broker is reported as failed with a reason, not passed")
    func brokenBrokerFails() async {
        // A broker whose queues drop everything must fail the delivery scenarios: the suite can fail.
        let result = await ConformanceSuite(configuration: ConformanceConfiguration(scale: .short, deliveryTimeout: .milliseconds(300)))
            .run(named: "delivery.before-and-after-subscribe") { LossyBroker() }
        #expect(result.outcome.isFailed)
        #expect(result.counters.lost > 0)
    }
}

/// An embedded broker that silently drops every other message: the suite must notice.
final class LossyBroker: MessageBroker {
    let inner = InMemoryBroker()
    let counter = Counter()
    var name: String { "lossy" }
    var capabilities: BrokerCapabilities { inner.capabilities }
    var defaultExchange: String { inner.defaultExchange }
    var isConnected: Bool { inner.isConnected }
    func connect() async throws { try await inner.connect() }
    func disconnect() async throws { try await inner.disconnect() }
    func publish(_ message: Message, options: PublishOptions) async throws {
        if counter.next() % 2 == 0 { try await inner.publish(message, options: options) }
    }
    func consume(queue: String, options: ConsumeOptions) async throws -> DeliveryStream { try await inner.consume(queue: queue, options: options) }
    func get(queue: String) async throws -> Delivery? { try await inner.get(queue: queue) }
    func createQueue(_ name: String, options: QueueOptions) async throws { try await inner.createQueue(name, options: options) }
    func deleteQueue(_ name: String) async throws { try await inner.deleteQueue(name) }
    func purgeQueue(_ name: String) async throws -> Int { try await inner.purgeQueue(name) }
    func queueInfo(_ name: String) async throws -> QueueInfo { try await inner.queueInfo(name) }
    func createExchange(_ name: String, options: ExchangeOptions) async throws { try await inner.createExchange(name, options: options) }
    func deleteExchange(_ name: String) async throws { try await inner.deleteExchange(name) }
    func bind(queue: String, exchange: String, routingKey: String) async throws { try await inner.bind(queue: queue, exchange: exchange, routingKey: routingKey) }
    func unbind(queue: String, exchange: String, routingKey: String) async throws { try await inner.unbind(queue: queue, exchange: exchange, routingKey: routingKey) }
    func createTopic(_ name: String) async throws { try await inner.createTopic(name) }
    func deleteTopic(_ name: String) async throws { try await inner.deleteTopic(name) }
    func listTopics() async throws -> [String] { try await inner.listTopics() }
    func healthCheck() async -> HealthStatus { await inner.healthCheck() }
    func events() -> AsyncStream<BrokerEvent> { inner.events() }
}

import Synchronization

final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
}
