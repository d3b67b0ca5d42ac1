import Foundation
import Jadugar
import Testing

@Suite("MessageManager", .timeLimit(.minutes(1)))
struct MessageManagerTests {
    struct User: Codable, Equatable { var id: Int; var name: String }

    @Test("connect, healthCheck, disconnect")
    func lifecycle() async throws {
        let manager = try MessageManager(options: MessageOptions(url: "memory://"))
        #expect(!manager.broker.isConnected)
        #expect(await manager.healthCheck().isHealthy == false)
        try await manager.connect()
        let health = await manager.healthCheck()
        #expect(health.isHealthy && health.latency != nil && health.version == InMemoryBroker.version)
        try await manager.disconnect()
        #expect(!manager.broker.isConnected)
        #expect(await manager.healthCheck().reason == "not connected")
    }

    @Test("publish and subscribe: JSON payload and metadata arrive")
    func pubsub() async throws {
        let manager = try await connectedManager()
        let received = Recorder<Message>()
        let subscription = try await manager.subscribe("user.*") { received.append($0) }
        var metadata = MessageMetadata(correlationId: "c-1", priority: 3)
        metadata.headers["tenant"] = "acme"
        try await manager.publish("user.created", Message(json: User(id: 1, name: "Ada"), metadata: metadata))
        #expect(await eventually { received.count == 1 })
        let message = try #require(received.values.first)
        #expect(try message.decode(User.self) == User(id: 1, name: "Ada"))
        #expect(message.topic == "user.created")
        #expect(message.metadata.correlationId == "c-1")
        #expect(message.metadata.headers["tenant"] == "acme")
        #expect(message.metadata.contentType == "application/json")
        #expect(subscription.statistics.processed == 1)
        await subscription.cancel()
        #expect(!subscription.isActive)
    }

    @Test("publish options override priority, expiration and headers")
    func publishOptions() async throws {
        let manager = try await connectedManager()
        try await manager.broker.createQueue("q", options: QueueOptions(maxPriority: 9))
        try await manager.broker.bind(queue: "q", exchange: manager.broker.defaultExchange, routingKey: "t")
        try await manager.publish("t", Message(), options: PublishOptions(priority: 7, expiration: .seconds(60), headers: ["h": "v"]))
        let message = try #require(try await manager.dequeue("q"))
        #expect(message.metadata.priority == 7)
        #expect(message.metadata.expiration == .seconds(60))
        #expect(message.metadata.headers["h"] == "v")
    }

    @Test("a publish retry policy retries a failing publish")
    func publishRetry() async throws {
        let manager = try await connectedManager()
        try await manager.broker.createQueue("small", options: QueueOptions(maxLength: 1))
        try await manager.broker.bind(queue: "small", exchange: manager.broker.defaultExchange, routingKey: "s")
        try await manager.publish("s", Message())
        let drain = Task {
            try await Task.sleep(for: .milliseconds(30))
            _ = try await manager.dequeue("small")
        }
        try await manager.publish("s", Message(), options: PublishOptions(retry: .fixed(attempts: 20, delay: .milliseconds(10))))
        try await drain.value
        await expectError(.queueFull) { try await manager.publish("s", Message()) }
    }

    @Test("enqueue and dequeue, with wait, on the default queue")
    func queues() async throws {
        let manager = try await connectedManager(MessageOptions(queue: "tasks"))
        #expect(try await manager.dequeue("tasks") == nil)
        try await manager.enqueue(Message(string: "one"))
        try await manager.enqueue("tasks", Message(string: "two"), options: EnqueueOptions(headers: ["k": "v"]))
        #expect(try await manager.dequeue()?.payloadString == "one")
        let two = try await manager.dequeue("tasks")
        #expect(two?.payloadString == "two" && two?.metadata.headers["k"] == "v")
        let late = Task {
            try await Task.sleep(for: .milliseconds(50))
            try await manager.enqueue(Message(string: "three"))
        }
        #expect(try await manager.dequeue(options: DequeueOptions(wait: .seconds(5)))?.payloadString == "three")
        try await late.value
        let start = ContinuousClock.now
        #expect(try await manager.dequeue(options: DequeueOptions(wait: .milliseconds(50))) == nil)
        #expect(ContinuousClock.now - start >= .milliseconds(50))
    }

