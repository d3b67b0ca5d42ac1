import CHiredis
import Jadugar

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One blocking hiredis connection, with exactly one owner.
///
/// Built by ``open(_:role:connectTimeout:commandTimeout:)``, which connects, logs in (`AUTH`),
/// checks that the peer speaks Redis (`PING`), selects the database and names the client; the
/// context is freed in `deinit`. After an I/O or protocol error the connection is ``isBroken``
/// and every further call fails at once: open a new one.
///
/// - Important: Not `Sendable`. It is created and used by one thread (an I/O thread, a consumer's
///   reader thread, the janitor thread), never on Swift's cooperative pool, because every call
///   blocks until Redis answers or a timeout expires.
final class RedisConnection {
    let endpoint: RedisEndpoint
    private let context: UnsafeMutablePointer<redisContext>
    /// Set after an I/O or protocol error; hiredis cannot use the context any more.
    private(set) var isBroken = false
    /// The kernel socket, for ``RedisSocket/shutdown()`` from another thread.
    let socket: RedisSocket
    /// What the connection is for, in its `CLIENT SETNAME`.
    let role: String

    private init(endpoint: RedisEndpoint, context: UnsafeMutablePointer<redisContext>, role: String) {
        self.endpoint = endpoint
        self.context = context
        self.role = role
        self.socket = RedisSocket(fd: jadugar_redis_fd(context))
    }

    deinit {
        redisFree(context)
    }

    /// Connects and logs in.
    ///
    /// - Throws: ``MessagingError``: `connectionFailed` when the server cannot be reached within
    ///   `connectTimeout` or does not speak Redis; `authenticationFailed` when it refuses the
    ///   credentials (or wants some); `brokerError` when the database cannot be selected.
    static func open(_ endpoint: RedisEndpoint, role: String, connectTimeout: Duration, commandTimeout: Duration) throws -> RedisConnection {
        guard let context = redisConnectWithTimeout(endpoint.host, Int32(endpoint.port), timeval(connectTimeout)) else {
            throw MessagingError(.connectionFailed, "cannot connect to Redis at \(endpoint.address): hiredis could not allocate a context", isRetriable: true)
        }
        if context.pointee.err != 0 {
            let detail = String(cString: jadugar_redis_errstr(context))
            redisFree(context)
            let timedOut = detail.lowercased().contains("timed out") || detail.contains("temporarily unavailable")
            throw MessagingError(
                .connectionFailed,
                timedOut
                    ? "cannot connect to Redis at \(endpoint.address): no answer within \(connectTimeout)"
                    : "cannot connect to Redis at \(endpoint.address): \(detail)",
                brokerReason: detail, isRetriable: true
            )
        }
        // From here on `connection` owns the context and frees it if the handshake fails.
        let connection = RedisConnection(endpoint: endpoint, context: context, role: role)
        _ = redisEnableKeepAlive(context)
        connection.setTimeout(connectTimeout)
        try connection.handshake(connectTimeout: connectTimeout)
        connection.setTimeout(commandTimeout)
        return connection
    }

    private func handshake(connectTimeout: Duration) throws {
        let doing = "logging in to Redis at \(endpoint.address)"
        if let password = endpoint.password {
            var auth = RedisCommand("AUTH")
            if let user = endpoint.user { auth.append(user) }
            auth.append(password)
            if case .error(let text) = try handshakeCommand(auth, connectTimeout: connectTimeout) {
                let code = String(text.prefix { $0 != " " })
                throw MessagingError(
                    .authenticationFailed,
                    "Redis at \(endpoint.address) refused the credentials\(endpoint.user.map { " of user '\($0)'" } ?? ""): \(text)",
                    brokerCode: code, brokerReason: text, isRetriable: false
                )
            }
        }
        switch try handshakeCommand(RedisCommand("PING"), connectTimeout: connectTimeout) {
        case .status("PONG"), .string(Array("PONG".utf8)):
            break
        case .error(let text):
            throw RedisErrors.reply(text, while: doing)
        case let other:
            throw MessagingError(.connectionFailed, "the server at \(endpoint.address) answered PING with \(other); it does not look like Redis", isRetriable: false)
        }
        if endpoint.database != 0, case .error(let text) = try command(RedisCommand("SELECT", String(endpoint.database))) {
            throw MessagingError(.brokerError, "cannot select database \(endpoint.database) on Redis at \(endpoint.address): \(text)", brokerCode: String(text.prefix { $0 != " " }), brokerReason: text)
        }
        _ = try? command(RedisCommand("CLIENT", "SETNAME", role))
    }

