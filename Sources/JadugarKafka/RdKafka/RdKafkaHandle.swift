import CRdKafka
import Jadugar
import Logging
import Synchronization

/// The object librdkafka hands back to a client's callbacks (`rd_kafka_opaque`); subclasses add
/// what their callbacks need. The handle keeps it alive, so callbacks never outlive it.
///
/// `@unchecked Sendable`: `logger` is immutable, and librdkafka's log callback may run on any of
/// its threads; subclasses state their own invariants.
class RdKafkaOpaque: @unchecked Sendable {
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }
}

/// librdkafka's log lines, into the adapter's logger (called on librdkafka's own threads).
private func kafkaLog(_ rk: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?, _ line: UnsafePointer<CChar>?) {
    guard let rk, let opaque = rd_kafka_opaque(rk) else { return }
    let logger = Unmanaged<RdKafkaOpaque>.fromOpaque(opaque).takeUnretainedValue().logger
    let severity: Logger.Level = switch level {
    case ...3: .error
    case 4: .warning
    case 5: .notice
    case 6: .info
    default: .debug
    }
    guard severity >= logger.logLevel else { return }
    let text = line.map { String(cString: $0) } ?? ""
    logger.log(level: severity, "\(text)", metadata: [
        "kafka.client": "\(String(cString: rd_kafka_name(rk)))", "kafka.facility": "\(facility.map { String(cString: $0) } ?? "")",
    ])
}

/// Owns one librdkafka client (`rd_kafka_t`): created by a throwing factory that frees the
/// configuration on failure, destroyed in `deinit`.
///
/// `@unchecked Sendable` because the pointer is immutable and the class is only handed from the
/// thread that builds it to the one thread that uses it (a producer's I/O thread, a consumer's poll
/// thread, the admin thread); no two threads call into one handle at once. The one documented
/// exception is `rd_kafka_queue_yield`, which librdkafka allows from any thread.
final class RdKafkaHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    /// What the callbacks get; lives as long as the client.
    let opaque: RdKafkaOpaque
    private let destroyed = Atomic<Bool>(false)

    private init(_ pointer: OpaquePointer, opaque: RdKafkaOpaque) {
        self.pointer = pointer
        self.opaque = opaque
    }

    deinit {
        destroy()
    }

    /// Destroys the client now. `rd_kafka_destroy` blocks until librdkafka's threads end, so owners
    /// call this on their own thread rather than leave it to `deinit`, which may run anywhere.
    /// The pointer must not be used afterwards.
    func destroy() {
        if destroyed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged {
            rd_kafka_destroy(pointer)
        }
    }

    /// The client's name as librdkafka logs it, for example `rdkafka#consumer-3`.
    var name: String { String(cString: rd_kafka_name(pointer)) }

    /// Builds a client.
    ///
    /// - Parameters:
    ///   - type: Producer or consumer.
    ///   - properties: librdkafka properties, applied in key order.
    ///   - opaque: What the callbacks receive; the handle keeps it alive. Log lines go to its logger.
    ///   - configure: Sets callbacks on the configuration before the client is made.
    /// - Throws: ``MessagingError/Code/invalidArgument`` naming a property librdkafka rejects (secret
    ///   values are never printed), or ``MessagingError/Code/connectionFailed`` when the client cannot be made.
    static func make(type: rd_kafka_type_t, properties: [String: String], opaque: RdKafkaOpaque, configure: (OpaquePointer) -> Void = { _ in }) throws -> RdKafkaHandle {
        guard let conf = rd_kafka_conf_new() else {
            throw MessagingError(.brokerError, "librdkafka could not allocate a configuration")
        }
        var errorText = [CChar](repeating: 0, count: 512)
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, key, value, &errorText, errorText.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let reason = String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw MessagingError(
                    .invalidArgument,
                    "librdkafka rejected the property \(key)=\(redactedValue(key: key, value: value)): \(reason)",
                    brokerCode: result == RD_KAFKA_CONF_UNKNOWN ? "CONF_UNKNOWN" : "CONF_INVALID", brokerReason: reason
                )
            }
        }
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(opaque).toOpaque())
        rd_kafka_conf_set_log_cb(conf, kafkaLog)
        configure(conf)
        guard let pointer = rd_kafka_new(type, conf, &errorText, errorText.count) else {
            // On failure librdkafka leaves the configuration to the caller.
            rd_kafka_conf_destroy(conf)
            let reason = String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw MessagingError(.connectionFailed, "librdkafka could not create a client: \(reason)", brokerReason: reason, isRetriable: false)
        }
        return RdKafkaHandle(pointer, opaque: opaque)
    }

    /// A property value fit for an error message: secrets become `***`.
    static func redactedValue(key: String, value: String) -> String {
        let lowered = key.lowercased()
        let secret = ["password", "secret", "sasl.oauthbearer.config", ".pem", "key.pem", "token"].contains { lowered.contains($0) }
        return secret ? "***" : value
    }

    /// The version of the librdkafka loaded at run time (not the headers compiled against).
    static var runtimeVersion: String { String(cString: rd_kafka_version_str()) }
}
