import Foundation
import Jadugar
import JadugarKafka
import Testing

/// Kafka-specific behaviour against the test broker: group rebalances, commit-after-success,
/// per-key order, headers and partitions, topic administration, flow control, queue operations.
@Suite("Kafka broker", .timeLimit(.minutes(10)))
struct KafkaBrokerTests {
    /// Message `index` of a test, with its index in a header and the payload `m<index>`.
    static func message(_ index: Int, topic: String, key: String? = nil) -> Message {
        var message = Message(topic: topic, string: "m\(index)")
        message.metadata.headers["x-seq"] = String(index)
        if let key { message.metadata.headers["x-key"] = key }
        return message
    }

    static func index(_ message: Message) -> Int { Int(message.metadata.headers["x-seq"] ?? "") ?? -1 }

    @Test("a rebalance between two consumers on four partitions loses nothing (duplicates counted)")
    func rebalance() async throws {
        let url = try KafkaTestEnvironment.requireURL()
        try await BrokerTestGate.shared.run {
            let first = try await KafkaTestEnvironment.connectedBroker(url)
            let second = try await KafkaTestEnvironment.connectedBroker(url)
            let topic = uniqueName("rebalance")
            let group = uniqueName("g")
            try await first.createTopic(topic, partitions: 4)
            let seen = Box<[String: Int]>([:])
            let byConsumer = Box<[String: Set<Int>]>([:])
            func consume(_ stream: DeliveryStream, as name: String) -> Task<Void, any Error> {
                Task {
                    while let delivery = try await stream.next() {
                        let index = Self.index(delivery.message)
                        seen.withLock { $0[delivery.message.id, default: 0] += 1 }
                        byConsumer.withLock { _ = $0[name, default: []].insert(index) }
                        try await delivery.ack()
                    }
                }
            }
            let n = 400
            let streamA = try await first.subscribe(topic, options: SubscribeOptions(group: group, prefetch: 32))
            let consumerA = consume(streamA, as: "a")
            for index in 0..<(n / 2) {
                try await first.publish(Self.message(index, topic: topic), options: PublishOptions(key: "k\(index % 16)"))
            }
            #expect(await eventually(within: KafkaTestEnvironment.deliveryTimeout) { seen.value.count >= 50 }, "the first consumer received \(seen.value.count) messages")
            // The second member joins while messages flow: the group rebalances over the four partitions.
            let streamB = try await second.subscribe(topic, options: SubscribeOptions(group: group, prefetch: 32))
            let consumerB = consume(streamB, as: "b")
            // Keep messages coming, slowly, until the rebalance has given the second member
            // partitions (its join takes seconds on Tansu), then publish the rest at once.
            var index = n / 2
            let deadline = ContinuousClock.now + KafkaTestEnvironment.deliveryTimeout
            while index < n, byConsumer.value["b"] == nil, ContinuousClock.now < deadline {
                try await first.publish(Self.message(index, topic: topic), options: PublishOptions(key: "k\(index % 16)"))
                index += 1
                try await Task.sleep(for: .milliseconds(50))
            }
            while index < n {
                try await first.publish(Self.message(index, topic: topic), options: PublishOptions(key: "k\(index % 16)"))
                index += 1
            }
            let complete = await eventually(within: KafkaTestEnvironment.deliveryTimeout * 2) { seen.value.count >= n }
            let counts = seen.value
            let duplicates = counts.values.reduce(0) { $0 + $1 - 1 }
            let shares = byConsumer.value.mapValues(\.count)
            print("[kafka rebalance] \(counts.count) of \(n) distinct messages, \(duplicates) duplicate deliveries; per consumer \(shares)")
            #expect(complete, "only \(counts.count) of \(n) messages arrived")
            #expect(counts.count == n)
            #expect((shares["b"] ?? 0) > 0, "the second consumer got no partition: \(shares)")
            consumerA.cancel()
            consumerB.cancel()
            await streamA.close()
            await streamB.close()
            try await first.disconnect()
            try await second.disconnect()
        }
    }

