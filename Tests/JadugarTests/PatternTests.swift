import Jadugar
import Testing

@Suite("PubSub, RequestReply and WorkQueue", .timeLimit(.minutes(1)))
struct PatternTests {
    @Test("PubSub: publish, subscribe, create/delete/list topics")
    func pubsub() async throws {
        let pubsub = PubSub(try await connectedManager())
        try await pubsub.createTopic("user.created")
        try await pubsub.createTopic("user.deleted")
        let seen = Recorder<String>()
        let subscription = try await pubsub.subscribe("user.*") { seen.append($0.payloadString ?? "") }
        try await pubsub.publish("user.created", json: ["id": 1])
        try await pubsub.publish("user.deleted", payload: Array("raw".utf8))
        #expect(await eventually { seen.count == 2 })
        #expect(seen.values == [#"{"id":1}"#, "raw"])
        let topics = try await pubsub.listTopics()
        #expect(topics.contains("user.created") && topics.contains("user.deleted") && topics.contains("user.*"))
        try await pubsub.deleteTopic("user.deleted")
        #expect(try await !pubsub.listTopics().contains("user.deleted"))
        await expectError(.notFound) { try await pubsub.deleteTopic("never.made") }
        await expectError(.invalidTopic) { try await pubsub.createTopic("bad.*") }
        await subscription.cancel()
    }

    @Test("RequestReply: request, reply, setTimeout, setRetry")
    func requestReply() async throws {
        let manager = try await connectedManager()
        let rpc = RequestReply(manager)
        let server = try await rpc.reply("math.add") { request in
            try Message(json: try request.decode([Int].self).reduce(0, +))
        }
        #expect(try await rpc.request("math.add", json: [1, 2], as: Int.self) == 3)
        #expect(throws: MessagingError.self) { try rpc.setTimeout(.zero) }
        try rpc.setTimeout(.milliseconds(100))
        await expectError(.timeout) { try await rpc.request("nobody.home", Message()) }

        // With a retry policy a request that timed out is sent again; a server that only answers the second attempt still answers.
        let attempts = Recorder<Int>()
        let flaky = try await rpc.reply("flaky") { request in
            attempts.append(1)
            if attempts.count == 1 { try await Task.sleep(for: .seconds(1)) }
            return Message(string: "ok")
        }
        try rpc.setRetry(.fixed(attempts: 3, delay: .milliseconds(10)))
        #expect(try await rpc.request("flaky", Message()).payloadString == "ok")
        #expect(attempts.count >= 2)
        #expect(throws: MessagingError.self) { try rpc.setRetry(RetryPolicy(attempts: 0, delay: .zero)) }
        await server.cancel()
        await flaky.cancel()
        await rpc.close()
    }

    @Test("RequestReply: a request without a reply address is dead-lettered by the server, not answered")
    func missingReplyTo() async throws {
        let manager = try await connectedManager()
        let rpc = RequestReply(manager)
        let server = try await rpc.reply("svc") { _ in Message(string: "x") }
        try await manager.publish("svc", Message(string: "no reply-to"))
        let dead = DeadLetterHandler(manager, options: DeadLetterOptions(queue: "rpc.svc.dlq"))
        #expect(try await eventually { try await dead.getStats().count == 1 })
        await server.cancel()
    }

    @Test("WorkQueue: enqueue, process, pause, resume, clear, status, metrics")
    func workQueue() async throws {
        let manager = try await connectedManager()
        let queue = WorkQueue(manager, name: "emails", queueOptions: QueueOptions(maxPriority: 9))
        for i in 0..<5 { try await queue.enqueue(json: ["n": i]) }
        try await queue.enqueue(Message(string: "urgent"), options: EnqueueOptions(priority: 9))
        var status = try await queue.getStatus()
        #expect(status.pending == 6 && status.inFlight == 0 && !status.isPaused)
        let done = Recorder<String>()
        try await queue.process(options: ProcessOptions(concurrency: 1)) { done.append($0.payloadString ?? "") }
        #expect(await eventually { done.count == 6 })
        #expect(done.values.first == "urgent", "priority 9 goes first")
        await expectError(.alreadyExists) { try await queue.process { _ in } }
        await queue.pause()
        for i in 0..<3 { try await queue.enqueue(json: ["late": i]) }
        try await Task.sleep(for: .milliseconds(100))
        status = try await queue.getStatus()
        #expect(status.isPaused)
        #expect(done.count + status.pending + status.inFlight == 9)
        #expect(try await queue.clear() == status.pending)
        await queue.resume()
        let metrics = queue.getMetrics()
        #expect(metrics.enqueued == 9 && metrics.processed >= 6 && metrics.failed == 0)
        #expect(metrics.throughput > 0)
        await queue.cancel()
    }

    @Test("WorkQueue: a failing task is retried then dead-lettered, and metrics count it")
    func workQueueFailures() async throws {
        let manager = try await connectedManager()
        let queue = WorkQueue(manager, name: "fragile")
        try await queue.enqueue(Message(string: "boom"))
        try await queue.process(options: ProcessOptions(retry: .fixed(attempts: 2, delay: .milliseconds(5)))) { _ in
            throw MessagingError(.brokerError, "boom")
        }
        #expect(await eventually { queue.getMetrics().deadLettered == 1 })
        let metrics = queue.getMetrics()
        #expect(metrics.failed == 2 && metrics.retried == 1)
        await queue.cancel()
    }
}
