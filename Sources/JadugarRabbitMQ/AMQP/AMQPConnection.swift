import CRabbitMQ
import Jadugar

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One rabbitmq-c connection: the only owner of an `amqp_connection_state_t`.
///
/// Built by ``open(_:)``, which frees partial state when a step fails; closed and freed in
/// `deinit`. Every method blocks on the network and must run on the thread that owns the
/// connection (the control loop's thread or the publisher's I/O thread), never on Swift's
/// cooperative pool.
///
/// - Important: Not `Sendable`. A connection is created, used and destroyed by one thread.
final class AMQPConnection {
    let state: amqp_connection_state_t
    /// False once the broker closed the connection, the socket failed, or ``close()`` ran.
    private(set) var isOpen = true
    /// `product`, `version`, `cluster_name` ... from `connection.start`.
    let serverProperties: [AMQPTableEntry]
    /// The negotiated heartbeat, in seconds (0: none).
    let heartbeatSeconds: Int
    /// `host:port` of the endpoint that answered.
    let endpoint: String

    private init(state: amqp_connection_state_t, endpoint: String) {
        self.state = state
        self.endpoint = endpoint
        if let table = amqp_get_server_properties(state) {
            serverProperties = AMQPFieldValue.entries(of: table.pointee)
        } else {
            serverProperties = []
        }
        heartbeatSeconds = Int(amqp_get_heartbeat(state))
    }

    deinit {
        close()
        amqp_destroy_connection(state)
    }

    /// The server's version, for health checks: `RabbitMQ 3.10.8`.
    var serverVersion: String? {
        let product = serverProperties[key: "product"]?.string ?? "RabbitMQ"
        guard let version = serverProperties[key: "version"]?.string else { return nil }
        return "\(product) \(version)"
    }

    /// The socket's descriptor, for `poll`.
    var socketDescriptor: Int32 { amqp_get_sockfd(state) }

    /// Whether ``cork()`` holds back partial TCP segments now.
    private var corked = false

    /// Lets a burst of writes that expect no reply (publishes, acks) leave in as few packets as
    /// possible, until ``uncork()``.
    ///
    /// - Important: Everything that waits for the broker's answer uncorks first (``rpc(channel:_:copy:)``,
    ///   `basic.get`, closing, a read that waits): corked, the request would sit in the kernel for
    ///   up to 200 ms before the broker even sees it.
    func cork() {
        guard !corked, isOpen else { return }
        corked = true
        jadugar_tcp_cork(socketDescriptor, 1)
    }

    /// Sends what ``cork()`` held back, now. Cheap when not corked.
    func uncork() {
        guard corked else { return }
        corked = false
        jadugar_tcp_cork(socketDescriptor, 0)
    }

    // MARK: Opening

    /// Opens a connection to the first endpoint that answers and logs in.
    ///
    /// - Throws: ``MessagingError``: ``MessagingError/Code/connectionFailed`` (no endpoint answered,
    ///   TLS failed), ``MessagingError/Code/authenticationFailed`` (credentials refused) or
    ///   ``MessagingError/Code/accessDenied`` (no access to the vhost). Never contains the password.
    static func open(_ settings: AMQPConnectionSettings) throws(MessagingError) -> AMQPConnection {
        var failures: [MessagingError] = []
        for endpoint in settings.endpoints {
            do {
                return try open(settings, endpoint: endpoint)
            } catch {
                // Credentials and TLS problems are the same on every node: stop at once.
                if error.code != .connectionFailed || !error.isRetriable { throw error }
                failures.append(error)
            }
        }
        guard let last = failures.last else {
            throw MessagingError(.invalidArgument, "no RabbitMQ endpoint is configured")
        }
        if failures.count == 1 { throw last }
        throw MessagingError(
            .connectionFailed,
            "no endpoint of \(settings.redactedTarget) answered: " + failures.map(\.message).joined(separator: "; "),
            brokerCode: last.brokerCode, brokerReason: last.brokerReason
        )
    }

