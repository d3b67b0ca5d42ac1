import CRabbitMQ
import Jadugar

/// A failure on an AMQP connection, before it becomes a ``MessagingError`` with the operation's words.
///
/// - `channel`: the broker closed one channel (`channel.close` with a reply code); the connection lives on.
/// - `connection`: the broker closed the connection (`connection.close`), or it broke.
/// - `library`: rabbitmq-c failed (socket error, timeout, TLS), which leaves the connection unusable.
struct AMQPFailure: Error, Sendable, CustomStringConvertible {
    enum Scope: Sendable { case channel, connection, library }

    var scope: Scope
    /// The AMQP reply code (`404`), or rabbitmq-c's status for library failures.
    var code: Int
    /// The broker's reply text, or rabbitmq-c's description.
    var text: String

    /// Whether the connection is gone.
    var isConnectionFatal: Bool { scope != .channel }

    var description: String { "\(Self.codeName(code, scope: scope)) \(text)" }

    /// The broker's symbolic name for a reply code (`NOT_FOUND`), or `AMQP_STATUS_<n>` for library failures.
    static func codeName(_ code: Int, scope: Scope) -> String {
        if scope == .library { return libraryCodeName(code) }
        switch code {
        case 200: return "REPLY_SUCCESS"
        case 311: return "CONTENT_TOO_LARGE"
        case 312: return "NO_ROUTE"
        case 313: return "NO_CONSUMERS"
        case 320: return "CONNECTION_FORCED"
        case 402: return "INVALID_PATH"
        case 403: return "ACCESS_REFUSED"
        case 404: return "NOT_FOUND"
        case 405: return "RESOURCE_LOCKED"
        case 406: return "PRECONDITION_FAILED"
        case 501: return "FRAME_ERROR"
        case 502: return "SYNTAX_ERROR"
        case 503: return "COMMAND_INVALID"
        case 504: return "CHANNEL_ERROR"
        case 505: return "UNEXPECTED_FRAME"
        case 506: return "RESOURCE_ERROR"
        case 530: return "NOT_ALLOWED"
        case 540: return "NOT_IMPLEMENTED"
        case 541: return "INTERNAL_ERROR"
        default: return "AMQP_\(code)"
        }
    }

    private static func libraryCodeName(_ code: Int) -> String {
        switch Int32(code) {
        case AMQP_STATUS_SOCKET_ERROR.rawValue: return "SOCKET_ERROR"
        case AMQP_STATUS_CONNECTION_CLOSED.rawValue: return "CONNECTION_CLOSED"
        case AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue: return "HEARTBEAT_TIMEOUT"
        case AMQP_STATUS_TIMEOUT.rawValue: return "TIMEOUT"
        case AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED.rawValue: return "HOSTNAME_RESOLUTION_FAILED"
        case AMQP_STATUS_SSL_ERROR.rawValue: return "SSL_ERROR"
        case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue: return "SSL_HOSTNAME_VERIFY_FAILED"
        case AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue: return "SSL_PEER_VERIFY_FAILED"
        case AMQP_STATUS_SSL_CONNECTION_FAILED.rawValue: return "SSL_CONNECTION_FAILED"
        default: return "AMQP_STATUS_\(code)"
        }
    }

    /// A library failure with rabbitmq-c's description of `status`.
    static func library(_ status: Int32, _ context: String = "") -> AMQPFailure {
        let text = String(cString: amqp_error_string2(status))
        return AMQPFailure(scope: .library, code: Int(status), text: context.isEmpty ? text : "\(context): \(text)")
    }

    /// The failure as the public error, with what was being done.
    ///
    /// Reply codes map to codes callers branch on: `403`/`405` → ``MessagingError/Code/accessDenied``,
    /// `404` → ``MessagingError/Code/notFound``, `406` on a declare → ``MessagingError/Code/alreadyExists``,
    /// `311` → ``MessagingError/Code/payloadTooLarge``, lost connections → ``MessagingError/Code/connectionFailed``
    /// (retriable); the broker's own name and text stay in `brokerCode`/`brokerReason`.
    func messagingError(_ what: String, declaring: Bool = false) -> MessagingError {
        let name = Self.codeName(code, scope: scope)
        switch scope {
        case .library:
            let tlsFailure = [AMQP_STATUS_SSL_ERROR, AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED, AMQP_STATUS_SSL_PEER_VERIFY_FAILED, AMQP_STATUS_SSL_CONNECTION_FAILED]
                .contains { Int($0.rawValue) == code }
            return MessagingError(
                .connectionFailed, "\(what) failed: \(text)", brokerCode: name, brokerReason: text,
                isRetriable: !tlsFailure
            )
        case .connection, .channel:
            let messagingCode: MessagingError.Code
            var retriable: Bool?
            switch code {
            case 403: messagingCode = scope == .connection && what.contains("log in") ? .authenticationFailed : .accessDenied
            case 405: messagingCode = .accessDenied
            case 404: messagingCode = .notFound
            case 406: messagingCode = declaring ? .alreadyExists : .brokerError
            case 311: messagingCode = .payloadTooLarge
            case 320, 541, 506:
                messagingCode = scope == .connection ? .connectionFailed : .brokerError
                retriable = true
            default: messagingCode = scope == .connection ? .connectionFailed : .brokerError
            }
            return MessagingError(messagingCode, "\(what) failed: the broker said \(name) \(text)", brokerCode: name, brokerReason: text, isRetriable: retriable)
        }
    }
}

/// AMQP method numbers (class id << 16 | method id) that the adapter reads; rabbitmq-c defines
/// them as macros with casts, which Swift does not import.
enum AMQPMethod {
    static let connectionClose: UInt32 = 0x000A_0032
    static let connectionCloseOK: UInt32 = 0x000A_0033
    static let connectionBlocked: UInt32 = 0x000A_003C
    static let connectionUnblocked: UInt32 = 0x000A_003D
    static let channelClose: UInt32 = 0x0014_0028
    static let channelCloseOK: UInt32 = 0x0014_0029
    static let basicCancel: UInt32 = 0x003C_001E
    static let basicCancelOK: UInt32 = 0x003C_001F
    static let basicReturn: UInt32 = 0x003C_0032
    static let basicDeliver: UInt32 = 0x003C_003C
    static let basicGetOK: UInt32 = 0x003C_0047
    static let basicGetEmpty: UInt32 = 0x003C_0048
    static let basicAck: UInt32 = 0x003C_0050
    static let basicNack: UInt32 = 0x003C_0078
}
