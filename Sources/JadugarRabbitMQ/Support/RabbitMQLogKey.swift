/// Metadata keys the RabbitMQ adapter puts on log records: dotted, lowercase, in one place.
enum RabbitMQLogKey {
    static let broker = "jadugar.broker"
    static let endpoint = "jadugar.endpoint"
    static let error = "jadugar.error"
    static let attempt = "jadugar.attempt"
}
