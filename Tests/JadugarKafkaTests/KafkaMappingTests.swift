// Internal mappings need `@testable`, which release builds (the benchmark's `swift test -c
// release`) do not allow; the normal (debug) test run covers them.
#if DEBUG
import Foundation
import Jadugar
@testable import JadugarKafka
import Testing

/// The adapter's mappings, without a broker: URL and properties, pattern regexes, the envelope,
/// and the commit bookkeeping.
@Suite("Kafka mappings")
struct KafkaMappingTests {
    @Test("a kafka:// URL sets the bootstrap servers, adapter settings and librdkafka properties")
    func url() throws {
        let configuration = try KafkaConfiguration(url: "kafka://a:9093,b?partitions=12&producer.compression.type=zstd&consumer.fetch.wait.max.ms=50&socket.timeout.ms=5000&persistent=false&topicPrefix=dev.")
        #expect(configuration.bootstrapServers == "a:9093,b:9092")
        #expect(configuration.defaultPartitions == 12)
        #expect(configuration.persistent == false)
        #expect(configuration.topicPrefix == "dev.")
        #expect(configuration.producerProperties == ["compression.type": "zstd"])
        #expect(configuration.consumerProperties == ["fetch.wait.max.ms": "50"])
        #expect(configuration.properties == ["socket.timeout.ms": "5000"])
        #expect(configuration.producerClientProperties["compression.type"] == "zstd")
        #expect(configuration.producerClientProperties["enable.idempotence"] == "true")
        #expect(configuration.producerClientProperties["acks"] == "all")
        #expect(configuration.consumerClientProperties(group: "g")["fetch.wait.max.ms"] == "50")
        #expect(configuration.consumerClientProperties(group: "g")["enable.auto.commit"] == "false")
    }

