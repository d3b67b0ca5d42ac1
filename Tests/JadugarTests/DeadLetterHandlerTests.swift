import Jadugar
import Testing

@Suite("DeadLetterHandler", .timeLimit(.minutes(1)))
struct DeadLetterHandlerTests {
    @Test("handle() stores a dead letter with reason, error, attempts and original topic")
    func handle() async throws {
        let manager = try await connectedManager()
        let handler = DeadLetterHandler(manager, options: DeadLetterOptions(queue: "failed"))
        try await handler.handle(Message(topic: "orders.created", string: "o-1"), error: MessagingError(.decodeFailed, "bad json"))
        try await handler.handle(Message(topic: "orders.paid", string: "o-2"), error: MessagingError(.timeout, "slow"), reason: "timeout")
        let failed = try await handler.getFailedMessages()
        #expect(failed.map(\.payloadString) == ["o-1", "o-2"])
        let headers = failed[0].metadata.headers
        #expect(headers[JadugarHeader.deadLetterReason] == "decode")
        #expect(headers[JadugarHeader.lastError]?.contains("bad json") == true)
        #expect(headers[JadugarHeader.originalTopic] == "orders.created")
        #expect(headers[JadugarHeader.deadLetteredAt] != nil)
        let stats = try await handler.getStats()
        #expect(stats.count == 2)
        #expect(stats.byReason == ["decode": 1, "timeout": 1])
        #expect(stats.byTopic == ["orders.created": 1, "orders.paid": 1])
        #expect(stats.oldest != nil && stats.oldest! <= stats.newest!)
    }

    @Test("reading the dead letters does not consume them, and keeps their order")
    func browseKeepsOrder() async throws {
        let manager = try await connectedManager()
        let handler = DeadLetterHandler(manager, options: DeadLetterOptions(queue: "failed"))
        for i in 0..<5 { try await handler.handle(Message(topic: "t.\(i)", string: "\(i)"), error: MessagingError(.brokerError, "x")) }
        for _ in 0..<3 {
            #expect(try await handler.getFailedMessages().map(\.payloadString) == ["0", "1", "2", "3", "4"])
        }
        #expect(try await handler.getFailedMessages(limit: 2).count == 2)
        #expect(try await handler.getFailedMessages().count == 5)
    }

    @Test("retry(id) sends one message back to its original topic; retryAll the rest; unknown ids fail")
    func retry() async throws {
        let manager = try await connectedManager()
        let seen = Recorder<String>()
        let subscription = try await manager.subscribe("orders.*", options: SubscribeOptions(group: "orders")) { message in
            seen.append("\(message.topic):\(message.payloadString ?? "")")
        }
        let handler = DeadLetterHandler(manager, options: DeadLetterOptions(queue: "orders.failed"))
        let first = Message(topic: "orders.created", string: "a")
        try await handler.handle(first, error: MessagingError(.brokerError, "x"))
        try await handler.handle(Message(topic: "orders.paid", string: "b"), error: MessagingError(.brokerError, "x"))
        try await handler.retry(first.id)
        #expect(await eventually { seen.values == ["orders.created:a"] })
        await expectError(.notFound) { try await handler.retry(first.id) }
        #expect(try await handler.retryAll() == 1)
        #expect(await eventually { seen.count == 2 })
        #expect(seen.values.last == "orders.paid:b")
        #expect(try await handler.getStats().count == 0)
        await subscription.cancel()
    }

    @Test("a dead letter from a work queue goes back to that queue")
    func retryToQueue() async throws {
        let manager = try await connectedManager()
        try await manager.enqueue("jobs", Message(string: "job"))
        let delivery = try #require(try await manager.broker.get(queue: "jobs"))
        try await delivery.reject(reason: "rejected", error: "crashed")
        let handler = DeadLetterHandler(manager, options: DeadLetterOptions(queue: "jobs.dlq"))
        #expect(try await eventually { try await handler.getStats().count == 1 })
        #expect(try await handler.retryAll() == 1)
        let again = try await manager.dequeue("jobs")
        #expect(again?.payloadString == "job")
        #expect(again?.metadata.headers[JadugarHeader.deadLetterReason] == nil, "dead-letter headers are removed on retry")
    }

    @Test("purge() empties the dead-letter queue")
    func purge() async throws {
        let manager = try await connectedManager()
        let handler = DeadLetterHandler(manager, options: DeadLetterOptions(queue: "failed"))
        for _ in 0..<3 { try await handler.handle(Message(topic: "t"), error: MessagingError(.brokerError, "x")) }
        #expect(try await handler.purge() == 3)
        #expect(try await handler.getFailedMessages().isEmpty)
    }
}
