import Foundation
import Jadugar

/// A message ready for `basic.publish`: where it goes, its AMQP properties, and its body.
///
/// A class, so that handing it through the publish buffer and the batch copies one reference
/// instead of every property.
final class OutgoingMessage: Sendable {
    let exchange: String
    let routingKey: String
    let mandatory: Bool
    let properties: AMQPProperties
    let body: [UInt8]
    /// The message id, to match a `basic.return` to its publish.
    let messageID: String

    init(exchange: String, routingKey: String, mandatory: Bool, properties: AMQPProperties, body: [UInt8], messageID: String) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.mandatory = mandatory
        self.properties = properties
        self.body = body
        self.messageID = messageID
    }
}

/// Jadugar's envelope on AMQP 0-9-1 (version 1; documented in `docs/rabbitmq.md`).
///
/// | Message field | AMQP |
/// |---|---|
/// | id | `message_id` |
/// | topic | routing key |
/// | payload | body, untouched |
/// | correlationId | `correlation_id` |
/// | replyTo | `reply_to` |
/// | priority | `priority` |
/// | expiration | `expiration` (milliseconds, decimal text) |
/// | contentType | `content_type` |
/// | headers | `headers` table, long-string values |
/// | timestamp | `timestamp` (seconds) and header `timestamp_in_ms` (long, milliseconds) |
/// | persistent (option) | `delivery_mode` 2 (1 when not persistent) |
enum AMQPEnvelope {
    /// Header with the creation time in milliseconds (the name RabbitMQ's timestamp plugin uses).
    static let timestampHeader = "timestamp_in_ms"
    /// Header with the deliveries made before a delayed retry republished the message.
    static let deliveriesHeader = "x-jadugar-deliveries"
    /// Header with the topic a delayed retry keeps while the message waits in a delay queue.
    static let retryTopicHeader = "x-jadugar-retry-topic"
    /// Header with the exchange a delayed retry keeps.
    static let retryExchangeHeader = "x-jadugar-retry-exchange"
    /// The prefix of the per-delay queues that hold delayed retries.
    static let delayQueuePrefix = "jadugar.delay."

    /// Headers RabbitMQ adds that the envelope maps onto Jadugar fields, so they are not repeated as headers.
    private static let mappedHeaders: Set<String> = [timestampHeader, deliveriesHeader, retryTopicHeader, retryExchangeHeader, "x-death", "x-delivery-count"]

    // MARK: Encoding

    static func encode(_ message: Message, exchange: String, routingKey: String, persistent: Bool, mandatory: Bool) -> OutgoingMessage {
        var properties = AMQPProperties()
        properties.messageID = message.id
        properties.correlationID = message.metadata.correlationId
        properties.replyTo = message.metadata.replyTo
        properties.priority = message.metadata.priority
        properties.contentType = message.metadata.contentType
        if let expiration = message.metadata.expiration {
            properties.expiration = String(milliseconds(rounding: expiration))
        }
        properties.deliveryMode = persistent ? 2 : 1
        let milliseconds = Int64((message.timestamp.timeIntervalSince1970 * 1000).rounded(.down))
        properties.timestamp = UInt64(max(0, milliseconds / 1000))
        var headers: [AMQPTableEntry] = []
        headers.reserveCapacity(message.metadata.headers.count + 1)
        for (key, value) in message.metadata.headers {
            headers.append(AMQPTableEntry(key, .string(value)))
        }
        headers.append(AMQPTableEntry(timestampHeader, .int(milliseconds)))
        properties.headers = headers
        properties.hasHeaders = true
        return OutgoingMessage(exchange: exchange, routingKey: routingKey, mandatory: mandatory, properties: properties, body: message.payload, messageID: message.id)
    }

    /// A duration in whole milliseconds, rounded up so that a positive duration never becomes 0.
    static func milliseconds(rounding duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        let whole = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        let remainder = attoseconds % 1_000_000_000_000_000
        return whole + (remainder > 0 ? 1 : 0)
    }

    /// Checks what AMQP cannot carry before a publish is buffered.
    static func validate(_ message: Message) throws {
        for key in message.metadata.headers.keys where key.utf8.count > 255 {
            throw MessagingError(.invalidArgument, "header name '\(key.prefix(40))…' is \(key.utf8.count) bytes; AMQP header names hold at most 255 bytes")
        }
        for text in [message.id, message.metadata.correlationId, message.metadata.replyTo, message.metadata.contentType].compactMap({ $0 }) where text.utf8.count > 255 {
            throw MessagingError(.invalidArgument, "'\(text.prefix(40))…' is \(text.utf8.count) bytes; AMQP's id, correlation id, reply-to and content type hold at most 255 bytes")
        }
    }