    @Test("offsets are committed only after success: unacknowledged messages go to the next member")
    func commitAfterSuccess() async throws {
        let url = try KafkaTestEnvironment.requireURL()
        try await BrokerTestGate.shared.run {
            let first = try await KafkaTestEnvironment.connectedBroker(url)
            let topic = uniqueName("commit")
            let group = uniqueName("g")
            try await first.createTopic(topic, partitions: 1)
            for index in 0..<10 {
                try await first.publish(Self.message(index, topic: topic), options: .default)
            }
            let stream = try await first.subscribe(topic, options: SubscribeOptions(group: group, prefetch: 10))
            var held: [Delivery] = []
            for _ in 0..<10 {
                let delivery = try #require(try await next(stream, within: KafkaTestEnvironment.deliveryTimeout), "message \(held.count) did not arrive")
                held.append(delivery)
            }
            // Handlers of 0-4 and 7 succeed; those of 5, 6, 8 and 9 never finish (the process dies).
            for delivery in held where [0, 1, 2, 3, 4, 7].contains(Self.index(delivery.message)) {
                try await delivery.ack()
            }
            try await first.disconnect()

            let second = try await KafkaTestEnvironment.connectedBroker(url)
            let again = try await second.subscribe(topic, options: SubscribeOptions(group: group))
            var redelivered: [Int] = []
            while redelivered.count < 5, let delivery = try await next(again, within: KafkaTestEnvironment.deliveryTimeout) {
                redelivered.append(Self.index(delivery.message))
                try await delivery.ack()
            }
            // 7 comes back too: it was done, but 5 and 6 before it were not, and only the
            // contiguous done prefix (0-4) was committed.
            #expect(redelivered == [5, 6, 7, 8, 9])
            let extra = try await next(again, within: .milliseconds(500))
            #expect(extra == nil, "message \(extra.map { Self.index($0.message) } ?? -1) came back although it was committed")
            await again.close()
            try await second.disconnect()
        }
    }

    @Test("messages with one key stay in order on one partition; keys spread over partitions")
    func keyOrdering() async throws {
        let url = try KafkaTestEnvironment.requireURL()
        try await BrokerTestGate.shared.run {
            let broker = try await KafkaTestEnvironment.connectedBroker(url)
            let topic = uniqueName("keys")
            try await broker.createTopic(topic, partitions: 4)
            let keys = (0..<8).map { "customer-\($0)" }
            let perKey = 40
            try await withThrowingTaskGroup(of: Void.self) { group in
                for key in keys {
                    group.addTask {
                        for index in 0..<perKey {
                            try await broker.publish(Self.message(index, topic: topic, key: key), options: PublishOptions(key: key))
                        }
                    }
                }
                try await group.waitForAll()
            }
            let stream = try await broker.subscribe(topic, options: SubscribeOptions(group: uniqueName("g"), prefetch: 64))
            var last: [String: Int] = [:]
            var partitions: [String: Set<String>] = [:]
            var received = 0
            while received < keys.count * perKey, let delivery = try await next(stream, within: KafkaTestEnvironment.deliveryTimeout) {
                let key = try #require(delivery.message.metadata.headers["x-key"])
                #expect(delivery.message.metadata.headers[KafkaHeader.key] == key, "the record key travels as the key header")
                let index = Self.index(delivery.message)
                #expect(index == (last[key] ?? -1) + 1, "key \(key): message \(index) after \(last[key] ?? -1)")
                last[key] = index
                partitions[key, default: []].insert(delivery.message.metadata.headers[KafkaHeader.partition] ?? "?")
                received += 1
                try await delivery.ack()
            }
            #expect(received == keys.count * perKey)
            #expect(partitions.values.allSatisfy { $0.count == 1 }, "a key spread over partitions: \(partitions)")
            #expect(Set(partitions.values.flatMap { $0 }).count >= 2, "every key landed on one partition: \(partitions)")
            await stream.close()
            try await broker.disconnect()
        }
    }

    @Test("topics are created with partitions and config, listed, refused twice, and deleted")
    func topicAdmin() async throws {
        let url = try KafkaTestEnvironment.requireURL()
        try await BrokerTestGate.shared.run {
            let broker = try await KafkaTestEnvironment.connectedBroker(url)
            let topic = uniqueName("admin")
            try await broker.createTopic(topic, partitions: 3, config: ["retention.ms": "3600000"])
            #expect(try await broker.partitionCount(of: topic) == 3)
            #expect(try await broker.listTopics().contains(topic))
            do {
                try await broker.createTopic(topic, partitions: 3)
                Issue.record("creating an existing topic succeeded")
            } catch let error as MessagingError {
                #expect(error.code == .alreadyExists)
                #expect(error.brokerCode == "TOPIC_ALREADY_EXISTS")
            }
            try await broker.createTopic(topic)  // the protocol's createTopic is idempotent
            try await broker.deleteTopic(topic)
            #expect(await eventually(within: .seconds(10)) { (try? await broker.listTopics().contains(topic)) == false })
            do {
                _ = try await broker.partitionCount(of: topic)
                Issue.record("a deleted topic still has partitions")
            } catch let error as MessagingError {
                #expect(error.code == .notFound)
            }
            do {
                try await broker.createTopic(uniqueName("zero"), partitions: 0)
                Issue.record("a topic with no partition was accepted")
            } catch let error as MessagingError {
                #expect(error.code == .invalidArgument)
            }
            try await broker.disconnect()
        }
    }

