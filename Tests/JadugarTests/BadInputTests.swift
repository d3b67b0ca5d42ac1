import Jadugar
import Testing

/// One row per kind of bad input: each gets a specific error with a message a person understands.
@Suite("Bad input", .timeLimit(.minutes(1)))
struct BadInputTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let code: MessagingError.Code
        let run: @Sendable (MessageManager) async throws -> Void
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "empty topic", code: .invalidTopic) { try await $0.publish("", Message()) },
        Case(name: "topic with a wildcard", code: .invalidTopic) { try await $0.publish("orders.*", Message()) },
        Case(name: "topic with an empty word", code: .invalidTopic) { try await $0.publish("orders..paid", Message()) },
        Case(name: "topic over 255 bytes", code: .invalidTopic) { try await $0.publish(String(repeating: "ü", count: 128), Message()) },
        Case(name: "topic with a control character", code: .invalidTopic) { try await $0.publish("a\u{0}b", Message()) },
        Case(name: "empty pattern", code: .invalidPattern) { _ = try await $0.subscribe("") { _ in } },
        Case(name: "wildcard inside a word", code: .invalidPattern) { _ = try await $0.subscribe("orders.#paid") { _ in } },
        Case(name: "payload over the maximum", code: .payloadTooLarge) { manager in
            try await manager.publish("big", Message(payload: [UInt8](repeating: 0, count: (16 << 20) + 1)))
        },
        Case(name: "prefetch zero", code: .invalidArgument) { _ = try await $0.subscribe("t", options: SubscribeOptions(prefetch: 0)) { _ in } },
        Case(name: "negative handler timeout", code: .invalidArgument) { _ = try await $0.subscribe("t", options: SubscribeOptions(handlerTimeout: .seconds(-1))) { _ in } },
        Case(name: "zero concurrency", code: .invalidArgument) { _ = try await $0.subscribe("t", options: SubscribeOptions(concurrency: 0)) { _ in } },
        Case(name: "negative retry delay", code: .invalidArgument) { _ = try await $0.subscribe("t", options: SubscribeOptions(retry: .fixed(attempts: 3, delay: .seconds(-1)))) { _ in } },
        Case(name: "zero retry attempts", code: .invalidArgument) { _ = try await $0.subscribe("t", options: SubscribeOptions(retry: RetryPolicy(attempts: 0, delay: .zero))) { _ in } },
        Case(name: "negative dequeue wait", code: .invalidArgument) { _ = try await $0.dequeue("q", options: DequeueOptions(wait: .seconds(-1))) },
        Case(name: "negative enqueue expiration", code: .invalidArgument) { try await $0.enqueue("q", Message(), options: EnqueueOptions(expiration: .seconds(-1))) },
        Case(name: "empty queue name", code: .invalidQueueName) { try await $0.enqueue("", Message()) },
        Case(name: "zero max length", code: .invalidArgument) { try await $0.broker.createQueue("q", options: QueueOptions(maxLength: 0)) },
        Case(name: "negative nack delay", code: .invalidArgument) { manager in
            try await manager.enqueue("q", Message())
            let delivery = try await manager.broker.get(queue: "q")
            try await delivery?.nack(requeue: true, delay: .seconds(-1))
        },
        Case(name: "double settlement", code: .brokerError) { manager in
            try await manager.enqueue("q", Message())
            let delivery = try #require(try await manager.broker.get(queue: "q"))
            try await delivery.ack()
            try await delivery.ack()
        },
        Case(name: "unknown queue", code: .notFound) { _ = try await $0.broker.consume(queue: "missing", options: ConsumeOptions()) },
        Case(name: "bind to a missing exchange", code: .notFound) { manager in
            try await manager.broker.createQueue("q", options: .default)
            try await manager.broker.bind(queue: "q", exchange: "nope", routingKey: "a")
        },
        Case(name: "redeclare a queue with other settings", code: .alreadyExists) { manager in
            try await manager.broker.createQueue("q", options: QueueOptions(maxPriority: 5))
            try await manager.broker.createQueue("q", options: QueueOptions(maxPriority: 9))
        },
        Case(name: "mandatory publish with no queue bound", code: .unroutable) { try await $0.publish("nobody.listens", Message(), options: PublishOptions(mandatory: true)) },
        Case(name: "request timeout zero", code: .invalidArgument) { _ = try await RequestReply($0).request("t", Message(), options: RequestOptions(timeout: .zero)) },
        Case(name: "delete the default exchange", code: .accessDenied) { try await $0.broker.deleteExchange(InMemoryBroker.defaultExchangeName) },
    ]

    @Test("bad input gets a specific error", arguments: cases)
    func badInput(_ item: Case) async throws {
        let manager = try await connectedManager()
        await expectError(item.code) { try await item.run(manager) }
    }

    @Test("publishing before connect and after disconnect is notConnected")
    func notConnected() async throws {
        let manager = MessageManager(broker: InMemoryBroker())
        await expectError(.notConnected) { try await manager.publish("a", Message()) }
        try await manager.connect()
        try await manager.publish("a", Message())
        try await manager.disconnect()
        await expectError(.notConnected) { try await manager.publish("a", Message()) }
        await expectError(.notConnected) { _ = try await manager.subscribe("a") { _ in } }
    }

    @Test("URLs: unknown scheme, malformed, bad port; passwords never appear in errors", arguments: [
        ("nats://user:hunter2@localhost:4222", MessagingError.Code.unsupportedScheme),
        ("redis//hunter2@localhost", .invalidURL),
        ("amqp://guest:hunter2@localhost:99999/", .invalidURL),
        ("amqp://guest:hunter2@:5672/", .invalidURL),
        ("kafka://a:1,,b:2", .invalidURL),
    ])
    func urls(url: String, code: MessagingError.Code) {
        do {
            _ = try MessageManager(options: MessageOptions(url: url))
            Issue.record("\(url) was accepted")
        } catch let error as MessagingError {
            #expect(error.code == code)
            #expect(!error.description.contains("hunter2"), "the password leaked: \(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
