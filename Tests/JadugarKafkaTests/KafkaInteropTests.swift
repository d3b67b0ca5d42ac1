import Foundation
import Jadugar
import JadugarKafka
import Testing

/// Jadugar and kcat read each other's messages: key, headers and payload as `docs/kafka.md` documents.
@Suite("Kafka interop with kcat", .timeLimit(.minutes(10)))
struct KafkaInteropTests {
    @Test("kcat reads a message Jadugar produced: key, envelope headers, application headers, payload, timestamp")
    func jadugarToKcat() async throws {
        let url = try KafkaTestEnvironment.requireURL()
        try await BrokerTestGate.shared.run {
            let broker = try await KafkaTestEnvironment.connectedBroker(url)
            let topic = uniqueName("tokcat")
            var message = Message(topic: topic, string: "hello from jadugar ✓")
            message.metadata.correlationId = "corr-42"
            message.metadata.replyTo = "reply.q"
            message.metadata.headers = ["tenant": "acme", "grüße": "こんにちは", "empty": ""]
            try await broker.publish(message, options: PublishOptions(key: "customer-7"))
            try await broker.disconnect()

            let output = try await Kcat.run(["-C", "-b", Kcat.brokers, "-t", KafkaTestEnvironment.kafkaTopic(topic), "-o", "beginning", "-e", "-c", "1", "-J", "-q"])
            #expect(output.status == 0, "kcat failed: \(output.stderr)")
            let line = try #require(String(decoding: output.stdout, as: UTF8.self).split(separator: "\n").first.map(String.init), "kcat printed nothing: \(output.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(json["key"] as? String == "customer-7")
            #expect(json["payload"] as? String == "hello from jadugar ✓")
            #expect((json["ts"] as? NSNumber)?.int64Value == Int64((message.timestamp.timeIntervalSince1970 * 1000).rounded()))
            let flat = try #require(json["headers"] as? [String])
            var headers: [String: String] = [:]
            for index in stride(from: 0, to: flat.count - 1, by: 2) { headers[flat[index]] = flat[index + 1] }
            #expect(headers[KafkaHeader.id] == message.id)
            #expect(headers[KafkaHeader.correlationId] == "corr-42")
            #expect(headers[KafkaHeader.replyTo] == "reply.q")
            #expect(headers[KafkaHeader.contentType] == "text/plain; charset=utf-8")
            #expect(headers["tenant"] == "acme")
            #expect(headers["grüße"] == "こんにちは")
            #expect(headers["empty"] == "")
            #expect(headers[KafkaHeader.key] == nil, "the key is the record key, not a header")
            #expect(headers[KafkaHeader.exchange] == nil, "the default exchange is not written")
        }
    }

    @Test("Jadugar reads a message kcat produced: payload, key, headers, envelope headers kcat set")
    func kcatToJadugar() async throws {
        let url = try KafkaTestEnvironment.requireURL()
        try await BrokerTestGate.shared.run {
            let broker = try await KafkaTestEnvironment.connectedBroker(url)
            let topic = uniqueName("fromkcat")
            try await broker.createTopic(topic, partitions: 1)
            let output = try await Kcat.run(
                ["-P", "-b", Kcat.brokers, "-t", KafkaTestEnvironment.kafkaTopic(topic), "-k", "key-1", "-H", "tenant=acme", "-H", "\(KafkaHeader.correlationId)=corr-9", "-H", "empty="],
                input: Data("payload from kcat".utf8)
            )
            #expect(output.status == 0, "kcat failed: \(output.stderr)")
            let stream = try await broker.subscribe(topic, options: SubscribeOptions(group: uniqueName("g")))
            let delivery = try #require(try await next(stream, within: KafkaTestEnvironment.deliveryTimeout), "the kcat message did not arrive")
            let message = delivery.message
            #expect(message.payloadString == "payload from kcat")
            #expect(message.topic == topic)
            #expect(message.id == "kafka:\(topic):0:0")
            #expect(message.metadata.correlationId == "corr-9")
            #expect(message.metadata.headers["tenant"] == "acme")
            #expect(message.metadata.headers["empty"] == "")
            #expect(message.metadata.headers[KafkaHeader.key] == "key-1")
            #expect(message.metadata.headers[KafkaHeader.partition] == "0")
            #expect(abs(message.timestamp.timeIntervalSinceNow) < 120, "the record's timestamp became \(message.timestamp)")
            try await delivery.ack()
            await stream.close()
            try await broker.disconnect()
        }
    }
}
