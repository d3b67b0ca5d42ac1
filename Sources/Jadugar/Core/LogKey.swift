/// Metadata keys Jadugar puts on log records: dotted, lowercase, in one place.
enum LogKey {
    static let messageID = "jadugar.message.id"
    static let topic = "jadugar.topic"
    static let queue = "jadugar.queue"
    static let correlationID = "jadugar.correlation.id"
    static let attempt = "jadugar.attempt"
    static let reason = "jadugar.reason"
    static let error = "jadugar.error"
    static let broker = "jadugar.broker"
}
