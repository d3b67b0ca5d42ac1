import Jadugar
import Testing

@Suite("InMemoryBroker", .timeLimit(.minutes(1)))
struct InMemoryBrokerTests {
    func connected(_ configuration: InMemoryBroker.Configuration = InMemoryBroker.Configuration()) async throws -> InMemoryBroker {
        let broker = InMemoryBroker(configuration: configuration)
        try await broker.connect()
        return broker
    }

    @Test("direct, fanout and headers exchanges route as in AMQP")
    func exchanges() async throws {
        let broker = try await connected()
        for queue in ["d", "f1", "f2", "h"] { try await broker.createQueue(queue, options: .default) }
        try await broker.createExchange("direct", options: ExchangeOptions(type: .direct))
        try await broker.createExchange("fan", options: ExchangeOptions(type: .fanout))
        try await broker.createExchange("hdr", options: ExchangeOptions(type: .headers))
        try await broker.bind(queue: "d", exchange: "direct", routingKey: "exact")
        try await broker.bind(queue: "f1", exchange: "fan", routingKey: "")
        try await broker.bind(queue: "f2", exchange: "fan", routingKey: "")
        try await broker.bind(queue: "h", exchange: "hdr", routingKey: "region=eu, tier=gold")
        try await broker.publish(Message(topic: "exact"), options: PublishOptions(exchange: "direct"))
        try await broker.publish(Message(topic: "exact.not"), options: PublishOptions(exchange: "direct"))
        try await broker.publish(Message(topic: "whatever"), options: PublishOptions(exchange: "fan"))
        try await broker.publish(Message(topic: "x", metadata: MessageMetadata(headers: ["region": "eu", "tier": "gold"])), options: PublishOptions(exchange: "hdr"))
        try await broker.publish(Message(topic: "x", metadata: MessageMetadata(headers: ["region": "eu"])), options: PublishOptions(exchange: "hdr"))
        #expect(try await broker.queueInfo("d").ready == 1)
        #expect(try await broker.queueInfo("f1").ready == 1)
        #expect(try await broker.queueInfo("f2").ready == 1)
        #expect(try await broker.queueInfo("h").ready == 1)
        await expectError(.alreadyExists) { try await broker.createExchange("fan", options: ExchangeOptions(type: .topic)) }
        try await broker.unbind(queue: "f2", exchange: "fan", routingKey: "")
        try await broker.publish(Message(topic: "again"), options: PublishOptions(exchange: "fan"))
        #expect(try await broker.queueInfo("f2").ready == 1)
        try await broker.deleteExchange("fan")
        await expectError(.notFound) { try await broker.publish(Message(topic: "a"), options: PublishOptions(exchange: "fan")) }
    }

    @Test("a queue bound by two matching patterns gets one copy")
    func oneCopyPerQueue() async throws {
        let broker = try await connected()
        try await broker.createQueue("q", options: .default)
        try await broker.bind(queue: "q", exchange: broker.defaultExchange, routingKey: "a.*")
        try await broker.bind(queue: "q", exchange: broker.defaultExchange, routingKey: "#")
        try await broker.publish(Message(topic: "a.b"), options: .default)
        #expect(try await broker.queueInfo("q").ready == 1)
    }

    @Test("overflow: reject-publish fails the publish; drop-head dead-letters the oldest with reason maxlen")
    func overflow() async throws {
        let broker = try await connected()
        try await broker.createQueue("full", options: QueueOptions(maxLength: 2))
        for _ in 0..<2 { try await broker.send(Message(), toQueue: "full") }
        await expectError(.queueFull) { try await broker.send(Message(), toQueue: "full") }
        try await broker.createQueue("dlq", options: .default)
        try await broker.createQueue("rolling", options: QueueOptions(maxLength: 2, overflow: .dropHead, deadLetter: .queue("dlq")))
        for i in 0..<3 { try await broker.send(Message(string: "\(i)"), toQueue: "rolling") }
        #expect(try await broker.queueInfo("rolling").ready == 2)
        let dropped = try #require(try await broker.get(queue: "dlq"))
        #expect(dropped.message.payloadString == "0")
        #expect(dropped.message.metadata.headers[JadugarHeader.deadLetterReason] == "maxlen")
    }

    @Test("the default queue limit bounds memory")
    func defaultLimit() async throws {
        let broker = try await connected(InMemoryBroker.Configuration(defaultMaxLength: 10))
        try await broker.createQueue("q", options: .default)
        for _ in 0..<10 { try await broker.send(Message(), toQueue: "q") }
        await expectError(.queueFull) { try await broker.send(Message(), toQueue: "q") }
    }