    private static func open(_ settings: AMQPConnectionSettings, endpoint: RabbitMQConfiguration.Endpoint) throws(MessagingError) -> AMQPConnection {
        let target = "\(endpoint.host):\(endpoint.port)"
        let what = "connecting to \(settings.tls == nil ? "amqp" : "amqps")://\(target)"
        guard let state = amqp_new_connection() else {
            throw MessagingError(.connectionFailed, "\(what): rabbitmq-c could not allocate a connection")
        }
        var handedOver = false
        defer { if !handedOver { amqp_destroy_connection(state) } }

        let socket: OpaquePointer?
        if let tls = settings.tls {
            socket = amqp_ssl_socket_new(state)
            guard let socket else { throw MessagingError(.connectionFailed, "\(what): rabbitmq-c could not create a TLS socket") }
            try configure(tls, socket: socket, what: what)
        } else {
            socket = amqp_tcp_socket_new(state)
        }
        guard let socket else { throw MessagingError(.connectionFailed, "\(what): rabbitmq-c could not create a socket") }

        var connectTimeout = timeval(settings.connectTimeout)
        let status = amqp_socket_open_noblock(socket, endpoint.host, Int32(endpoint.port), &connectTimeout)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw AMQPFailure.library(status).messagingError(what)
        }
        var handshake = timeval(settings.connectTimeout)
        _ = amqp_set_handshake_timeout(state, &handshake)
        var rpcTimeout = timeval(settings.operationTimeout)
        _ = amqp_set_rpc_timeout(state, &rpcTimeout)