    @Test("a failing handler is dead-lettered with the error; with retry it is retried first")
    func handlerFailure() async throws {
        let manager = try await connectedManager()
        let calls = Recorder<Int>()
        let subscription = try await manager.subscribe("jobs", options: SubscribeOptions(group: "workers", retry: .fixed(attempts: 3, delay: .milliseconds(5)))) { message in
            calls.append(1)
            throw MessagingError(.brokerError, "database down")
        }
        try await manager.publish("jobs", Message(string: "x"))
        let dead = DeadLetterHandler(manager, options: DeadLetterOptions(queue: "workers.dlq"))
        #expect(try await eventually { try await dead.getStats().count == 1 })
        #expect(calls.count == 3)
        let letter = try #require(try await dead.getFailedMessages().first)
        #expect(letter.metadata.headers[JadugarHeader.attempts] == "3")
        #expect(letter.metadata.headers[JadugarHeader.lastError]?.contains("database down") == true)
        #expect(subscription.statistics.retried == 2 && subscription.statistics.deadLettered == 1)
        await subscription.cancel()
    }

    @Test("a decode error is dead-lettered at once with reason decode, without retries")
    func permanentFailure() async throws {
        let manager = try await connectedManager()
        let calls = Recorder<Int>()
        let subscription = try await manager.subscribe("in", options: SubscribeOptions(group: "g", retry: .fixed(attempts: 5, delay: .milliseconds(5)))) { message in
            calls.append(1)
            _ = try message.decode(Int.self)
        }
        try await manager.publish("in", Message(string: "not json"))
        let dead = DeadLetterHandler(manager, options: DeadLetterOptions(queue: "g.dlq"))
        #expect(try await eventually { try await dead.getStats().byReason["decode"] == 1 })
        #expect(calls.count == 1)
        await subscription.cancel()
    }

    @Test("a handler that outlives handlerTimeout is dead-lettered with reason timeout")
    func handlerTimeout() async throws {
        let manager = try await connectedManager()
        let subscription = try await manager.subscribe("slow", options: SubscribeOptions(group: "g", handlerTimeout: .milliseconds(50))) { _ in
            try await Task.sleep(for: .seconds(30))
        }
        try await manager.publish("slow", Message())
        let dead = DeadLetterHandler(manager, options: DeadLetterOptions(queue: "g.dlq"))
        #expect(try await eventually { try await dead.getStats().byReason["timeout"] == 1 })
        await subscription.cancel()
    }

    @Test("concurrency runs handlers in parallel")
    func concurrency() async throws {
        let manager = try await connectedManager()
        let active = Recorder<Int>()
        let gate = Recorder<Int>()
        let subscription = try await manager.subscribe("p", options: SubscribeOptions(group: "g", concurrency: 4)) { _ in
            active.append(1)
            while active.count < 4 && gate.count == 0 { try await Task.sleep(for: .milliseconds(1)) }
            gate.append(1)
        }
        for _ in 0..<4 { try await manager.publish("p", Message()) }
        #expect(await eventually { subscription.statistics.processed == 4 })
        #expect(active.count == 4)
        await subscription.cancel()
    }

    @Test("on/off register and unregister event handlers; events() streams them")
    func events() async throws {
        let broker = InMemoryBroker()
        let manager = MessageManager(broker: broker)
        let seen = Recorder<String>()
        let listener = manager.on(.connected) { seen.append($0.kind.name) }
        let all = manager.on { seen.append("any:\($0.kind.name)") }
        try await Task.sleep(for: .milliseconds(20))
        try await manager.connect()
        #expect(await eventually { seen.values.contains("connected") && seen.values.contains("any:connected") })
        manager.off(listener)
        manager.off(all)
        let stream = manager.events()
        try await manager.disconnect()
        var iterator = stream.makeAsyncIterator()
        #expect(await iterator.next()?.kind == .disconnected)
        try await manager.connect()
        #expect(await eventually { seen.values.filter { $0 == "connected" }.count == 1 }, "an unregistered handler still fired")
    }

    @Test("a dead-lettered message emits a dead-lettered event")
    func deadLetterEvent() async throws {
        let manager = try await connectedManager()
        let events = manager.events()
        try await manager.enqueue("q", Message())
        let delivery = try #require(try await manager.broker.get(queue: "q"))
        try await delivery.reject(reason: "rejected", error: nil)
        for await event in events where event.kind == .deadLettered {
            #expect(event.detail.contains("rejected"))
            break
        }
    }
}