    // MARK: Decoding

    /// A delivered message with what the adapter read from the AMQP envelope.
    struct Decoded {
        var message: Message
        var deliveryCount: Int
    }

    /// Reads a delivered message back into a ``Message``.
    ///
    /// The delivery count is the deliveries before a delayed retry (`x-jadugar-deliveries`) plus
    /// this copy's: `x-delivery-count + 1` on quorum queues, 2 when `redelivered` is set on classic
    /// queues, otherwise 1. A dead letter's `x-death` header (newest entry) becomes the Jadugar
    /// dead-letter headers, unless it records a pass through one of Jadugar's delay queues.
    static func decode(properties: AMQPProperties, body: [UInt8], exchange: String, routingKey: String, redelivered: Bool) -> Decoded {
        var headers: [String: String] = [:]
        headers.reserveCapacity(properties.headers.count)
        var timestampMilliseconds: Int64?
        var priorDeliveries = 0
        var deliveryCount: Int64?
        var topic = routingKey
        var deaths: [AMQPFieldValue]?
        for entry in properties.headers {
            switch entry.key {
            case timestampHeader: timestampMilliseconds = entry.value.integer
            case deliveriesHeader: priorDeliveries = Int(entry.value.integer ?? 0)
            case retryTopicHeader: if let text = entry.value.string, !text.isEmpty { topic = text }
            case retryExchangeHeader: break
            case "x-delivery-count": deliveryCount = entry.value.integer
            case "x-death": deaths = entry.value.arrayValues
            default: headers[entry.key] = entry.value.headerText
            }
        }
        let timestamp: Date
        if let timestampMilliseconds {
            timestamp = Date(timeIntervalSince1970: Double(timestampMilliseconds) / 1000)
        } else if let seconds = properties.timestamp {
            timestamp = Date(timeIntervalSince1970: Double(seconds))
        } else {
            timestamp = Date()
        }
        if let newest = deaths?.first?.tableEntries {
            applyDeath(newest, priorDeliveries: priorDeliveries, to: &headers)
        }
        var metadata = MessageMetadata(
            correlationId: properties.correlationID,
            replyTo: properties.replyTo,
            priority: properties.priority,
            contentType: properties.contentType,
            headers: headers
        )
        if let expiration = properties.expiration, let milliseconds = Int64(expiration) {
            metadata.expiration = .milliseconds(milliseconds)
        }
        let thisCopy: Int
        if let deliveryCount {
            thisCopy = Int(deliveryCount) + 1
        } else {
            thisCopy = redelivered ? 2 : 1
        }
        let message = Message(
            id: properties.messageID ?? Message.makeID(),
            topic: topic,
            payload: body,
            metadata: metadata,
            timestamp: timestamp
        )
        return Decoded(message: message, deliveryCount: priorDeliveries + thisCopy)
    }

    /// Maps the newest `x-death` entry onto the Jadugar dead-letter headers.
    private static func applyDeath(_ death: [AMQPTableEntry], priorDeliveries: Int, to headers: inout [String: String]) {
        let queue = death[key: "queue"]?.string ?? ""
        // A pass through a delay queue is a retry coming back, not a dead letter.
        if queue.hasPrefix(delayQueuePrefix) { return }
        let reason = death[key: "reason"]?.string ?? "rejected"
        headers[JadugarHeader.deadLetterReason] = reason
        headers[JadugarHeader.originalQueue] = queue
        if headers[JadugarHeader.originalTopic] == nil, let key = death[key: "routing-keys"]?.arrayValues?.first?.string {
            headers[JadugarHeader.originalTopic] = key
        }
        if headers[JadugarHeader.originalExchange] == nil, let exchange = death[key: "exchange"]?.string {
            headers[JadugarHeader.originalExchange] = exchange
        }
        let count = Int(death[key: "count"]?.integer ?? 1)
        headers[JadugarHeader.attempts] = String(reason == "rejected" ? priorDeliveries + count : priorDeliveries)
        if case .timestamp(let seconds)? = death[key: "time"] {
            headers[JadugarHeader.deadLetteredAt] = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(seconds)))
        }
        headers.removeValue(forKey: JadugarHeader.lastError)
    }
}
