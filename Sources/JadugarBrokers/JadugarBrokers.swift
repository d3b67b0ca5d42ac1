@_exported import Jadugar
@_exported import JadugarKafka
@_exported import JadugarRabbitMQ
@_exported import JadugarRedis
import CHiredis
import CRabbitMQ
import CRdKafka

/// Every broker in one import: registers `redis://`, `amqp://`, `amqps://` and `kafka://` next to
/// the built-in `memory://`, so a URL selects the broker.
///
/// ```swift
/// import JadugarBrokers
///
/// JadugarBrokers.registerAll()
/// let manager = try MessageManager(options: MessageOptions(url: "kafka://127.0.0.1:9092"))
/// ```
public enum JadugarBrokers {
    /// Registers every adapter's URL schemes; calling it again does nothing new.
    public static func registerAll() {
        RedisBroker.register()
        RabbitMQBroker.register()
        KafkaBroker.register()
    }

    /// The versions of the C client libraries loaded at run time, for reports.
    public static func clientLibraryVersions() -> [String: String] {
        [
            "hiredis": "\(HIREDIS_MAJOR).\(HIREDIS_MINOR).\(HIREDIS_PATCH)",
            "rabbitmq-c": String(cString: amqp_version()),
            "librdkafka": String(cString: rd_kafka_version_str()),
        ]
    }
}