    @Test("a consumer with a small buffer pauses and resumes fetching without losing messages")
    func flowControl() async throws {
        let url = try KafkaTestEnvironment.requireURL()
        try await BrokerTestGate.shared.run {
            let broker = try await KafkaTestEnvironment.connectedBroker(url) { $0.maxBufferedMessages = 10 }
            let topic = uniqueName("flow")
            try await broker.createTopic(topic, partitions: 2)
            let n = 300
            for index in 0..<n { try await broker.publish(Self.message(index, topic: topic), options: .default) }
            let stream = try await broker.subscribe(topic, options: SubscribeOptions(group: uniqueName("g"), prefetch: 4))
            var seen = Set<Int>()
            while seen.count < n, let delivery = try await next(stream, within: KafkaTestEnvironment.deliveryTimeout) {
                seen.insert(Self.index(delivery.message))
                try await delivery.ack()
            }
            #expect(seen == Set(0..<n))
            await stream.close()
            try await broker.disconnect()
        }
    }

    @Test("queue operations: counts, get, requeue, purge; dead letters carry Kafka's coordinates")
    func queueOperations() async throws {
        let url = try KafkaTestEnvironment.requireURL()
        try await BrokerTestGate.shared.run {
            let broker = try await KafkaTestEnvironment.connectedBroker(url)
            let queue = uniqueName("jobs")
            try await broker.createQueue("\(queue).dlq", options: QueueOptions())
            try await broker.createQueue(queue, options: QueueOptions(deadLetter: .queue("\(queue).dlq")))
            for index in 0..<6 { try await broker.send(Self.message(index, topic: "unused"), toQueue: queue) }
            #expect(try await broker.queueInfo(queue).ready == 6)
            let first = try #require(try await broker.get(queue: queue))
            try await first.nack(requeue: true)
            let again = try #require(try await broker.get(queue: queue))
            #expect(again.message.id == first.message.id)
            #expect(again.deliveryCount == 2)
            try await again.reject(reason: "rejected", error: "bad job")
            let info = try await broker.queueInfo(queue)
            #expect(info.ready == 5, "\(info)")
            #expect(try await broker.purgeQueue(queue) == 5)
            #expect(try await broker.queueInfo(queue).ready == 0)
            #expect(try await broker.get(queue: queue) == nil)

            let dead = try #require(try await broker.get(queue: "\(queue).dlq"))
            let headers = dead.message.metadata.headers
            #expect(dead.message.id == first.message.id)
            #expect(headers[JadugarHeader.deadLetterReason] == "rejected")
            #expect(headers[JadugarHeader.lastError] == "bad job")
            #expect(headers[JadugarHeader.attempts] == "2")
            #expect(headers[JadugarHeader.originalQueue] == queue)
            #expect(headers[KafkaHeader.originalPartition] == first.message.metadata.headers[KafkaHeader.partition])
            #expect(headers[KafkaHeader.originalOffset] == first.message.metadata.headers[KafkaHeader.offset])
            try await dead.ack()
            do {
                _ = try await broker.consume(queue: uniqueName("missing"), options: ConsumeOptions())
                Issue.record("consuming a queue that does not exist succeeded")
            } catch let error as MessagingError {
                #expect(error.code == .notFound)
            }
            do {
                try await broker.createQueue(uniqueName("bounded"), options: QueueOptions(maxLength: 10))
                Issue.record("a bounded queue was accepted")
            } catch let error as MessagingError {
                #expect(error.code == .unsupported)
            }
            try await broker.deleteQueue(queue)
            try await broker.deleteQueue("\(queue).dlq")
            try await broker.disconnect()
        }
    }

