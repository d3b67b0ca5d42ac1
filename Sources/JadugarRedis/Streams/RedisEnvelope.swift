import Foundation
import Jadugar

/// Envelope v1: how a ``Message`` is stored as the fields of a Redis stream entry (and framed on
/// a pub/sub channel). Documented in `docs/redis.md`; a message written with `redis-cli XADD` in
/// this form is delivered, and one published by Jadugar reads back with `XRANGE`.
///
/// | field | holds |
/// |---|---|
/// | `v` | `1` |
/// | `id` | the message id |
/// | `topic` | the topic (routing key) |
/// | `timestamp` | creation time, milliseconds since 1970 |
/// | `correlation-id`, `reply-to`, `content-type` | as set |
/// | `priority` | 0–255 |
/// | `expiration` | milliseconds the message stays deliverable |
/// | `h:<name>` | one application header each |
/// | `payload` | the payload bytes, untouched |
///
/// A publish adds `exchange` (where it was published); the adapter's library adds `deadline`
/// (absolute expiry, ms) and, for a delayed retry, `redeliveries` (deliveries before this entry).
enum RedisEnvelope {
    static let version = "1"
    static let headerPrefix: [UInt8] = Array("h:".utf8)

    enum Field {
        static let version = "v"
        static let id = "id"
        static let topic = "topic"
        static let timestamp = "timestamp"
        static let correlationID = "correlation-id"
        static let replyTo = "reply-to"
        static let priority = "priority"
        static let expiration = "expiration"
        static let contentType = "content-type"
        static let payload = "payload"
        static let exchange = "exchange"
        static let deadline = "deadline"
        static let redeliveries = "redeliveries"
    }

    /// How many arguments ``append(_:to:exchange:)`` adds: two per field.
    static func fieldCount(_ message: Message, exchange: String?) -> Int {
        let metadata = message.metadata
        var fields = 5 + metadata.headers.count + (exchange == nil ? 0 : 1)
        for present in [metadata.correlationId != nil, metadata.replyTo != nil, metadata.priority != nil, metadata.expiration != nil, metadata.contentType != nil] where present {
            fields += 1
        }
        return fields * 2
    }

    /// Appends the message's fields to a command, in the documented order; `exchange` last when given.
    static func append(_ message: Message, to command: inout some RedisArguments, exchange: String? = nil) {
        command.append(Field.version)
        command.append(version)
        command.append(Field.id)
        command.append(message.id)
        command.append(Field.topic)
        command.append(message.topic)
        command.append(Field.timestamp)
        command.append(milliseconds(message.timestamp))
        let metadata = message.metadata
        if let value = metadata.correlationId {
            command.append(Field.correlationID)
            command.append(value)
        }
        if let value = metadata.replyTo {
            command.append(Field.replyTo)
            command.append(value)
        }
        if let value = metadata.priority {
            command.append(Field.priority)
            command.append(Int(value))
        }
        if let value = metadata.expiration {
            command.append(Field.expiration)
            command.append(milliseconds(value))
        }
        if let value = metadata.contentType {
            command.append(Field.contentType)
            command.append(value)
        }
        for (name, value) in metadata.headers.sorted(by: { $0.key < $1.key }) {
            command.append("h:" + name)
            command.append(value)
        }
        command.append(Field.payload)
        command.append(message.payload)
        if let exchange {
            command.append(Field.exchange)
            command.append(exchange)
        }
    }

    /// What a stream entry decodes to.
    struct Decoded {
        var message: Message
        /// Deliveries before this entry was written (a delayed retry carries them along).
        var redeliveries: Int
        /// When the entry expires, in Redis's clock (ms since 1970).
        var deadline: Int64?
        /// The exchange it was published to.
        var exchange: String?
    }