    @Test("queue TTL dead-letters messages nobody consumed")
    func queueTTL() async throws {
        let broker = try await connected()
        try await broker.createQueue("dlq", options: .default)
        try await broker.createQueue("short", options: QueueOptions(messageTTL: .milliseconds(30), deadLetter: .queue("dlq")))
        try await broker.send(Message(string: "old"), toQueue: "short")
        #expect(try await eventually { try await broker.queueInfo("dlq").ready == 1 })
        #expect(try await broker.queueInfo("short").ready == 0)
        let dead = try #require(try await broker.get(queue: "dlq"))
        #expect(dead.message.metadata.headers[JadugarHeader.deadLetterReason] == "expired")
        #expect(dead.message.metadata.headers[JadugarHeader.originalQueue] == "short")
    }

    @Test("a delayed requeue comes back after the delay, counted as delayed meanwhile")
    func delayedRequeue() async throws {
        let broker = try await connected()
        try await broker.createQueue("q", options: .default)
        try await broker.send(Message(), toQueue: "q")
        let first = try #require(try await broker.get(queue: "q"))
        let start = ContinuousClock.now
        try await first.nack(requeue: true, delay: .milliseconds(80))
        #expect(try await broker.queueInfo("q").delayed == 1)
        #expect(try await broker.get(queue: "q") == nil)
        #expect(try await eventually { try await broker.queueInfo("q").ready == 1 })
        #expect(ContinuousClock.now - start >= .milliseconds(80))
        let again = try #require(try await broker.get(queue: "q"))
        #expect(again.deliveryCount == 2 && again.redelivered)
    }

    @Test("exclusive queues belong to their connection and vanish with it; auto-delete queues vanish with their last consumer")
    func lifetimes() async throws {
        let shared = "lifetimes-\(Message.makeID())"
        let first = InMemoryBroker(sharedName: shared), second = InMemoryBroker(sharedName: shared)
        try await first.connect()
        try await second.connect()
        try await first.createQueue("mine", options: QueueOptions(exclusive: true))
        await expectError(.accessDenied) { _ = try await second.consume(queue: "mine", options: ConsumeOptions()) }
        try await first.createQueue("temp", options: QueueOptions(autoDelete: true))
        let stream = try await second.consume(queue: "temp", options: ConsumeOptions())
        await stream.close()
        await expectError(.notFound) { _ = try await second.queueInfo("temp") }
        try await first.disconnect()
        await expectError(.notFound) { _ = try await second.queueInfo("mine") }
    }

    @Test("two clients of one shared broker see the same queues and messages")
    func shared() async throws {
        let name = "shared-\(Message.makeID())"
        let publisher = try BrokerRegistry.makeBroker(url: "memory://\(name)")
        let consumer = try BrokerRegistry.makeBroker(url: "memory://\(name)")
        try await publisher.connect()
        try await consumer.connect()
        let stream = try await consumer.subscribe("a.#", options: SubscribeOptions(group: "g"))
        try await publisher.publish(Message(topic: "a.b", string: "hi"), options: .default)
        let delivery = try #require(try await stream.next())
        #expect(delivery.message.payloadString == "hi")
        try await delivery.ack()
        let lonely = try BrokerRegistry.makeBroker(url: "memory://")
        try await lonely.connect()
        await expectError(.notFound) { _ = try await lonely.queueInfo("g") }
    }

    @Test("disconnect redelivers what the client held unacknowledged")
    func disconnectRedelivers() async throws {
        let name = "redeliver-\(Message.makeID())"
        let first = InMemoryBroker(sharedName: name), second = InMemoryBroker(sharedName: name)
        try await first.connect()
        try await second.connect()
        try await first.createQueue("q", options: .default)
        try await first.send(Message(string: "held"), toQueue: "q")
        let stream = try await first.consume(queue: "q", options: ConsumeOptions())
        _ = try #require(try await stream.next())
        #expect(try await second.queueInfo("q").unacknowledged == 1)
        try await first.disconnect()
        let again = try #require(try await second.get(queue: "q"))
        #expect(again.redelivered && again.message.payloadString == "held")
    }

    @Test("a cancelled waiting consumer task returns nil instead of hanging")
    func cancellation() async throws {
        let broker = try await connected()
        try await broker.createQueue("empty", options: .default)
        let stream = try await broker.consume(queue: "empty", options: ConsumeOptions())
        let waiter = Task { try await stream.next() }
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        #expect(try await waiter.value == nil)
        try await broker.send(Message(string: "still here"), toQueue: "empty")
        #expect(try await broker.get(queue: "empty")?.message.payloadString == "still here")
    }
}