    @Test("a subscription without a group reads only what is published after it, literal or wildcard")
    func privateSubscriptions() async throws {
        let url = try KafkaTestEnvironment.requireURL()
        try await BrokerTestGate.shared.run {
            let broker = try await KafkaTestEnvironment.connectedBroker(url)
            let base = uniqueName("private")
            let literal = "\(base).a"
            try await broker.createTopic(literal)
            try await broker.createTopic("\(base).b")
            // Published a minute "ago": a private subscription starts at the end and skips it.
            var old = Self.message(0, topic: literal)
            old.timestamp = Date().addingTimeInterval(-60)
            try await broker.publish(old, options: .default)
            let exact = try await broker.subscribe(literal, options: .default)
            let wildcard = try await broker.subscribe("\(base).*", options: .default)
            try await broker.publish(Self.message(1, topic: literal), options: .default)
            let fromExact = try #require(try await next(exact, within: KafkaTestEnvironment.deliveryTimeout))
            #expect(Self.index(fromExact.message) == 1)
            try await fromExact.ack()
            try await broker.publish(Self.message(2, topic: "\(base).b"), options: .default)
            var fromWildcard: [Int] = []
            while fromWildcard.count < 2, let delivery = try await next(wildcard, within: KafkaTestEnvironment.deliveryTimeout) {
                fromWildcard.append(Self.index(delivery.message))
                try await delivery.ack()
            }
            #expect(Set(fromWildcard).isSuperset(of: [2]), "the wildcard subscription got \(fromWildcard)")
            #expect(!fromWildcard.contains(0))
            #expect(try await next(exact, within: .milliseconds(300)) == nil)
            await exact.close()
            await wildcard.close()
            try await broker.disconnect()
        }
    }

    @Test("a subscription without a group dead-letters to its own topic, which goes when the subscription closes")
    func privateDeadLetters() async throws {
        let url = try KafkaTestEnvironment.requireURL()
        try await BrokerTestGate.shared.run {
            let broker = try await KafkaTestEnvironment.connectedBroker(url)
            let topic = uniqueName("privatedlq")
            try await broker.createTopic(topic, partitions: 1)
            let stream = try await broker.subscribe(topic, options: .default)
            try await broker.publish(Self.message(0, topic: topic), options: .default)
            let delivery = try #require(try await next(stream, within: KafkaTestEnvironment.deliveryTimeout), "the message did not arrive")
            let deadLetterTopic = "\(delivery.queue).dlq"
            try await delivery.reject(reason: "rejected", error: nil)
            #expect(try await broker.partitionCount(of: deadLetterTopic) >= 1, "the dead letter did not make \(deadLetterTopic)")
            await stream.close()
            let gone = await eventually(within: KafkaTestEnvironment.deliveryTimeout) {
                do {
                    _ = try await broker.partitionCount(of: deadLetterTopic)
                    return false
                } catch let error as MessagingError where error.code == .notFound {
                    return true
                } catch {
                    return false
                }
            }
            #expect(gone, "\(deadLetterTopic) outlived its subscription")
            try await broker.disconnect()
        }
    }

    @Test("health, events and errors after disconnect")
    func health() async throws {
        let url = try KafkaTestEnvironment.requireURL()
        let broker = KafkaBroker(configuration: try KafkaTestEnvironment.configuration(url))
        let events = broker.events()
        #expect(await broker.healthCheck().isHealthy == false)
        try await broker.connect()
        let health = await broker.healthCheck()
        #expect(health.isHealthy, "\(health)")
        #expect(health.version?.hasPrefix("librdkafka ") == true)
        var iterator = events.makeAsyncIterator()
        #expect(await iterator.next()?.kind == .connected)
        try await broker.disconnect()
        #expect(await iterator.next()?.kind == .disconnected)
        do {
            try await broker.publish(Message(topic: "x", string: "late"), options: .default)
            Issue.record("a publish after disconnect succeeded")
        } catch let error as MessagingError {
            #expect(error.code == .notConnected)
        }
        let unreachable = KafkaBroker(configuration: KafkaConfiguration(bootstrapServers: "127.0.0.1:1", operationTimeout: .seconds(2)))
        do {
            try await unreachable.connect()
            Issue.record("connecting to a closed port succeeded")
        } catch let error as MessagingError {
            #expect(error.code == .connectionFailed)
            #expect(error.isRetriable)
        }
    }
}
