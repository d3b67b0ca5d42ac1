/// The Kafka record header names of Jadugar's envelope (version 1), documented in `docs/kafka.md`.
///
/// A ``Jadugar/Message`` maps onto a Kafka record as: topic = the message's topic (or the queue for
/// `send(_:toQueue:)`), value = the payload bytes untouched, key = ``Jadugar/PublishOptions/key``,
/// else the header ``key``, else the correlation id, timestamp (CreateTime) = the message's
/// timestamp in milliseconds, and these headers (UTF-8 values) beside the application's own.
///
/// ```swift
/// let partition = deadLetter.metadata.headers[KafkaHeader.originalPartition] // "2"
/// ```
public enum KafkaHeader {
    /// The message id. A record without it gets the id `kafka:<topic>:<partition>:<offset>`.
    public static let id = "x-jadugar-id"
    /// The correlation id.
    public static let correlationId = "x-jadugar-correlation-id"
    /// The reply-to address (a queue, that is a topic).
    public static let replyTo = "x-jadugar-reply-to"
    /// The payload's MIME type.
    public static let contentType = "x-jadugar-content-type"
    /// The priority, 0-255, carried but not honoured (Kafka has no priorities).
    public static let priority = "x-jadugar-priority"
    /// The expiration in milliseconds after the record's timestamp; a consumer dead-letters an
    /// expired record with reason `expired` instead of delivering it.
    public static let expiration = "x-jadugar-expiration-ms"
    /// The exchange the message was published to, present only when it was not the default topic
    /// exchange; empty for `send(_:toQueue:)`, which a queue's consumer accepts only from its own topic.
    public static let exchange = "x-jadugar-exchange"
    /// The record key as a header: set it to choose the key when publishing; a consumed message
    /// carries it when the record key differs from the correlation id. Never written as a Kafka header.
    public static let key = "x-jadugar-key"
    /// On a consumed message: the partition it was read from (never written back to Kafka).
    public static let partition = "x-jadugar-partition"
    /// On a consumed message: its offset in the partition (never written back to Kafka).
    public static let offset = "x-jadugar-offset"
    /// On a dead letter: the partition the message was consumed from.
    public static let originalPartition = "x-jadugar-original-partition"
    /// On a dead letter: the offset the message was consumed from.
    public static let originalOffset = "x-jadugar-original-offset"
    /// On a retry record: the queue (consumer group) that retries it.
    public static let retryFor = "x-jadugar-retry-for"
    /// On a retry record: when it is due, in milliseconds since 1970.
    public static let retryAt = "x-jadugar-retry-at"
    /// On a retry record: how many deliveries were attempted so far.
    public static let retryAttempts = "x-jadugar-retry-attempts"
    /// On a retry record: the topic the message was first consumed from.
    public static let retryTopic = "x-jadugar-retry-topic"

    /// Headers that carry envelope fields; they never reach ``Jadugar/MessageMetadata/headers``.
    static let envelope: Set<String> = [
        id, correlationId, replyTo, contentType, priority, expiration, exchange, retryFor, retryAt, retryAttempts, retryTopic,
        partition, offset,
    ]
}
