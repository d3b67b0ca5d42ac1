import Foundation
import Jadugar
import JadugarRabbitMQ
import Synchronization
import Testing

/// RabbitMQ-specific behaviour against the real broker: confirms, returns, dead-lettering with
/// `x-death`, quorum queues, delayed retries, error codes, channel errors, recovery.
@Suite("RabbitMQ broker", .timeLimit(.minutes(3)))
struct RabbitMQBrokerTests {
    // MARK: Publisher confirms

    @Test("a nack fails the publish: max-length 1 with overflow reject-publish refuses the second message")
    func confirmNack() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("full")
        try await broker.assertQueue(queue, options: RabbitMQQueueOptions(durable: false, autoDelete: false, maxLength: 1, overflow: .rejectPublish))
        try await broker.send(Message(string: "first"), toQueue: queue)
        let error = await #expect(throws: MessagingError.self) {
            try await broker.send(Message(string: "second"), toQueue: queue)
        }
        #expect(error?.code == .queueFull)
        #expect(error?.brokerCode == "NACK")
        #expect(error?.isRetriable == true)
        // The broker-neutral options mean the same: reject-publish is QueueOptions' default overflow.
        let neutral = RabbitMQTestEnvironment.uniqueName("neutral-full")
        try await broker.createQueue(neutral, options: QueueOptions(durable: false, maxLength: 1))
        try await broker.send(Message(string: "first"), toQueue: neutral)
        await #expect(throws: MessagingError.self) { try await broker.send(Message(string: "second"), toQueue: neutral) }
        #expect(try await broker.queueInfo(queue).ready == 1)
        // The channel survives a nack: the next publish elsewhere is confirmed.
        let other = RabbitMQTestEnvironment.uniqueName("other")
        try await broker.createQueue(other, options: QueueOptions(durable: false))
        try await broker.send(Message(string: "fine"), toQueue: other)
        _ = try await broker.deleteQueue(queue, ifUnused: false, ifEmpty: false)
        try await broker.deleteQueue(neutral)
        try await broker.deleteQueue(other)
    }

    @Test("an unroutable mandatory publish fails with NO_ROUTE; routable ones in flight with it succeed")
    func unroutableMandatory() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let routed = RabbitMQTestEnvironment.uniqueName("routed")
        try await broker.createQueue(routed, options: QueueOptions(durable: false))
        try await broker.bind(queue: routed, exchange: broker.defaultExchange, routingKey: "\(routed).yes")
        let error = await #expect(throws: MessagingError.self) {
            try await broker.publish(Message(topic: "\(routed).nowhere", string: "lost"), options: PublishOptions(mandatory: true))
        }
        #expect(error?.code == .unroutable)
        #expect(error?.brokerCode == "NO_ROUTE")
        // Without mandatory the broker drops it silently and confirms.
        try await broker.publish(Message(topic: "\(routed).nowhere", string: "dropped"), options: .default)

        // Many at once, interleaved: only the unroutable ones fail.
        let outcomes = try await withThrowingTaskGroup(of: (Bool, Bool).self) { group in
            for index in 0..<40 {
                group.addTask {
                    let routable = index % 2 == 0
                    let topic = routable ? "\(routed).yes" : "\(routed).no.\(index)"
                    do {
                        try await broker.publish(Message(topic: topic, string: "m\(index)"), options: PublishOptions(mandatory: true))
                        return (routable, true)
                    } catch let error as MessagingError where error.code == .unroutable {
                        return (routable, false)
                    }
                }
            }
            var outcomes: [(Bool, Bool)] = []
            for try await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        #expect(outcomes.count == 40)
        #expect(outcomes.allSatisfy { $0.0 == $0.1 }, "routable publishes must succeed and unroutable ones fail: \(outcomes)")
        #expect(try await broker.queueInfo(routed).ready == 20)
        try await broker.deleteQueue(routed)
    }

    // MARK: Dead letters

    @Test("a reject without requeue dead-letters through RabbitMQ; x-death becomes the Jadugar headers")
    func xDeathAfterReject() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("origin")
        let dlq = "\(queue).dlq"
        try await broker.createQueue(dlq, options: QueueOptions(durable: false))
        try await broker.createQueue(queue, options: QueueOptions(durable: false, deadLetter: .queue(dlq)))
        try await broker.bind(queue: queue, exchange: broker.defaultExchange, routingKey: "\(queue).created")
        var message = Message(topic: "\(queue).created", string: "bad")
        message.metadata.headers["tenant"] = "acme"
        try await broker.publish(message, options: .default)

        let stream = try await broker.consume(queue: queue, options: ConsumeOptions(prefetch: 1))
        let delivery = try #require(try await next(stream))
        // nack without requeue: reason `rejected` and no error, which is RabbitMQ's own dead-lettering.
        try await delivery.nack(requeue: false)
        await stream.close()

        let dead = try #require(try await getEventually(broker, dlq))
        let headers = dead.message.metadata.headers
        #expect(dead.message.id == message.id)
        #expect(dead.message.payload == message.payload)
        #expect(headers[JadugarHeader.deadLetterReason] == "rejected")
        #expect(headers[JadugarHeader.originalQueue] == queue)
        #expect(headers[JadugarHeader.originalTopic] == "\(queue).created")
        #expect(headers[JadugarHeader.originalExchange] == broker.defaultExchange)
        #expect(headers[JadugarHeader.attempts] == "1")
        #expect(headers[JadugarHeader.deadLetteredAt] != nil)
        #expect(headers[JadugarHeader.lastError] == nil)
        #expect(headers["x-death"] == nil, "x-death is mapped, not repeated as a header")
        #expect(headers["x-first-death-reason"] == "rejected", "RabbitMQ's own string headers stay")
        #expect(headers["tenant"] == "acme")
        try await dead.ack()
        try await broker.deleteQueue(queue)
        try await broker.deleteQueue(dlq)
    }

    @Test("a reject with a reason and an error publishes the dead letter with the Jadugar headers")
    func customDeadLetter() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("custom")
        let dlq = "\(queue).dlq"
        try await broker.createQueue(dlq, options: QueueOptions(durable: false))
        try await broker.createQueue(queue, options: QueueOptions(durable: false, deadLetter: .queue(dlq)))
        try await broker.send(Message(topic: "orders.created", string: "x"), toQueue: queue)
        let delivery = try #require(try await getEventually(broker, queue))
        try await delivery.reject(reason: "timeout", error: "handler took 30 s ✗")
        let dead = try #require(try await getEventually(broker, dlq))
        let headers = dead.message.metadata.headers
        #expect(headers[JadugarHeader.deadLetterReason] == "timeout")
        #expect(headers[JadugarHeader.lastError] == "handler took 30 s ✗")
        #expect(headers[JadugarHeader.originalTopic] == "orders.created")
        #expect(headers[JadugarHeader.originalQueue] == queue)
        #expect(headers[JadugarHeader.attempts] == "1")
        try await dead.ack()
        #expect(try await broker.queueInfo(queue).ready == 0, "the original was acknowledged")
        try await broker.deleteQueue(queue)
        try await broker.deleteQueue(dlq)
    }

    @Test("drop-head overflow dead-letters the oldest message with reason maxlen")
    func maxLengthDeadLetter() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("bounded")
        let dlq = "\(queue).dlq"
        try await broker.createQueue(dlq, options: QueueOptions(durable: false))
        try await broker.createQueue(queue, options: QueueOptions(durable: false, maxLength: 1, overflow: .dropHead, deadLetter: .queue(dlq)))
        let first = Message(string: "first")
        try await broker.send(first, toQueue: queue)
        try await broker.send(Message(string: "second"), toQueue: queue)
        let dead = try #require(try await getEventually(broker, dlq))
        #expect(dead.message.id == first.id)
        #expect(dead.message.metadata.headers[JadugarHeader.deadLetterReason] == "maxlen")
        #expect(dead.message.metadata.headers[JadugarHeader.attempts] == "0")
        try await dead.ack()
        try await broker.deleteQueue(queue)
        try await broker.deleteQueue(dlq)
    }

    // MARK: Quorum queues

    @Test("a quorum queue counts deliveries with x-delivery-count")
    func quorumQueue() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("quorum")
        let state = try await broker.assertQueue(queue, options: RabbitMQQueueOptions(type: .quorum))
        #expect(state.name == queue)
        // Declaring it again as classic is a different queue: PRECONDITION_FAILED.
        let conflict = await #expect(throws: MessagingError.self) {
            try await broker.assertQueue(queue, options: RabbitMQQueueOptions(type: .classic))
        }
        #expect(conflict?.code == .alreadyExists)
        #expect(conflict?.brokerCode == "PRECONDITION_FAILED")

        let message = Message(string: "counted")
        try await broker.send(message, toQueue: queue)
        let stream = try await broker.consume(queue: queue, options: ConsumeOptions(prefetch: 1))
        var counts: [Int] = []
        for _ in 0..<3 {
            let delivery = try #require(try await next(stream))
            #expect(delivery.message.id == message.id)
            counts.append(delivery.deliveryCount)
            if counts.count < 3 { try await delivery.nack(requeue: true) } else { try await delivery.ack() }
        }
        #expect(counts == [1, 2, 3])
        await stream.close()
        try await broker.deleteQueue(queue)
    }

    @Test("quorum queues refuse settings they cannot have")
    func quorumValidation() async throws {
        let broker = try RabbitMQTestEnvironment.broker()
        await #expect(throws: MessagingError.self) {
            try await broker.assertQueue("q", options: RabbitMQQueueOptions(type: .quorum, exclusive: true))
        }
    }

    // MARK: Delayed retries

    @Test("a nack with a delay comes back after the delay through a TTL queue, counted and on its topic")
    func delayedRetry() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("retry")
        try await broker.createQueue(queue, options: QueueOptions(durable: false))
        try await broker.bind(queue: queue, exchange: broker.defaultExchange, routingKey: "\(queue).event")
        try await broker.publish(Message(topic: "\(queue).event", string: "again"), options: .default)
        let stream = try await broker.consume(queue: queue, options: ConsumeOptions(prefetch: 4))
        let first = try #require(try await next(stream))
        let delay = Duration.milliseconds(1500)
        let start = ContinuousClock.now
        try await first.nack(requeue: true, delay: delay)
        // The nack returns once the broker has confirmed the copy in the delay queue, which holds
        // it for the whole delay from then on: a count the broker answers before `start + delay`
        // must find it there. On a machine too slow to ask in time there is nothing to compare.
        let info = try await broker.queueInfo(queue)
        if ContinuousClock.now - start < delay {
            #expect(info.delayed == 1, "the message waits in the delay queue: \(info)")
            #expect(info.ready == 0, "and not back in the queue yet: \(info)")
        }
        let second = try #require(try await next(stream, within: .seconds(30)))
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= delay - .milliseconds(20), "came back after \(elapsed)")
        #expect(second.message.id == first.message.id)
        #expect(second.deliveryCount == 2)
        #expect(second.message.topic == "\(queue).event")
        #expect(second.message.metadata.headers[JadugarHeader.deadLetterReason] == nil, "a retry is not a dead letter")
        #expect(second.message.metadata.headers.keys.allSatisfy { !$0.hasPrefix("x-jadugar-retry") && $0 != "x-jadugar-deliveries" })
        try await second.ack()
        await stream.close()
        try await broker.deleteQueue(queue)
    }

    // MARK: Errors and channels

    @Test("the broker's reply codes reach the caller, and a channel error does not break the client")
    func errorCodes() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("codes")
        try await broker.createQueue(queue, options: QueueOptions(durable: false, maxPriority: 5))
        let inequivalent = await #expect(throws: MessagingError.self) {
            try await broker.createQueue(queue, options: QueueOptions(durable: false, maxPriority: 9))
        }
        #expect(inequivalent?.code == .alreadyExists)
        #expect(inequivalent?.brokerCode == "PRECONDITION_FAILED")
        #expect(inequivalent?.brokerReason?.contains("x-max-priority") == true)

        let missing = await #expect(throws: MessagingError.self) {
            _ = try await broker.consume(queue: RabbitMQTestEnvironment.uniqueName("missing"), options: ConsumeOptions())
        }
        #expect(missing?.code == .notFound)
        #expect(missing?.brokerCode == "NOT_FOUND")

        let refused = await #expect(throws: MessagingError.self) {
            try await broker.bind(queue: queue, exchange: "", routingKey: "x")
        }
        #expect(refused?.code == .accessDenied)
        #expect(refused?.brokerCode == "ACCESS_REFUSED")

        let noExchange = await #expect(throws: MessagingError.self) {
            try await broker.publish(Message(topic: "a.b", string: "x"), options: PublishOptions(exchange: RabbitMQTestEnvironment.uniqueName("no-exchange")))
        }
        #expect(noExchange?.code == .notFound)
        #expect(noExchange?.brokerCode == "NOT_FOUND")

        await #expect(throws: MessagingError.self) { try await broker.deleteQueue(RabbitMQTestEnvironment.uniqueName("never")) }
        // After all that the client still works.
        try await broker.send(Message(string: "still fine"), toQueue: queue)
        #expect(try await broker.queueInfo(queue).ready == 1)
        #expect(broker.isConnected)
        try await broker.deleteQueue(queue)
    }

    @Test("a channel error closes that channel only; a new channel works")
    func channelErrorClosesChannel() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("chan")
        let channel = try await broker.createChannel()
        try await channel.assertQueue(queue, options: RabbitMQQueueOptions(durable: false, maxLength: 10))
        #expect(channel.isOpen)
        let error = await #expect(throws: MessagingError.self) {
            try await channel.assertQueue(queue, options: RabbitMQQueueOptions(durable: false, maxLength: 20))
        }
        #expect(error?.brokerCode == "PRECONDITION_FAILED")
        #expect(!channel.isOpen)
        #expect(channel.closeReason?.brokerCode == "PRECONDITION_FAILED")
        let closed = await #expect(throws: MessagingError.self) { _ = try await channel.purgeQueue(queue) }
        #expect(closed?.code == .closed)
        let fresh = try await broker.createChannel()
        #expect(fresh.number != channel.number)
        #expect(try await fresh.purgeQueue(queue) == 0)
        #expect(try await fresh.deleteQueue(queue) == 0)
        await broker.closeChannel(fresh)
        #expect(!fresh.isOpen)
    }

    @Test("a headers exchange routes by key=value bindings")
    func headersExchange() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let exchange = RabbitMQTestEnvironment.uniqueName("by-region")
        let queue = RabbitMQTestEnvironment.uniqueName("eu-gold")
        try await broker.createExchange(exchange, options: ExchangeOptions(type: .headers, durable: false, autoDelete: false))
        try await broker.createQueue(queue, options: QueueOptions(durable: false))
        try await broker.bind(queue: queue, exchange: exchange, routingKey: "region=eu,tier=gold")
        var match = Message(topic: "any", string: "yes")
        match.metadata.headers = ["region": "eu", "tier": "gold"]
        var miss = Message(topic: "any", string: "no")
        miss.metadata.headers = ["region": "eu", "tier": "silver"]
        try await broker.publish(miss, options: PublishOptions(exchange: exchange))
        try await broker.publish(match, options: PublishOptions(exchange: exchange))
        let got = try #require(try await getEventually(broker, queue))
        #expect(got.message.id == match.id)
        try await got.ack()
        #expect(try await broker.get(queue: queue) == nil)
        try await broker.deleteQueue(queue)
        try await broker.deleteExchange(exchange)
        let gone = await #expect(throws: MessagingError.self) { try await broker.deleteExchange(exchange) }
        #expect(gone?.code == .notFound)
    }

    // MARK: Connection

    @Test("recovery after the broker closes the connections: topology and consumers come back, no confirmed message is lost")
    func recoveryAfterForcedClose() async throws {
        let name = RabbitMQTestEnvironment.uniqueName("recover")
        let broker = try await RabbitMQTestEnvironment.connectedBroker(name: name)
        defer { Task { try? await broker.disconnect() } }
        let events = EventLog(broker.events())
        let topic = "\(name).orders"
        let group = "\(name).g"
        let stream = try await broker.subscribe(topic, options: SubscribeOptions(group: group, prefetch: 32))
        let received = Mutex<Set<String>>([])
        let consumer = Task {
            while true {
                do {
                    guard let delivery = try await stream.next() else { return }
                    _ = received.withLock { $0.insert(delivery.message.id) }
                    try? await delivery.ack()
                } catch is CancellationError {
                    return
                } catch {
                    // A fetch during the reconnect; the stream carries on.
                }
            }
        }
        let confirmed = Mutex<Set<String>>([])
        let closeDone = Mutex(false)
        // Publishes until 100 messages after the close returned, whatever rabbitmqctl takes, so that
        // publishes are in flight across the close; paced after the first 100 to keep the count
        // modest. Returns how many it published.
        let publisher = Task { () -> Int in
            var index = 0
            var afterClose = 0
            while afterClose < 100 {
                if closeDone.withLock({ $0 }) { afterClose += 1 }
                let message = Message(topic: topic, string: "m\(index)")
                index += 1
                for _ in 0..<400 {
                    do {
                        try await broker.publish(message, options: .default)
                        _ = confirmed.withLock { $0.insert(message.id) }
                        break
                    } catch let error as MessagingError where error.isRetriable {
                        try await Task.sleep(for: .milliseconds(10))
                    }
                }
                if index > 100 { try await Task.sleep(for: .milliseconds(5)) }
            }
            return index
        }
        defer { closeDone.withLock { $0 = true } }
        #expect(try await eventually { confirmed.withLock { $0.count } >= 100 })
        let closed = try await RabbitMQTestEnvironment.closeConnections(named: name)
        closeDone.withLock { $0 = true }
        #expect(closed == 2, "the control and the publisher connection")
        let total = try await publisher.value
        let expected = confirmed.withLock { $0 }
        #expect(expected.count == total, "every publish was eventually confirmed")
        let complete = try await eventually(within: .seconds(30)) { received.withLock { $0.isSuperset(of: expected) } }
        #expect(complete, "\(expected.subtracting(received.withLock { $0 }).count) confirmed messages never arrived")
        #expect(events.contains(.disconnected))
        #expect(events.contains(.reconnecting))
        #expect(try await eventually { events.connectedCount >= 2 }, "connected again (control and publisher)")
        #expect(broker.isConnected)
        // The binding was recovered: a fresh publish still reaches the group's queue.
        try await broker.publish(Message(topic: topic, string: "after"), options: .default)
        consumer.cancel()
        await stream.close()
        try await broker.deleteQueue(group)
        try await broker.deleteQueue("\(group).dlq")
    }

    @Test("recovery re-declares an auto-delete exchange, an exclusive queue, its binding and its consumer")
    func recoveryRedeclaresTopology() async throws {
        let name = RabbitMQTestEnvironment.uniqueName("redeclare")
        let broker = try await RabbitMQTestEnvironment.connectedBroker(name: name)
        defer { Task { try? await broker.disconnect() } }
        // Both vanish with the connection: the exclusive queue with its owner, the auto-delete
        // exchange with its last binding. Only recovery can bring them back.
        let exchange = "\(name).x"
        let queue = "\(name).q"
        try await broker.createExchange(exchange, options: ExchangeOptions(type: .direct, durable: false, autoDelete: true))
        try await broker.createQueue(queue, options: QueueOptions(durable: false, exclusive: true))
        try await broker.bind(queue: queue, exchange: exchange, routingKey: "key")
        let stream = try await broker.consume(queue: queue, options: ConsumeOptions(prefetch: 8))
        try await broker.publish(Message(topic: "key", string: "before"), options: PublishOptions(exchange: exchange))
        let before = try #require(try await next(stream))
        try await before.ack()

        #expect(try await RabbitMQTestEnvironment.closeConnections(named: name) == 2)
        #expect(try await eventually { broker.isConnected })
        var after: Delivery?
        for _ in 0..<100 where after == nil {
            do {
                try await broker.publish(Message(topic: "key", string: "after"), options: PublishOptions(exchange: exchange, mandatory: true))
                after = try await next(stream, within: .seconds(5))
            } catch let error as MessagingError where error.isRetriable || error.code == .unroutable || error.code == .notFound {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let delivery = try #require(after, "the message published after the reconnect reached the recovered consumer")
        #expect(delivery.message.payloadString == "after")
        try await delivery.ack()
        #expect(try await broker.queueInfo(queue).consumers == 1)
        await stream.close()
        try await broker.deleteQueue(queue)
    }

    @Test("deleting the queue under a consumer ends its stream (consumer cancel notification)")
    func cancelNotification() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let other = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await other.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("doomed")
        try await broker.createQueue(queue, options: QueueOptions(durable: false))
        let stream = try await broker.consume(queue: queue, options: ConsumeOptions())
        let events = EventLog(broker.events())
        try await other.deleteQueue(queue)
        let ended = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await stream.next() == nil }
            group.addTask {
                try await Task.sleep(for: .seconds(10))
                return false
            }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
        #expect(ended, "the stream ended when the broker cancelled the consumer")
        #expect(try await eventually { events.contains(.error) })
        #expect(broker.isConnected)
    }

    @Test("with a 3 s heartbeat an idle client stays connected")
    func heartbeats() async throws {
        var configuration = try RabbitMQTestEnvironment.configuration()
        // Short enough that the idle time below spans several intervals; not 1 s, where a broker
        // stalled for 2 s by a loaded machine makes rabbitmq-c give the connection up.
        configuration.heartbeat = .seconds(3)
        let broker = RabbitMQBroker(configuration: configuration)
        try await broker.connect()
        defer { Task { try? await broker.disconnect() } }
        let events = EventLog(broker.events())
        // Idle for more than three heartbeat intervals: the broker closes a connection that sends
        // nothing for two or three of them, and rabbitmq-c one that receives nothing for two.
        try await Task.sleep(for: .seconds(10))
        #expect(!events.contains(.disconnected))
        #expect(broker.isConnected)
        #expect(await broker.healthCheck().isHealthy)
        let queue = RabbitMQTestEnvironment.uniqueName("heartbeat")
        try await broker.createQueue(queue, options: QueueOptions(durable: false))
        try await broker.send(Message(string: "alive"), toQueue: queue)
        #expect(!events.contains(.disconnected), "the publisher connection kept its heartbeats too")
        try await broker.deleteQueue(queue)
    }

    @Test("an exclusive reply queue works for request/reply, and again after a reconnect")
    func requestReplyAcrossReconnect() async throws {
        let name = RabbitMQTestEnvironment.uniqueName("rpc")
        let broker = try await RabbitMQTestEnvironment.connectedBroker(name: name)
        defer { Task { try? await broker.disconnect() } }
        let manager = MessageManager(broker: broker)
        let rpc = RequestReply(manager, timeout: .seconds(10))
        let topic = "\(name).echo"
        let server = try await rpc.reply(topic) { request in Message(payload: request.payload.reversed()) }
        #expect(try await rpc.request(topic, Message(string: "abc")).payloadString == "cba")
        try await RabbitMQTestEnvironment.closeConnections(named: name)
        #expect(try await eventually { broker.isConnected })
        var answered = false
        for _ in 0..<50 where !answered {
            if let reply = try? await rpc.request(topic, Message(string: "xyz"), options: RequestOptions(timeout: .seconds(2))) {
                answered = reply.payloadString == "zyx"
            }
        }
        #expect(answered, "request/reply works after the reconnect (exclusive reply queue re-declared)")
        await server.cancel()
        await rpc.close()
        try? await broker.deleteQueue("rpc.\(topic)")
        try? await broker.deleteQueue("rpc.\(topic).dlq")
    }

    @Test("health check reports the server version and latency; a disconnected client is unhealthy")
    func healthCheck() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        let health = await broker.healthCheck()
        #expect(health.isHealthy)
        #expect(health.version?.hasPrefix("RabbitMQ 3.") == true, "version \(health.version ?? "nil")")
        #expect((health.latency ?? .zero) > .zero)
        #expect(broker.serverVersion == health.version)
        try await broker.disconnect()
        let after = await broker.healthCheck()
        #expect(!after.isHealthy)
        #expect(!broker.isConnected)
        await #expect(throws: MessagingError.self) { try await broker.publish(Message(topic: "a", string: "x"), options: .default) }
    }

    @Test("wrong credentials fail with authenticationFailed, and no error shows the password")
    func authenticationFailure() async throws {
        var configuration = try RabbitMQTestEnvironment.configuration()
        configuration.password = "not-the-Passw0rd"
        let broker = RabbitMQBroker(configuration: configuration)
        let error = await #expect(throws: MessagingError.self) { try await broker.connect() }
        #expect(error?.code == .authenticationFailed)
        #expect(error?.brokerCode == "ACCESS_REFUSED")
        #expect(!"\(String(describing: error))".contains("not-the-Passw0rd"))
        #expect(!configuration.description.contains("not-the-Passw0rd"))
        #expect(!broker.isConnected)
    }

    @Test("an unreachable endpoint fails with a retriable connectionFailed")
    func connectionRefused() async throws {
        var configuration = try RabbitMQTestEnvironment.configuration()
        configuration.endpoints = [RabbitMQConfiguration.Endpoint(host: "127.0.0.1", port: 1)]
        let error = await #expect(throws: MessagingError.self) { try await RabbitMQBroker(configuration: configuration).connect() }
        #expect(error?.code == .connectionFailed)
        #expect(error?.isRetriable == true)
    }

    // MARK: AMQP surface

    @Test("a handler consumer acknowledges what it handles and dead-letters what throws")
    func handlerConsumer() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("handled")
        try await broker.assertQueue("\(queue).dlq", options: RabbitMQQueueOptions(durable: false))
        try await broker.assertQueue(queue, options: RabbitMQQueueOptions(durable: false, deadLetterExchange: "", deadLetterRoutingKey: "\(queue).dlq"))
        for index in 0..<10 {
            try await broker.publish(exchange: "", routingKey: queue, message: Message(string: "\(index)"))
        }
        try broker.publishWithoutConfirm(exchange: "", routingKey: queue, message: Message(string: "bad"))
        let consumer = try await broker.consume(queue: queue, options: ConsumeOptions(prefetch: 4), concurrency: 2) { message in
            if message.payloadString == "bad" { throw MessagingError(.decodeFailed, "not a number") }
        }
        #expect(try await eventually { consumer.processed == 10 && consumer.failed == 1 })
        await consumer.cancel()
        let dead = try #require(try await getEventually(broker, "\(queue).dlq"))
        #expect(dead.message.payloadString == "bad")
        #expect(dead.message.metadata.headers[JadugarHeader.lastError]?.contains("not a number") == true)
        try await dead.ack()
        #expect(try await broker.queueInfo(queue).ready == 0)
        _ = try await broker.deleteQueue(queue, ifUnused: false, ifEmpty: true)
        try await broker.deleteQueue("\(queue).dlq")
    }

    @Test("settling twice is refused without closing the channel")
    func doubleSettle() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("twice")
        try await broker.createQueue(queue, options: QueueOptions(durable: false))
        try await broker.send(Message(string: "a"), toQueue: queue)
        try await broker.send(Message(string: "b"), toQueue: queue)
        let stream = try await broker.consume(queue: queue, options: ConsumeOptions(prefetch: 1))
        let first = try #require(try await next(stream))
        try await first.ack()
        let error = await #expect(throws: MessagingError.self) { try await first.ack() }
        #expect(error?.brokerCode == "PRECONDITION_FAILED")
        let second = try #require(try await next(stream), "the consumer's channel is still open")
        try await second.ack()
        await stream.close()
        try await broker.deleteQueue(queue)
    }

    @Test("closing a consumer hands its unacknowledged and prefetched messages back")
    func closeRequeues() async throws {
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("handback")
        try await broker.createQueue(queue, options: QueueOptions(durable: false))
        for index in 0..<5 { try await broker.send(Message(string: "\(index)"), toQueue: queue) }
        let stream = try await broker.consume(queue: queue, options: ConsumeOptions(prefetch: 5))
        let held = try #require(try await next(stream))
        #expect(try await eventually { try await broker.queueInfo(queue).unacknowledged == 5 })
        await stream.close()
        await #expect(throws: MessagingError.self) { try await held.ack() }
        #expect(try await eventually { try await broker.queueInfo(queue).ready == 5 })
        let again = try await broker.consume(queue: queue, options: ConsumeOptions(prefetch: 5))
        let redelivered = try #require(try await next(again))
        #expect(redelivered.redelivered && redelivered.deliveryCount == 2)
        await again.close()
        try await broker.deleteQueue(queue)
    }
}

/// Fetches a message, polling until one arrives (dead-lettering is asynchronous).
func getEventually(_ broker: RabbitMQBroker, _ queue: String, within limit: Duration = .seconds(10)) async throws -> Delivery? {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if let delivery = try await broker.get(queue: queue) { return delivery }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await broker.get(queue: queue)
}

/// Records a broker's events in the background.
final class EventLog: Sendable {
    private let task: Task<Void, Never>

    init(_ stream: AsyncStream<BrokerEvent>) {
        let kinds = Kinds()
        task = Task { for await event in stream { kinds.value.withLock { $0.append(event.kind) } } }
        self.box = kinds
    }

    private final class Kinds: Sendable { let value = Mutex<[BrokerEvent.Kind]>([]) }
    private let box: Kinds

    func contains(_ kind: BrokerEvent.Kind) -> Bool { box.value.withLock { $0.contains(kind) } }
    var connectedCount: Int { box.value.withLock { $0.filter { $0 == .connected }.count } }

    deinit { task.cancel() }
}
