import Foundation
import Jadugar
import JadugarRedis
import Testing

extension RedisTests {
    /// The envelope (docs/redis.md) read and written with the standard client, `redis-cli`.
    @Suite("Interop with redis-cli")
    struct Interop {
        /// Field name → value pairs of the single entry of a stream, read with `redis-cli --raw XRANGE`.
        static func entryFields(_ key: String) async throws -> (id: String, fields: [(String, String)]) {
            let lines = try await RedisCLI.run(["XRANGE", key, "-", "+"]).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            // --raw prints the entry id, then one line per field name and value.
            let content = Array(lines.dropLast(lines.last == "" ? 1 : 0))
            guard let id = content.first, content.count % 2 == 1 else {
                throw TestFailure("unexpected XRANGE output: \(content)")
            }
            var fields: [(String, String)] = []
            var index = 1
            while index + 1 < content.count {
                fields.append((content[index], content[index + 1]))
                index += 2
            }
            return (id, fields)
        }

        @Test("a message published by Jadugar reads back with redis-cli XRANGE, field by field as documented")
        func jadugarToRedisCLI() async throws {
            let prefix = RedisTestEnvironment.uniquePrefix("interop-out")
            let broker = try await Broker.connect(prefix: prefix)
            try await broker.createQueue("audit", options: QueueOptions(maxPriority: 0))
            try await broker.bind(queue: "audit", exchange: broker.defaultExchange, routingKey: "orders.#")
            var message = Message(topic: "orders.created.eu", payload: Array("{\"total\":42,\"note\":\"größe ✓\"}".utf8))
            message.metadata.correlationId = "corr-7"
            message.metadata.replyTo = "replies.7"
            message.metadata.priority = 3
            message.metadata.contentType = "application/json"
            message.metadata.headers = ["tenant": "acme", "grüße": "こんにちは", "empty": ""]
            try await broker.publish(message, options: .default)

            let (entryID, fields) = try await Self.entryFields("\(prefix)q:audit")
            #expect(fields.map(\.0) == [
                "v", "id", "topic", "timestamp", "correlation-id", "reply-to", "priority", "content-type",
                "h:empty", "h:grüße", "h:tenant", "payload", "exchange",
            ])
            let value = Dictionary(fields, uniquingKeysWith: { first, _ in first })
            #expect(value["v"] == "1")
            #expect(value["id"] == message.id)
            #expect(value["topic"] == "orders.created.eu")
            let milliseconds = try #require(value["timestamp"].flatMap(Double.init))
            #expect(abs(milliseconds / 1000 - message.timestamp.timeIntervalSince1970) < 0.001)
            #expect(value["correlation-id"] == "corr-7" && value["reply-to"] == "replies.7")
            #expect(value["priority"] == "3" && value["content-type"] == "application/json")
            #expect(value["h:tenant"] == "acme" && value["h:grüße"] == "こんにちは" && value["h:empty"] == "")
            #expect(value["payload"] == "{\"total\":42,\"note\":\"größe ✓\"}")
            #expect(value["exchange"] == broker.defaultExchange)
            #expect(entryID.contains("-"), "entry id \(entryID)")
            // The consumer group is visible to redis-cli too.
            let groups = try await RedisCLI.run(["XINFO", "GROUPS", "\(prefix)q:audit"])
            #expect(groups.contains("jadugar"))
            try await Broker.cleanUp(prefix, broker)
        }

        @Test("a message added with redis-cli XADD in the documented form is delivered by Jadugar")
        func redisCLIToJadugar() async throws {
            let prefix = RedisTestEnvironment.uniquePrefix("interop-in")
            let broker = try await Broker.connect(prefix: prefix)
            try await broker.createQueue("inbox", options: QueueOptions())
            let stream = try await broker.consume(queue: "inbox", options: ConsumeOptions())
            let milliseconds = Int64((Date().timeIntervalSince1970 * 1000).rounded())
            try await RedisCLI.run([
                "XADD", "\(prefix)q:inbox", "*",
                "v", "1", "id", "ext-1", "topic", "orders.created", "timestamp", String(milliseconds),
                "correlation-id", "c-9", "reply-to", "answers", "content-type", "text/plain; charset=utf-8",
                "h:tenant", "acme", "h:größe", "groß", "payload", "hello from redis-cli ✓",
            ])
            let delivery = try #require(try await next(stream, within: .seconds(5)))
            let got = delivery.message
            #expect(got.id == "ext-1" && got.topic == "orders.created")
            #expect(got.payloadString == "hello from redis-cli ✓")
            #expect(got.metadata.correlationId == "c-9" && got.metadata.replyTo == "answers")
            #expect(got.metadata.contentType == "text/plain; charset=utf-8")
            #expect(got.metadata.headers == ["tenant": "acme", "größe": "groß"])
            #expect(abs(got.timestamp.timeIntervalSince1970 * 1000 - Double(milliseconds)) < 1)
            #expect(delivery.deliveryCount == 1)
            try await delivery.ack()
            // Acknowledged entries are deleted from the stream.
            #expect(try await RedisCLI.run(["XLEN", "\(prefix)q:inbox"]).hasPrefix("0"))

            // The smallest entry another client may write: just a payload. The entry id stands
            // in for the message id and the queue for the topic.
            let entryID = try await RedisCLI.run(["XADD", "\(prefix)q:inbox", "*", "payload", "bare"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let bare = try #require(try await next(stream, within: .seconds(5)))
            #expect(bare.message.id == entryID && bare.message.topic == "inbox" && bare.message.payloadString == "bare")
            try await bare.ack()
            await stream.close()
            try await Broker.cleanUp(prefix, broker)
        }

        @Test("dead letters carry the x-jadugar headers where redis-cli can read them")
        func deadLetterHeadersReadable() async throws {
            let prefix = RedisTestEnvironment.uniquePrefix("interop-dlq")
            let broker = try await Broker.connect(prefix: prefix)
            try await broker.createQueue("work.dlq", options: QueueOptions())
            try await broker.createQueue("work", options: QueueOptions(deadLetter: .queue("work.dlq")))
            try await broker.send(Message(topic: "jobs.resize", string: "image-1"), toQueue: "work")
            let delivery = try #require(try await broker.get(queue: "work"))
            try await delivery.reject(reason: "rejected", error: "disk full")
            let (_, fields) = try await Self.entryFields("\(prefix)q:work.dlq")
            let value = Dictionary(fields, uniquingKeysWith: { first, _ in first })
            #expect(value["h:x-jadugar-dead-letter-reason"] == "rejected")
            #expect(value["h:x-jadugar-last-error"] == "disk full")
            #expect(value["h:x-jadugar-attempts"] == "1")
            #expect(value["h:x-jadugar-original-queue"] == "work")
            #expect(value["h:x-jadugar-original-topic"] == "jobs.resize")
            #expect(value["h:x-jadugar-dead-lettered-at"].map { ISO8601DateFormatter().date(from: $0) != nil } == true)
            try await Broker.cleanUp(prefix, broker)
        }
    }
}
