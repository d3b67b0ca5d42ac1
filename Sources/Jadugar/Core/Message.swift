import Foundation
import Synchronization

/// A message: an identified payload on a topic, with metadata that every broker carries.
///
/// The payload is opaque bytes; Jadugar never re-encodes it. Helpers build payloads from
/// strings and `Codable` values and read them back.
///
/// ```swift
/// let message = try Message(topic: "user.created", json: User(id: 1, name: "Ada"))
/// try await manager.publish(message)
/// let user = try message.decode(User.self)
/// ```
public struct Message: Sendable, Hashable {
    /// A unique id, stamped at creation. Consumers count duplicates by it.
    public var id: String
    /// The topic (routing key) the message was published on, for example `user.created`.
    public var topic: String
    /// The payload bytes, passed through untouched.
    public var payload: [UInt8]
    /// Correlation, reply address, priority, expiration, content type and headers.
    public var metadata: MessageMetadata
    /// When the message was created.
    public var timestamp: Date

    /// Creates a message.
    ///
    /// - Parameters:
    ///   - id: A unique id; a fresh one by default.
    ///   - topic: The topic to publish on. May be empty when given to `publish(_:_:)` separately.
    ///   - payload: The payload bytes.
    ///   - metadata: Metadata; empty by default.
    ///   - timestamp: Creation time; now by default.
    public init(
        id: String = Message.makeID(),
        topic: String = "",
        payload: [UInt8] = [],
        metadata: MessageMetadata = MessageMetadata(),
        timestamp: Date = Date()
    ) {
        self.id = id
        self.topic = topic
        self.payload = payload
        self.metadata = metadata
        self.timestamp = timestamp
    }

    /// Creates a message whose payload is the UTF-8 bytes of a string, content type `text/plain`.
    ///
    /// ```swift
    /// let message = Message(topic: "greetings", string: "hello")
    /// ```
    public init(id: String = Message.makeID(), topic: String = "", string: String, metadata: MessageMetadata = MessageMetadata()) {
        var metadata = metadata
        if metadata.contentType == nil { metadata.contentType = "text/plain; charset=utf-8" }
        self.init(id: id, topic: topic, payload: Array(string.utf8), metadata: metadata)
    }

    /// Creates a message whose payload is a value encoded as JSON, content type `application/json`.
    ///
    /// ```swift
    /// let message = try Message(topic: "math.add", json: ["a": 1, "b": 2])
    /// ```
    ///
    /// - Throws: ``MessagingError`` with code ``MessagingError/Code/invalidArgument`` when the value cannot be encoded.
    public init<Value: Encodable>(id: String = Message.makeID(), topic: String = "", json value: Value, metadata: MessageMetadata = MessageMetadata()) throws {
        let data: Data
        do {
            data = try JSONEncoder().encode(value)
        } catch {
            throw MessagingError(.invalidArgument, "the payload could not be encoded as JSON: \(error)")
        }
        var metadata = metadata
        if metadata.contentType == nil { metadata.contentType = "application/json" }
        self.init(id: id, topic: topic, payload: Array(data), metadata: metadata)
    }

    /// The payload as a UTF-8 string, or `nil` when the bytes are not valid UTF-8.
    public var payloadString: String? {
        String(validating: payload, as: UTF8.self)
    }

    /// Decodes the payload as JSON.
    ///
    /// ```swift
    /// let sum = try reply.decode(Int.self)
    /// ```
    ///
    /// - Throws: ``MessagingError`` with code ``MessagingError/Code/decodeFailed``.
    public func decode<Value: Decodable>(_ type: Value.Type = Value.self) throws -> Value {
        do {
            return try JSONDecoder().decode(Value.self, from: Data(payload))
        } catch {
            throw MessagingError(.decodeFailed, "the payload of message \(id) is not JSON of \(Value.self): \(error)")
        }
    }

    /// The size used for payload limits and memory accounting: payload plus header bytes.
    public var approximateSize: Int {
        var size = payload.count + id.utf8.count + topic.utf8.count
        for (key, value) in metadata.headers { size += key.utf8.count + value.utf8.count }
        return size
    }

    private static let idPrefix: String = {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        return hex(value, width: 16)
    }()
    private static let idCounter = Atomic<UInt64>(0)

    /// A new process-unique, practically globally unique id: 16 random hex digits fixed per
    /// process, then a 16-digit counter. Much cheaper than a UUID on the publish hot path.
    public static func makeID() -> String {
        let n = idCounter.wrappingAdd(1, ordering: .relaxed).newValue
        return idPrefix + hex(n, width: 16)
    }

    private static func hex(_ value: UInt64, width: Int) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: width) { buffer in
            var v = value
            for i in stride(from: width - 1, through: 0, by: -1) {
                buffer[i] = digits[Int(v & 0xF)]
                v >>= 4
            }
            return width
        }
    }
}

/// Metadata carried with every message, mapped onto each broker's native fields (see the README's envelope table).
///
/// ```swift
/// var metadata = MessageMetadata(correlationId: "req-7", replyTo: "reply.42")
/// metadata.headers["tenant"] = "acme"
/// ```
public struct MessageMetadata: Sendable, Hashable {
    /// Ties a reply to its request.
    public var correlationId: String?
    /// The queue a reply should be sent to.
    public var replyTo: String?
    /// Priority, 0 (lowest) to 255; brokers clamp it to the queue's maximum.
    public var priority: UInt8?
    /// How long the message stays deliverable after it is published; then it is dead-lettered with reason `expired`.
    public var expiration: Duration?
    /// The MIME type of the payload, for example `application/json`.
    public var contentType: String?
    /// Application headers: UTF-8 keys and values.
    public var headers: [String: String]

    /// Creates metadata. Every field is optional.
    public init(
        correlationId: String? = nil,
        replyTo: String? = nil,
        priority: UInt8? = nil,
        expiration: Duration? = nil,
        contentType: String? = nil,
        headers: [String: String] = [:]
    ) {
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.priority = priority
        self.expiration = expiration
        self.contentType = contentType
        self.headers = headers
    }
}
