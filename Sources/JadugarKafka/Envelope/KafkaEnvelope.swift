import Foundation
import Jadugar

/// One record on its way to librdkafka, encoded before it enters the publish buffer so that the
/// I/O thread only hands pointers to `rd_kafka_produceva`.
///
/// `meta` holds the topic with a NUL, then the key, then each header as `name NUL value`.
struct OutgoingRecord: Sendable {
    struct HeaderSlot: Sendable {
        var name: Int
        var value: Int
        var length: Int
    }

    var meta: [UInt8]
    var keyRange: Range<Int>?
    var headers: [HeaderSlot]
    var payload: [UInt8]
    var timestamp: Int64
    /// The partition, or -1 to let the partitioner choose (by key).
    var partition: Int32
    /// For error messages.
    var topic: String
}

/// A record as the consumer fetched it, copied out of librdkafka.
struct FetchedRecord: Sendable {
    var topic: String
    var partition: Int32
    var offset: Int64
    var timestamp: Int64?
    var key: [UInt8]?
    var payload: [UInt8]
    var headers: [(name: String, value: String)]
}

/// A fetched record decoded into a message plus the envelope fields the consumer routes by.
struct DecodedRecord: Sendable {
    var message: Message
    /// The exchange header; `nil` means the default topic exchange.
    var exchange: String?
    var retryFor: String?
    var retryAt: Int64?
    var retryAttempts: Int
}

/// The mapping of ``Jadugar/Message`` onto Kafka records (envelope version 1; see ``KafkaHeader``).
enum KafkaEnvelope {
    /// Encodes a message for `topic`.
    ///
    /// - Parameters:
    ///   - exchange: The exchange to record, or `nil` for the default topic exchange (no header).
    ///   - key: The explicit key (``Jadugar/PublishOptions/key``), which wins over the header and the correlation id.
    ///   - extra: Headers added after the message's own (retry bookkeeping).
    static func encode(_ message: Message, topic: String, exchange: String?, key explicitKey: String?, extra: [(String, String)] = []) -> OutgoingRecord {
        var meta: [UInt8] = []
        meta.reserveCapacity(topic.utf8.count + 64 + message.id.utf8.count)
        meta.append(contentsOf: topic.utf8)
        meta.append(0)
        var keyRange: Range<Int>?
        let metadata = message.metadata
        if let key = explicitKey ?? metadata.headers[KafkaHeader.key] ?? metadata.correlationId {
            let start = meta.count
            meta.append(contentsOf: key.utf8)
            keyRange = start..<meta.count
        }
        var slots: [OutgoingRecord.HeaderSlot] = []
        slots.reserveCapacity(metadata.headers.count + 4 + extra.count)
        func add(_ name: String, _ value: String) {
            let nameStart = meta.count
            meta.append(contentsOf: name.utf8)
            meta.append(0)
            let valueStart = meta.count
            meta.append(contentsOf: value.utf8)
            slots.append(OutgoingRecord.HeaderSlot(name: nameStart, value: valueStart, length: meta.count - valueStart))
        }
        add(KafkaHeader.id, message.id)
        if let value = metadata.correlationId { add(KafkaHeader.correlationId, value) }
        if let value = metadata.replyTo { add(KafkaHeader.replyTo, value) }
        if let value = metadata.contentType { add(KafkaHeader.contentType, value) }
        if let value = metadata.priority { add(KafkaHeader.priority, String(value)) }
        if let value = metadata.expiration { add(KafkaHeader.expiration, String(value.wholeMilliseconds)) }
        if let exchange { add(KafkaHeader.exchange, exchange) }
        for (name, value) in metadata.headers where name != KafkaHeader.key && !KafkaHeader.envelope.contains(name) {
            add(name, value)
        }
        for (name, value) in extra { add(name, value) }
        return OutgoingRecord(
            meta: meta, keyRange: keyRange, headers: slots, payload: message.payload,
            timestamp: milliseconds(message.timestamp), partition: -1, topic: topic
        )
    }

    /// Decodes a fetched record. A record without Jadugar headers (from kcat, for example) gets the
    /// id `kafka:<topic>:<partition>:<offset>` and its Kafka headers as application headers.
    static func decode(_ record: FetchedRecord) -> DecodedRecord {
        var metadata = MessageMetadata()
        var id: String?
        var exchange: String?
        var retryFor: String?
        var retryAt: Int64?
        var retryAttempts = 0
        var retryTopic: String?
        var headers: [String: String] = [:]
        headers.reserveCapacity(record.headers.count)
        for (name, value) in record.headers {
            switch name {
            case KafkaHeader.id: id = value
            case KafkaHeader.correlationId: metadata.correlationId = value
            case KafkaHeader.replyTo: metadata.replyTo = value
            case KafkaHeader.contentType: metadata.contentType = value
            case KafkaHeader.priority: metadata.priority = UInt8(value)
            case KafkaHeader.expiration: metadata.expiration = Int(value).map { .milliseconds($0) }
            case KafkaHeader.exchange: exchange = value
            case KafkaHeader.retryFor: retryFor = value
            case KafkaHeader.retryAt: retryAt = Int64(value)
            case KafkaHeader.retryAttempts: retryAttempts = Int(value) ?? 0
            case KafkaHeader.retryTopic: retryTopic = value
            default: headers[name] = value
            }
        }
        if let key = record.key {
            let text = String(decoding: key, as: UTF8.self)
            if text != metadata.correlationId { headers[KafkaHeader.key] = text }
        }
        headers[KafkaHeader.partition] = String(record.partition)
        headers[KafkaHeader.offset] = String(record.offset)
        metadata.headers = headers
        let timestamp = record.timestamp.map { Date(timeIntervalSince1970: Double($0) / 1000) } ?? Date()
        let message = Message(
            id: id ?? "kafka:\(record.topic):\(record.partition):\(record.offset)",
            topic: retryTopic ?? record.topic,
            payload: record.payload,
            metadata: metadata,
            timestamp: timestamp
        )
        return DecodedRecord(message: message, exchange: exchange, retryFor: retryFor, retryAt: retryAt, retryAttempts: retryAttempts)
    }

    /// Milliseconds since 1970, rounded to the nearest.
    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }
}