        let arena = CArena()
        var properties = arena.table(clientProperties(settings))
        let external = settings.tls?.useExternalAuthentication ?? false
        let reply = withUnsafePointer(to: &properties) { table in
            if external {
                return jadugar_amqp_login_external(
                    state, settings.virtualHost, Int32(settings.channelMax), Int32(settings.frameMax),
                    Int32(settings.heartbeatSeconds), table, settings.user
                )
            }
            return jadugar_amqp_login_plain(
                state, settings.virtualHost, Int32(settings.channelMax), Int32(settings.frameMax),
                Int32(settings.heartbeatSeconds), table, settings.user, settings.password
            )
        }
        if let failure = loginFailure(reply, state: state) {
            if failure.scope == .connection, failure.code == 403 {
                throw MessagingError(
                    .authenticationFailed,
                    "logging in to \(target) as '\(settings.user)' failed: the broker refused the credentials or access to vhost '\(settings.virtualHost)'",
                    brokerCode: "ACCESS_REFUSED", brokerReason: failure.text
                )
            }
            if failure.scope == .connection, failure.code == 530 {
                throw MessagingError(.accessDenied, "\(what): vhost '\(settings.virtualHost)' is not allowed", brokerCode: "NOT_ALLOWED", brokerReason: failure.text)
            }
            throw failure.messagingError("logging in to \(target)")
        }
        handedOver = true
        return AMQPConnection(state: state, endpoint: target)
    }

    private static func configure(_ tls: RabbitMQTLSConfiguration, socket: OpaquePointer, what: String) throws(MessagingError) {
        amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
        amqp_ssl_socket_set_verify_hostname(socket, tls.verifyPeer && tls.verifyHostname ? 1 : 0)
        if let ca = tls.caCertificatePath {
            let status = amqp_ssl_socket_set_cacert(socket, ca)
            guard status == AMQP_STATUS_OK.rawValue else {
                throw MessagingError(.invalidArgument, "\(what): the CA certificate file '\(ca)' could not be loaded: \(String(cString: amqp_error_string2(status)))")
            }
        }
        if let certificate = tls.clientCertificatePath {
            guard let key = tls.clientKeyPath else {
                throw MessagingError(.invalidArgument, "\(what): a client certificate needs its key (clientKeyPath)")
            }
            let status = amqp_ssl_socket_set_key(socket, certificate, key)
            guard status == AMQP_STATUS_OK.rawValue else {
                throw MessagingError(.invalidArgument, "\(what): the client certificate '\(certificate)' or key '\(key)' could not be loaded: \(String(cString: amqp_error_string2(status)))")
            }
        }
    }

    private static func clientProperties(_ settings: AMQPConnectionSettings) -> [AMQPTableEntry] {
        [
            AMQPTableEntry("product", .string("Jadugar")),
            AMQPTableEntry("connection_name", .string(settings.connectionName)),
            AMQPTableEntry("capabilities", .table([
                AMQPTableEntry("publisher_confirms", .bool(true)),
                AMQPTableEntry("basic.nack", .bool(true)),
                AMQPTableEntry("consumer_cancel_notify", .bool(true)),
                AMQPTableEntry("connection.blocked", .bool(true)),
                AMQPTableEntry("authentication_failure_close", .bool(true)),
                AMQPTableEntry("per_consumer_qos", .bool(true)),
                AMQPTableEntry("exchange_exchange_bindings", .bool(true)),
            ])),
        ]
    }

    private static func loginFailure(_ reply: amqp_rpc_reply_t, state: amqp_connection_state_t) -> AMQPFailure? {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return nil
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == AMQPMethod.connectionClose, let decoded = reply.reply.decoded {
                let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                return AMQPFailure(scope: .connection, code: Int(close.reply_code), text: String(amqpBytes: close.reply_text))
            }
            return AMQPFailure(scope: .connection, code: 0, text: "unexpected method 0x\(String(reply.reply.id, radix: 16)) during login")
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            return AMQPFailure.library(reply.library_error)
        default:
            return AMQPFailure.library(AMQP_STATUS_CONNECTION_CLOSED.rawValue, "the broker closed the socket during login")
        }
    }

    // MARK: Closing

    /// Closes the connection politely (`connection.close`, waiting at most the operation timeout). Idempotent.
    func close() {
        guard isOpen else { return }
        uncork()
        isOpen = false
        _ = amqp_connection_close(state, Int32(AMQP_REPLY_SUCCESS))
    }

    /// Marks the connection dead without talking to the broker (after a socket failure).
    func markBroken() {
        isOpen = false
    }

    // MARK: Replies

    /// Turns an RPC reply into a failure, answering `channel.close`/`connection.close` as AMQP requires.
    func failure(of reply: amqp_rpc_reply_t, channel: UInt16) -> AMQPFailure? {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return nil
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            guard let decoded = reply.reply.decoded else {
                isOpen = false
                return AMQPFailure(scope: .connection, code: 0, text: "the broker replied with an exception without details")
            }
            switch reply.reply.id {
            case AMQPMethod.channelClose:
                let close = decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                let failure = AMQPFailure(scope: .channel, code: Int(close.reply_code), text: String(amqpBytes: close.reply_text))
                sendChannelCloseOK(channel)
                return failure
            case AMQPMethod.connectionClose:
                let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                let failure = AMQPFailure(scope: .connection, code: Int(close.reply_code), text: String(amqpBytes: close.reply_text))
                sendConnectionCloseOK()
                return failure
            default:
                isOpen = false
                return AMQPFailure(scope: .connection, code: 0, text: "unexpected method 0x\(String(reply.reply.id, radix: 16))")
            }
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            isOpen = false
            return AMQPFailure.library(reply.library_error)
        default:
            isOpen = false
            return AMQPFailure.library(AMQP_STATUS_CONNECTION_CLOSED.rawValue, "the broker closed the socket")
        }
    }

    /// The failure of the last RPC, when a rabbitmq-c RPC function returned `NULL`.
    func lastFailure(channel: UInt16) -> AMQPFailure {
        failure(of: amqp_get_rpc_reply(state), channel: channel)
            ?? AMQPFailure(scope: .library, code: 0, text: "rabbitmq-c reported no result and no error")
    }

    /// Runs a rabbitmq-c RPC function and copies what it returned, or throws how it failed.
    func rpc<Reply, Result>(
        channel: UInt16,
        _ call: (amqp_connection_state_t) -> UnsafeMutablePointer<Reply>?,
        copy: (Reply) -> Result
    ) throws(AMQPFailure) -> Result {
        guard isOpen else { throw AMQPFailure(scope: .connection, code: 0, text: "the connection is closed") }
        uncork()
        guard let reply = call(state) else { throw lastFailure(channel: channel) }
        return copy(reply.pointee)
    }

    /// Checks the status of a rabbitmq-c call that writes without waiting (publish, ack).
    func checkSend(_ status: Int32) throws(AMQPFailure) {
        guard status != AMQP_STATUS_OK.rawValue else { return }
        isOpen = false
        throw AMQPFailure.library(status)
    }

    func sendChannelCloseOK(_ channel: UInt16) {
        var ok = amqp_channel_close_ok_t(dummy: 0)
        if amqp_send_method(state, channel, AMQPMethod.channelCloseOK, &ok) != AMQP_STATUS_OK.rawValue {
            isOpen = false
        }
    }

    func sendConnectionCloseOK() {
        var ok = amqp_connection_close_ok_t(dummy: 0)
        _ = amqp_send_method(state, 0, AMQPMethod.connectionCloseOK, &ok)
        isOpen = false
    }

    // MARK: Channels

    /// Opens a channel.
    func openChannel(_ channel: UInt16) throws(AMQPFailure) {
        try rpc(channel: channel, { amqp_channel_open($0, channel) }, copy: { _ in () })
    }

    /// Closes a channel (the broker requeues its unacknowledged deliveries). Failures only matter
    /// when they take the connection with them, which ``isOpen`` then shows.
    func closeChannel(_ channel: UInt16) {
        guard isOpen else { return }
        uncork()
        let reply = amqp_channel_close(state, channel, Int32(AMQP_REPLY_SUCCESS))
        _ = failure(of: reply, channel: channel)
    }

    // MARK: Frames

    /// Reads one frame if one arrives within `timeout` (zero: only what is already there).
    ///
    /// Returns `nil` on timeout. rabbitmq-c sends heartbeats and notices missing ones here, so the
    /// owning thread calls this at least every half heartbeat.
    func readFrame(into frame: inout amqp_frame_t, timeoutMicroseconds: Int = 0) throws(AMQPFailure) -> Bool {
        guard isOpen else { throw AMQPFailure(scope: .connection, code: 0, text: "the connection is closed") }
        if timeoutMicroseconds > 0 { uncork() }
        var timeout = timeval(tv_sec: timeoutMicroseconds / 1_000_000, tv_usec: timeoutMicroseconds % 1_000_000)
        let status = amqp_simple_wait_frame_noblock(state, &frame, &timeout)
        if status == AMQP_STATUS_OK.rawValue { return true }
        if status == AMQP_STATUS_TIMEOUT.rawValue { return false }
        isOpen = false
        throw AMQPFailure.library(status)
    }

    /// Whether frames are already decoded or bytes already read, so a read will not touch the socket.
    var hasBufferedInput: Bool {
        amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0
    }

    /// Reads the content (header and body frames) that follows a `basic.deliver`, `basic.get-ok` or
    /// `basic.return` on `channel`, and copies it out.
    func readContent(channel: UInt16) throws(AMQPFailure) -> (AMQPProperties, [UInt8]) {
        var message = amqp_message_t()
        let reply = amqp_read_message(state, channel, &message, 0)
        // On failure rabbitmq-c has already freed what it allocated for the message.
        if let failure = failure(of: reply, channel: channel) { throw failure }
        defer { amqp_destroy_message(&message) }
        return (AMQPProperties(copying: message.properties), [UInt8](amqpBytes: message.body))
    }

    /// Frees the memory of frames already handled, when rabbitmq-c holds nothing still in use.
    func releaseBuffers() {
        amqp_maybe_release_buffers(state)
    }
}

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let clampedSeconds = max(0, seconds)
        self.init(tv_sec: Int(clampedSeconds), tv_usec: seconds < 0 ? 0 : Int(attoseconds / 1_000_000_000_000))
    }
}
