import CRdKafka
import Jadugar

/// Turns librdkafka's error codes into ``MessagingError``s that keep the broker's code and text.
enum RdKafkaError {
    /// The error for a librdkafka response code, with what was being done.
    static func make(_ err: rd_kafka_resp_err_t, _ what: String, detail: String? = nil, retriable: Bool? = nil) -> MessagingError {
        let name = String(cString: rd_kafka_err2name(err))
        let text = detail ?? String(cString: rd_kafka_err2str(err))
        let code = code(for: err)
        return MessagingError(code, "\(what): \(text)", brokerCode: name, brokerReason: text, isRetriable: retriable ?? isRetriable(err, code: code))
    }

    /// The error an `rd_kafka_error_t` carries; the object is destroyed.
    static func consume(_ error: OpaquePointer, _ what: String) -> MessagingError {
        let err = rd_kafka_error_code(error)
        let text = String(cString: rd_kafka_error_string(error))
        let retriable = rd_kafka_error_is_retriable(error) != 0
        rd_kafka_error_destroy(error)
        return make(err, what, detail: text, retriable: retriable || isRetriable(err, code: code(for: err)))
    }

    static func name(_ err: rd_kafka_resp_err_t) -> String {
        String(cString: rd_kafka_err2name(err))
    }

    private static func code(for err: rd_kafka_resp_err_t) -> MessagingError.Code {
        switch err {
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR__RESOLVE,
            RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
            return .connectionFailed
        case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
            return .timeout
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
            return .notFound
        case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
            return .alreadyExists
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
            return .payloadTooLarge
        case RD_KAFKA_RESP_ERR__AUTHENTICATION, RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
            return .authenticationFailed
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
            return .accessDenied
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
            return .queueFull
        case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE, RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
            return .unsupported
        case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
            return .invalidTopic
        case RD_KAFKA_RESP_ERR__PURGE_QUEUE, RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, RD_KAFKA_RESP_ERR__DESTROY:
            return .closed
        case RD_KAFKA_RESP_ERR__INVALID_ARG:
            return .invalidArgument
        default:
            return .brokerError
        }
    }

    private static func isRetriable(_ err: rd_kafka_resp_err_t, code: MessagingError.Code) -> Bool {
        switch err {
        case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
            RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
            return true
        default:
            return [.connectionFailed, .timeout, .queueFull].contains(code)
        }
    }
}
