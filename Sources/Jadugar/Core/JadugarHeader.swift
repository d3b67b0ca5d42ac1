/// The header names Jadugar itself writes, part of the documented envelope (see the README).
///
/// ```swift
/// let reason = deadLetter.metadata.headers[JadugarHeader.deadLetterReason] // "expired"
/// ```
public enum JadugarHeader {
    /// Why a message was dead-lettered: `rejected`, `expired`, `maxlen`, `timeout`, `decode`, `integrity`, ...
    public static let deadLetterReason = "x-jadugar-dead-letter-reason"
    /// The last error a handler threw before the message was dead-lettered.
    public static let lastError = "x-jadugar-last-error"
    /// How many deliveries were attempted before the message was dead-lettered.
    public static let attempts = "x-jadugar-attempts"
    /// The topic the message was first published on.
    public static let originalTopic = "x-jadugar-original-topic"
    /// The exchange the message was first published to.
    public static let originalExchange = "x-jadugar-original-exchange"
    /// The queue the message was dead-lettered from.
    public static let originalQueue = "x-jadugar-original-queue"
    /// When the message was dead-lettered (ISO 8601).
    public static let deadLetteredAt = "x-jadugar-dead-lettered-at"
    /// Set on a reply when the request handler failed; the value is the error.
    public static let replyError = "x-jadugar-error"
    /// The error's code, beside ``replyError``.
    public static let replyErrorCode = "x-jadugar-error-code"
    /// W3C trace context.
    public static let traceparent = "traceparent"
}
