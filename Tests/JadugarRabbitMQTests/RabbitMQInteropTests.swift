import Foundation
import Jadugar
import JadugarRabbitMQ
import Testing

/// The envelope against standard AMQP clients: Debian's amqp-tools (rabbitmq-c's command-line
/// tools) and RabbitMQ's own Erlang client (`amqp_client`, run inside the broker node by
/// `rabbitmqctl eval`), which shows every property and header as another client decodes them.
@Suite("RabbitMQ interop with standard clients", .timeLimit(.minutes(3)))
struct RabbitMQInteropTests {
    /// Bytes that are not UTF-8, to show the payload passes untouched.
    static let binaryPayload: [UInt8] = [0x00, 0xFF, 0xFE, 0x41, 0x0A, 0xC3, 0x28, 0x7F]

    static func jadugarMessage() -> Message {
        var metadata = MessageMetadata(
            correlationId: "corr-42", replyTo: "replies.ü", priority: 7, expiration: .seconds(60),
            contentType: "application/octet-stream"
        )
        metadata.headers = ["tenant": "acme", "grüße": "こんにちは 🌍", "empty": ""]
        return Message(topic: "", payload: binaryPayload, metadata: metadata, timestamp: Date(timeIntervalSince1970: 1_700_000_000.123))
    }

    @Test("amqp-get and amqp-consume read a Jadugar message's body byte for byte")
    func amqpToolsReadJadugar() async throws {
        let url = try RabbitMQTestEnvironment.url()
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("to-tools")
        try await broker.createQueue(queue, options: QueueOptions(durable: false))
        try await broker.send(Self.jadugarMessage(), toQueue: queue)
        try await broker.send(Message(string: "second ✓"), toQueue: queue)

        let get = try await ProcessRunner.run("amqp-get", ["--url=\(url)", "-q", queue])
        #expect(get.status == 0, "amqp-get failed: \(get.errorOutput)")
        #expect(get.outputBytes == Self.binaryPayload)

        let consume = try await ProcessRunner.run("amqp-consume", ["--url=\(url)", "-q", queue, "-c", "1", "cat"])
        #expect(consume.status == 0, "amqp-consume failed: \(consume.errorOutput)")
        #expect(consume.output == "second ✓")
        #expect(try await broker.queueInfo(queue).ready == 0)
        try await broker.deleteQueue(queue)
    }

    @Test("RabbitMQ's Erlang client reads every property and header of a Jadugar message as documented")
    func erlangClientReadsJadugar() async throws {
        let url = try RabbitMQTestEnvironment.url()
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("to-erlang")
        try await broker.createQueue(queue, options: QueueOptions(durable: false, maxPriority: 9))
        let message = Self.jadugarMessage()
        try await broker.send(message, toQueue: queue, options: PublishOptions(persistent: true))

        let seen = try await ErlangClient.get(queue: queue, url: url)
        #expect(seen.routingKey == queue)
        #expect(seen.exchange == "")
        #expect(seen.body == Self.binaryPayload)
        #expect(seen.messageID == message.id)
        #expect(seen.correlationID == "corr-42")
        #expect(seen.replyTo == "replies.ü")
        #expect(seen.priority == 7)
        #expect(seen.expiration == "60000")
        #expect(seen.contentType == "application/octet-stream")
        #expect(seen.deliveryMode == 2)
        #expect(seen.timestamp == 1_700_000_000)
        #expect(seen.headers["timestamp_in_ms"] as? Int == 1_700_000_000_123)
        #expect(seen.headerTypes["timestamp_in_ms"] == "long")
        #expect(seen.headers["tenant"] as? String == "acme")
        #expect(seen.headers["grüße"] as? String == "こんにちは 🌍")
        #expect(seen.headers["empty"] as? String == "")
        #expect(seen.headerTypes["tenant"] == "longstr")
        #expect(Set(seen.headers.keys) == ["tenant", "grüße", "empty", "timestamp_in_ms"])
        try await broker.deleteQueue(queue)
    }