    /// Decodes an entry's fields. Lenient, for entries written by other clients: a missing id
    /// becomes the entry id, a missing topic the queue name, a missing timestamp the entry id's
    /// time; `body` is read when there is no `payload`; unknown fields are ignored.
    static func decode(fields: [RedisValue], entryID: String, queue: String) -> Decoded {
        var message = Message(id: entryID, topic: queue, payload: [], metadata: MessageMetadata(), timestamp: entryTime(entryID))
        var decoded = Decoded(message: message, redeliveries: 0, deadline: nil, exchange: nil)
        var sawPayload = false
        var index = 0
        while index + 1 < fields.count {
            guard let name = fields[index].bytes else { index += 2; continue }
            let value = fields[index + 1].bytes ?? []
            index += 2
            if name.starts(with: headerPrefix) {
                message.metadata.headers[String(decoding: name.dropFirst(2), as: UTF8.self)] = String(decoding: value, as: UTF8.self)
                continue
            }
            let text = { String(decoding: value, as: UTF8.self) }
            switch String(decoding: name, as: UTF8.self) {
            case Field.id: message.id = text()
            case Field.topic: message.topic = text()
            case Field.timestamp:
                if let ms = Double(text()) { message.timestamp = Date(timeIntervalSince1970: ms / 1000) }
            case Field.correlationID: message.metadata.correlationId = text()
            case Field.replyTo: message.metadata.replyTo = text()
            case Field.priority:
                if let value = Int(text()) { message.metadata.priority = UInt8(clamping: value) }
            case Field.expiration:
                if let ms = Int64(text()) { message.metadata.expiration = .milliseconds(ms) }
            case Field.contentType: message.metadata.contentType = text()
            case Field.payload:
                message.payload = value
                sawPayload = true
            case "body":
                if !sawPayload { message.payload = value }
            case Field.exchange: decoded.exchange = text()
            case Field.deadline: decoded.deadline = Int64(text())
            case Field.redeliveries: decoded.redeliveries = Int(text()) ?? 0
            default: break
            }
        }
        decoded.message = message
        return decoded
    }

    /// Milliseconds since 1970, rounded to the nearest.
    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    /// A duration in whole milliseconds, rounded up so that a short expiration never becomes zero.
    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        let rest = attoseconds % 1_000_000_000_000_000
        return max(0, ms + (rest > 0 ? 1 : 0))
    }

    /// The time part of a stream id (`<ms>-<seq>`).
    static func entryTime(_ entryID: String) -> Date {
        let ms = entryID.split(separator: "-").first.flatMap { Double($0) } ?? 0
        return Date(timeIntervalSince1970: ms / 1000)
    }

    // MARK: Pub/sub framing

    /// The fields as one RESP array of bulk strings (`*<n>\r\n$<len>\r\n<bytes>\r\n...`): the
    /// framing of ephemeral (pub/sub) messages. Any RESP parser reads it back.
    static func frame(_ message: Message) -> [UInt8] {
        var command = RedisCommand()
        append(message, to: &command)
        var out: [UInt8] = Array("*\(command.count)\r\n".utf8)
        var offset = 0
        for length in command.lengths {
            out += Array("$\(length)\r\n".utf8)
            out += command.bytes[offset..<(offset + length)]
            out += [13, 10]
            offset += length
        }
        return out
    }

    /// Reads a frame made by ``frame(_:)``; `nil` when it is not one.
    static func unframe(_ bytes: [UInt8], channelTopic: String) -> Message? {
        var index = 0
        func line() -> String? {
            guard let end = bytes[index...].firstIndex(of: 13), end + 1 < bytes.count, bytes[end + 1] == 10 else { return nil }
            let text = String(decoding: bytes[index..<end], as: UTF8.self)
            index = end + 2
            return text
        }
        guard let header = line(), header.hasPrefix("*"), let count = Int(header.dropFirst()), count >= 0 else { return nil }
        var fields: [RedisValue] = []
        for _ in 0..<count {
            guard let size = line(), size.hasPrefix("$"), let length = Int(size.dropFirst()), length >= 0, index + length + 2 <= bytes.count else { return nil }
            fields.append(.string(Array(bytes[index..<(index + length)])))
            index += length + 2
        }
        return decode(fields: fields, entryID: "0-0", queue: channelTopic).message
    }
}