    /// A command during the handshake, where a silent or garbled peer means "not Redis".
    private func handshakeCommand(_ command: RedisCommand, connectTimeout: Duration) throws -> RedisValue {
        do {
            return try self.command(command)
        } catch let error as MessagingError {
            let detail = error.brokerReason ?? error.message
            if context.pointee.err == REDIS_ERR_PROTOCOL {
                throw MessagingError(.connectionFailed, "the server at \(endpoint.address) does not speak the Redis protocol (\(detail)); check the port", brokerReason: detail, isRetriable: false)
            }
            if detail.contains("temporarily unavailable") || detail.lowercased().contains("timed out") {
                throw MessagingError(.connectionFailed, "the server at \(endpoint.address) did not answer \(command.summary.prefix(4)) within \(connectTimeout); is it a Redis server?", brokerReason: detail, isRetriable: true)
            }
            if context.pointee.err == REDIS_ERR_EOF || detail.contains("closed") {
                throw MessagingError(.connectionFailed, "the server at \(endpoint.address) closed the connection during the handshake (\(detail)); is it a Redis server?", brokerReason: detail, isRetriable: true)
            }
            throw error
        }
    }

    /// Sets the socket's read and write timeouts; zero means none (block until an answer).
    func setTimeout(_ duration: Duration) {
        _ = redisSetTimeout(context, timeval(duration))
    }

    /// Sends one command and waits for its reply. Error replies are returned, not thrown.
    ///
    /// - Throws: ``MessagingError/Code/connectionFailed`` when the connection broke or a timeout expired.
    func command(_ command: RedisCommand) throws -> RedisValue {
        try append(command)
        return try readReply()
    }

    /// Calls the adapter's function library, loading it first if Redis does not know it (never
    /// loaded, or `FUNCTION FLUSH`). Error replies are returned, not thrown.
    func script(_ command: RedisCommand) throws -> RedisValue {
        let reply = try self.command(command)
        if case .error(let text) = reply, RedisScript.isMissing(text) {
            try loadScript()
            return try self.command(command)
        }
        return reply
    }

    /// Loads the adapter's function library (a library of the same name is kept as it is).
    func loadScript() throws {
        if case .error(let text) = try command(RedisScript.load), !RedisScript.isAlreadyLoaded(text) {
            throw RedisErrors.reply(text, while: "loading the adapter's function library into Redis at \(endpoint.address)")
        }
    }

    /// Queues a command in the output buffer (a pipeline); ``readReply()`` flushes and reads.
    func append(_ command: RedisCommand) throws {
        guard !isBroken else { throw RedisErrors.connectionLost(endpoint, "the connection broke earlier") }
        let status = command.withArgv { argc, argv, argvlen in
            redisAppendCommandArgv(context, argc, argv, argvlen)
        }
        if status != REDIS_OK { throw brokenError() }
    }

    /// Queues bytes that are already RESP (a command, or a part of one: the caller reads one
    /// reply per complete command).
    func appendFormatted(_ bytes: [UInt8]) throws {
        guard !isBroken else { throw RedisErrors.connectionLost(endpoint, "the connection broke earlier") }
        let status = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
        }
        if status != REDIS_OK { throw brokenError() }
    }

    /// Writes the queued commands to the socket without waiting for replies, so that Redis works
    /// on them while the caller does something else.
    func flush() throws {
        guard !isBroken else { throw RedisErrors.connectionLost(endpoint, "the connection broke earlier") }
        var done: Int32 = 0
        while done == 0 {
            if redisBufferWrite(context, &done) != REDIS_OK { throw brokenError() }
        }
    }

    /// Reads the next reply of the pipeline, flushing queued commands first.
    func readReply() throws -> RedisValue {
        guard !isBroken else { throw RedisErrors.connectionLost(endpoint, "the connection broke earlier") }
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
            throw brokenError()
        }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        return Self.value(of: reply)
    }

    private func brokenError() -> MessagingError {
        isBroken = true
        var detail = String(cString: jadugar_redis_errstr(context))
        if detail.isEmpty { detail = "unknown hiredis error \(context.pointee.err)" }
        if context.pointee.err == REDIS_ERR_EOF { detail = "the server closed the connection" }
        return RedisErrors.connectionLost(endpoint, detail)
    }

    private static func value(of reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            return .string(bytes(node.str, node.len))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(node.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(node.elements)
            for index in 0..<node.elements {
                if let element = jadugar_redis_element(reply, index) {
                    elements.append(value(of: element))
                } else {
                    elements.append(.null)
                }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

/// A connection's kernel socket, shareable with other threads only to shut it down.
struct RedisSocket: Sendable {
    let fd: Int32

    /// Makes a thread blocked reading this socket return with an error; the owner then sees the
    /// connection broken. Used to stop a pub/sub reader, whose read has no timeout.
    func shutdown() {
        if fd >= 0 { _ = jadugar_redis_shutdown_socket(fd) }
    }
}

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let clamped = max(seconds, 0)
        self.init(tv_sec: Int(clamped), tv_usec: clamped == 0 && seconds < 0 ? 0 : Int(attoseconds / 1_000_000_000_000))
    }
}