    @Test("a message from amqp-publish with -p, -C, -t and -H reads back as a Jadugar message")
    func amqpPublishToJadugar() async throws {
        let url = try RabbitMQTestEnvironment.url()
        let broker = try await RabbitMQTestEnvironment.connectedBroker()
        defer { Task { try? await broker.disconnect() } }
        let queue = RabbitMQTestEnvironment.uniqueName("from-tools")
        try await broker.createQueue(queue, options: QueueOptions(durable: false))
        let before = Date()
        let publish = try await ProcessRunner.run("amqp-publish", [
            "--url=\(url)", "-r", queue, "-p", "-C", "application/json", "-t", "replies.here",
            "-H", "tenant: acme", "-H", "grüße: こんにちは", "-b", #"{"order":7}"#,
        ])
        #expect(publish.status == 0, "amqp-publish failed: \(publish.errorOutput)")
        let delivery = try #require(try await getEventually(broker, queue))
        let got = delivery.message
        #expect(got.payloadString == #"{"order":7}"#)
        #expect(got.topic == queue, "the routing key is the topic")
        #expect(got.metadata.contentType == "application/json")
        #expect(got.metadata.replyTo == "replies.here")
        #expect(got.metadata.headers == ["tenant": "acme", "grüße": "こんにちは"])
        #expect(got.metadata.correlationId == nil)
        #expect(!got.id.isEmpty, "a message without message_id gets an id")
        #expect(got.timestamp >= before.addingTimeInterval(-1), "without a timestamp the delivery time stands in")
        #expect(delivery.deliveryCount == 1)
        try await delivery.ack()

        // Through the default topic exchange to a Jadugar subscription.
        let topic = "\(queue).created"
        let stream = try await broker.subscribe(topic, options: SubscribeOptions(group: "\(queue).g"))
        let routed = try await ProcessRunner.run("amqp-publish", ["--url=\(url)", "-e", broker.defaultExchange, "-r", topic, "-b", "via exchange"])
        #expect(routed.status == 0, "amqp-publish failed: \(routed.errorOutput)")
        let viaExchange = try #require(try await next(stream))
        #expect(viaExchange.message.topic == topic)
        #expect(viaExchange.message.payloadString == "via exchange")
        try await viaExchange.ack()
        await stream.close()
        try await broker.deleteQueue(queue)
        try await broker.deleteQueue("\(queue).g")
        try await broker.deleteQueue("\(queue).g.dlq")
    }
}

/// RabbitMQ's Erlang AMQP client, run in the broker node with `rabbitmqctl eval`: connects over
/// TCP like any client, takes one message with `basic.get`, and reports it as JSON.
enum ErlangClient {
    struct Seen {
        var exchange: String
        var routingKey: String
        var body: [UInt8]
        var messageID: String?
        var correlationID: String?
        var replyTo: String?
        var contentType: String?
        var expiration: String?
        var priority: Int?
        var deliveryMode: Int?
        var timestamp: Int?
        var headers: [String: Any]
        var headerTypes: [String: String]
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    static func get(queue: String, url: String) async throws -> Seen {
        func erlangString(_ text: String) -> String {
            text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        }
        let program = """
        {ok, P} = amqp_uri:parse("\(erlangString(url))"),
        {ok, C} = amqp_connection:start(P),
        {ok, Ch} = amqp_connection:open_channel(C),
        R = amqp_channel:call(Ch, {'basic.get', 0, <<"\(erlangString(queue))"/utf8>>, true}),
        amqp_connection:close(C),
        {{'basic.get_ok', _, _, Ex, RK, _}, {amqp_msg, {'P_basic', CT, _CE, H, DM, Pri, Corr, Rep, Exp, Id, Ts, _Type, _User, _App, _}, Body}} = R,
        V = fun(undefined) -> null; (X) -> X end,
        Hs = case H of undefined -> []; _ -> H end,
        J = rabbit_json:encode(#{exchange => Ex, routing_key => RK, content_type => V(CT), delivery_mode => V(DM),
            priority => V(Pri), correlation_id => V(Corr), reply_to => V(Rep), expiration => V(Exp), message_id => V(Id),
            timestamp => V(Ts), headers => maps:from_list([{K, Val} || {K, _, Val} <- Hs]),
            header_types => maps:from_list([{K, atom_to_binary(T)} || {K, T, _} <- Hs]), body_base64 => base64:encode(Body)}),
        base64:encode(J).
        """
        let result = try await RabbitMQTestEnvironment.rabbitmqctl(["eval", program])
        guard result.status == 0,
            let start = result.output.range(of: "<<\""), let end = result.output.range(of: "\">>", range: start.upperBound..<result.output.endIndex),
            let json = Data(base64Encoded: String(result.output[start.upperBound..<end.lowerBound])),
            let object = try JSONSerialization.jsonObject(with: json) as? [String: Any]
        else {
            throw Failure(description: "the Erlang client could not read queue \(queue): status \(result.status), \(result.output) \(result.errorOutput)")
        }
        return Seen(
            exchange: object["exchange"] as? String ?? "?",
            routingKey: object["routing_key"] as? String ?? "?",
            body: [UInt8](Data(base64Encoded: object["body_base64"] as? String ?? "") ?? Data()),
            messageID: object["message_id"] as? String,
            correlationID: object["correlation_id"] as? String,
            replyTo: object["reply_to"] as? String,
            contentType: object["content_type"] as? String,
            expiration: object["expiration"] as? String,
            priority: object["priority"] as? Int,
            deliveryMode: object["delivery_mode"] as? Int,
            timestamp: object["timestamp"] as? Int,
            headers: object["headers"] as? [String: Any] ?? [:],
            headerTypes: object["header_types"] as? [String: String] ?? [:]
        )
    }
}