    @Test("credentials in the URL turn on SASL and never appear in descriptions or errors")
    func credentials() async throws {
        let configuration = try KafkaConfiguration(url: "kafka://app:s3cr%40t@127.0.0.1:9092")
        #expect(configuration.properties["sasl.username"] == "app")
        #expect(configuration.properties["sasl.password"] == "s3cr@t")
        #expect(configuration.properties["security.protocol"] == "sasl_plaintext")
        #expect(!configuration.description.contains("s3cr"))
        #expect(configuration.description.contains("sasl.password=***"))
        var bad = configuration
        bad.properties["no.such.property"] = "1"
        // librdkafka refuses the property while building the configuration, before any connection.
        do {
            try await KafkaBroker(configuration: bad).connect()
            Issue.record("librdkafka accepted an unknown property")
        } catch let error as MessagingError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("no.such.property"))
            #expect(!error.description.contains("s3cr"))
        }
    }

    @Test("bad URLs are refused with specific errors")
    func badURLs() {
        #expect(throws: MessagingError.self) { try KafkaConfiguration(url: "redis://127.0.0.1") }
        do {
            _ = try KafkaConfiguration(url: "kafka://127.0.0.1:9092?partitions=zero")
            Issue.record("partitions=zero was accepted")
        } catch let error as MessagingError {
            #expect(error.code == .invalidURL)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("topic patterns become regular expressions that match exactly the same topics", arguments: [
        ("user.*", ["user.created", "user.x"], ["user", "user.a.b", "users.x", "xuser.a"]),
        ("user.#", ["user", "user.a", "user.a.b"], ["users", "users.a", "xuser"]),
        ("#.error", ["error", "a.error", "a.b.error"], ["errors", "a.errors", "aerror"]),
        ("a.#.z", ["a.z", "a.b.z", "a.b.c.z"], ["az", "a.z.b", "b.a.z"]),
        ("*.*", ["a.b"], ["a", "a.b.c"]),
        ("#", ["a", "a.b.c"], []),
        ("odd+name.*", ["odd+name.x"], ["oddname.x", "odddname.x"]),
    ])
    func regex(pattern: String, matching: [String], notMatching: [String]) throws {
        let regex = try Regex(ConsumerSpec.regex(for: pattern))
        let topicPattern = try TopicPattern(pattern)
        for topic in matching {
            #expect(topic.wholeMatch(of: regex) != nil, "\(pattern) → \(ConsumerSpec.regex(for: pattern)) should match \(topic)")
            #expect(topicPattern.matches(topic))
        }
        for topic in notMatching {
            #expect(topic.wholeMatch(of: regex) == nil, "\(pattern) → \(ConsumerSpec.regex(for: pattern)) should not match \(topic)")
            #expect(!topicPattern.matches(topic))
        }
    }

    @Test("a prefix goes in front of literal topics, regexes and the group")
    func prefix() {
        let spec = ConsumerSpec(
            queue: "billing", isPrivate: false, hasOwnTopic: true,
            bindings: [KafkaBinding(exchange: "jadugar", pattern: try! TopicPattern("orders.*")), KafkaBinding(exchange: "jadugar", pattern: try! TopicPattern("audit"))],
            defaultExchange: "jadugar", deadLetter: .queue("billing.dlq"), startedAt: Date(), startTolerance: .seconds(1), prefix: "dev."
        )
        #expect(spec.literalTopics == ["dev.billing", "dev.billing.retry", "dev.audit"])
        #expect(spec.regexes == ["^dev\\.orders\\.[^.]+$"])
        #expect(spec.groupID == "dev.billing")
        #expect(spec.jadugarTopic("dev.orders.new") == "orders.new")
        #expect(spec.jadugarTopic("prod.orders.new") == nil)
    }

    @Test("a queue delivers its own topic, its retries, and bound topics from a bound exchange only")
    func routing() throws {
        let spec = ConsumerSpec(
            queue: "q", isPrivate: false, hasOwnTopic: true,
            bindings: [KafkaBinding(exchange: "jadugar", pattern: try TopicPattern("user.*"))],
            defaultExchange: "jadugar", deadLetter: nil, startedAt: Date(), startTolerance: .seconds(1), prefix: ""
        )
        func record(exchange: String?, retryFor: String? = nil) -> DecodedRecord {
            DecodedRecord(message: Message(topic: "t"), exchange: exchange, retryFor: retryFor, retryAt: nil, retryAttempts: 0)
        }
        #expect(spec.accepts(record(exchange: ""), topic: "q"))
        #expect(spec.accepts(record(exchange: nil), topic: "user.created"))
        #expect(!spec.accepts(record(exchange: ""), topic: "user.created"), "a message sent straight to another queue")
        #expect(!spec.accepts(record(exchange: "other"), topic: "user.created"))
        #expect(!spec.accepts(record(exchange: nil), topic: "order.created"))
        #expect(spec.accepts(record(exchange: nil, retryFor: "q"), topic: "q.retry"))
        #expect(!spec.accepts(record(exchange: nil, retryFor: "other"), topic: "q.retry"))
        #expect(!spec.accepts(record(exchange: nil, retryFor: "other"), topic: "user.created"), "another queue's retry")
    }

    @Test("the envelope round-trips every field, and records from other clients get stable ids")
    func envelope() throws {
        var metadata = MessageMetadata(correlationId: "c-1", replyTo: "reply.1", priority: 7, expiration: .seconds(30), contentType: "application/json")
        metadata.headers = ["grüße": "こんにちは 🌍", "empty": "", KafkaHeader.key: "customer-9"]
        let message = Message(topic: "orders.created", payload: [0, 1, 2, 255], metadata: metadata, timestamp: Date(timeIntervalSince1970: 1_800_000_000.1234))
        let outgoing = KafkaEnvelope.encode(message, topic: "dev.orders.created", exchange: nil, key: nil)
        let key = outgoing.keyRange.map { String(decoding: outgoing.meta[$0], as: UTF8.self) }
        #expect(key == "customer-9")
        var headers: [(name: String, value: String)] = []
        for slot in outgoing.headers {
            let nameEnd = outgoing.meta[slot.name...].firstIndex(of: 0)!
            headers.append((String(decoding: outgoing.meta[slot.name..<nameEnd], as: UTF8.self), String(decoding: outgoing.meta[slot.value..<(slot.value + slot.length)], as: UTF8.self)))
        }
        #expect(!headers.contains { $0.name == KafkaHeader.key }, "the key travels as the record key, not as a header")
        #expect(outgoing.timestamp == 1_800_000_000_123)
        let fetched = FetchedRecord(topic: "orders.created", partition: 2, offset: 41, timestamp: outgoing.timestamp, key: Array("customer-9".utf8), payload: outgoing.payload, headers: headers)
        let decoded = KafkaEnvelope.decode(fetched).message
        #expect(decoded.id == message.id)
        #expect(decoded.topic == message.topic)
        #expect(decoded.payload == message.payload)
        #expect(decoded.metadata.correlationId == "c-1")
        #expect(decoded.metadata.replyTo == "reply.1")
        #expect(decoded.metadata.priority == 7)
        #expect(decoded.metadata.expiration == .seconds(30))
        #expect(decoded.metadata.contentType == "application/json")
        #expect(decoded.metadata.headers["grüße"] == "こんにちは 🌍")
        #expect(decoded.metadata.headers["empty"] == "")
        #expect(decoded.metadata.headers[KafkaHeader.key] == "customer-9")
        #expect(decoded.metadata.headers[KafkaHeader.partition] == "2")
        #expect(decoded.metadata.headers[KafkaHeader.offset] == "41")
        #expect(abs(decoded.timestamp.timeIntervalSince(message.timestamp)) < 0.001)

        let foreign = KafkaEnvelope.decode(FetchedRecord(topic: "t", partition: 0, offset: 5, timestamp: nil, key: nil, payload: Array("x".utf8), headers: [("tenant", "acme")]))
        #expect(foreign.message.id == "kafka:t:0:5")
        #expect(foreign.message.metadata.headers["tenant"] == "acme")
        #expect(foreign.exchange == nil)
    }

    @Test("only the contiguous done prefix of a partition is committed")
    func commitPrefix() {
        var tracker = PartitionTracker()
        for offset in Int64(10)..<15 { tracker.fetched(offset) }
        #expect(tracker.nextCommit() == 10, "nothing done yet: the first fetched offset")
        #expect(tracker.nextCommit() == nil, "no progress, no second commit")
        tracker.markDone(11)
        tracker.markDone(12)
        #expect(tracker.nextCommit() == nil, "10 is still in flight")
        tracker.markDone(10)
        #expect(tracker.nextCommit() == 13)
        tracker.markDone(14)
        #expect(tracker.nextCommit() == nil)
        tracker.markDone(13)
        #expect(tracker.nextCommit() == 15)
        tracker.reachedEnd(at: 20)
        #expect(tracker.nextCommit() == 20, "records skipped by compaction or transactions end at the reported end")
    }

    @Test("an exclusive queue takes its topic with it; a group-less subscription also its default dead-letter topic")
    func topicsDeletedWithExclusiveQueues() {
        let replies = KafkaTopology.QueueEntry(options: QueueOptions(durable: false, exclusive: true, autoDelete: true), hasOwnTopic: true)
        #expect(KafkaBroker.topicsDeletedWith("replies.1", replies) == ["replies.1"])
        let subscription = KafkaTopology.QueueEntry(options: QueueOptions(durable: false, exclusive: true, autoDelete: true, deadLetter: .queue("sub.7.dlq")), hasOwnTopic: false)
        #expect(KafkaBroker.topicsDeletedWith("sub.7", subscription) == ["sub.7.dlq"])
        let named = KafkaTopology.QueueEntry(options: QueueOptions(durable: false, exclusive: true, autoDelete: true, deadLetter: .queue("audit.dlq")), hasOwnTopic: false)
        #expect(KafkaBroker.topicsDeletedWith("sub.8", named) == [], "a dead-letter queue the options named is the user's")
    }
}
#endif
