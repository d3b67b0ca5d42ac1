import CRabbitMQ
import Jadugar
import JadugarPublisher
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the publisher's I/O thread is asked to do.
enum PublisherCommand: Sendable {
    /// Open the connection now (the broker's `connect()` waits for it).
    case connect
    /// Publish a message.
    case publish(OutgoingMessage)
}

/// The publisher connection: a ``BatchSink`` that owns its own rabbitmq-c connection with one
/// channel in confirm mode, on the batcher's I/O thread.
///
/// `write` publishes a whole batch back to back (one `basic.publish` per message, no round trip),
/// takes each message's completion, and reads whatever confirms have arrived; `idle` keeps reading
/// confirms while any are outstanding. Confirms resolve completions in order: a `basic.ack`
/// (usually `multiple`) succeeds them, a `basic.nack` fails them, and a `basic.return` seen before
/// the ack of a mandatory message fails it as unroutable. A lost connection fails what is
/// outstanding (retriable) and the next write reconnects, after the reconnect policy's delay.
struct PublisherSink: BatchSink {
    typealias Item = PublisherCommand

    private struct Pending {
        var tag: UInt64
        var completion: BatchCompletion?
        /// Set when the broker returned the message (mandatory, no route) before confirming it.
        var returned: MessagingError?
        var mandatoryID: String?
    }

    private let settings: AMQPConnectionSettings
    private let confirms: Bool
    private let reconnect: RabbitMQReconnectPolicy
    private let shutdownTimeout: Duration
    private let events: EventBroadcaster
    private let logger: Logger
    private let arena = CArena(minimumChunk: 16 << 10)
    /// Plain TCP: a burst's frames are encoded here and written with one `send`. TLS goes through
    /// rabbitmq-c's `amqp_basic_publish`, which writes through its SSL socket.
    private let frames: FrameBuffer?
    private let flushTimeoutMilliseconds: Int32
    private var frame = amqp_frame_t()

    private var connection: AMQPConnection?
    private var channel: UInt16 = 1
    private var nextChannel: UInt16 = 1
    private var auxiliaryChannel: UInt16?
    private var lastTag: UInt64 = 0
    private var pending: [Pending] = []
    private var pendingHead = 0
    private var mandatoryTags: [String: [UInt64]] = [:]
    private var knownExchanges: Set<String> = [""]
    private var attempts = 0
    private var nextAttempt: ContinuousClock.Instant?
    private var connectedOnce = false

    /// How long an idle I/O thread waits on the socket for confirms before it looks for new submits.
    static let confirmWaitMilliseconds: Int32 = 1

    init(settings: AMQPConnectionSettings, confirms: Bool, reconnect: RabbitMQReconnectPolicy, shutdownTimeout: Duration, events: EventBroadcaster, logger: Logger) {
        self.settings = settings
        self.confirms = confirms
        self.reconnect = reconnect
        self.shutdownTimeout = shutdownTimeout
        self.events = events
        self.logger = logger
        self.frames = settings.tls == nil ? FrameBuffer() : nil
        self.flushTimeoutMilliseconds = Int32(clamping: AMQPEnvelope.milliseconds(rounding: settings.operationTimeout))
    }

    /// Bursts larger than this are written in parts.
    private static let flushThreshold = 1 << 20

    private var outstanding: Int { pending.count - pendingHead }

    // MARK: BatchSink

    mutating func write(_ batch: inout Batch<PublisherCommand>) throws {
        // Notice a close the broker sent while we were idle before writing into a dead connection
        // (with confirms outstanding, the read after the write below does it).
        if let connection, connection.isOpen, outstanding == 0 { readFrames(connection) }
        let connection = try connected()
        // One burst: the kernel sends the batch's frames in as few packets as it can, instead of
        // one per message, which costs both this thread and the broker far less.
        if batch.count > 1, frames == nil { connection.cork() }
        defer { connection.uncork() }
        for index in 0..<batch.count {
            guard case .publish(let message) = batch[index] else {
                batch.succeed(at: index)
                continue
            }
            if !knownExchanges.contains(message.exchange) {
                // The check is a rabbitmq-c round trip: what is buffered goes out first.
                do {
                    try flushFrames(connection)
                } catch {
                    failRest(of: &batch, from: index, lost(error, while: "publishing"))
                    return
                }
                if let error = checkExchange(message.exchange, on: connection) {
                    batch.fail(at: index, with: error)
                    continue
                }
                guard connection.isOpen else {
                    failRest(of: &batch, from: index, connectionLost())
                    return
                }
            }
            do {
                try publish(message, on: connection)
            } catch {
                guard connection.isOpen else {
                    failRest(of: &batch, from: index, lost(error, while: "publishing to exchange '\(message.exchange)'"))
                    return
                }
                // The message itself could not be encoded; the connection is fine.
                batch.fail(at: index, with: error.messagingError("publishing message \(message.messageID)"))
                continue
            }
            if confirms {
                lastTag += 1
                let id = message.mandatory ? message.messageID : nil
                if let id { mandatoryTags[id, default: []].append(lastTag) }
                pending.append(Pending(tag: lastTag, completion: batch.takeCompletion(at: index), returned: nil, mandatoryID: id))
            }
        }
        do {
            try flushFrames(connection)
        } catch {
            _ = lost(error, while: "publishing")
            return
        }
        connection.uncork()
        if confirms, outstanding > 0 { readFrames(connection) }
    }

    private func flushFrames(_ connection: AMQPConnection) throws(AMQPFailure) {
        guard let frames, !frames.isEmpty else { return }
        do {
            try frames.flush(to: connection.socketDescriptor, timeoutMilliseconds: flushTimeoutMilliseconds)
        } catch {
            connection.markBroken()
            throw error
        }
    }

    mutating func idle() -> Duration? {
        guard let connection, connection.isOpen else { return nil }
        readFrames(connection)
        guard self.connection != nil else { return nil }
        if outstanding > 0 {
            // Confirms outstanding: sleep in `poll` on the socket until some arrive, at most
            // `confirmWait`, then come back at once so that new submits are written at least that
            // often. The wait must really sleep: rabbitmq-c's own timed read rounds a sub-millisecond
            // wait down to a zero `poll`, which made this thread spin while the broker was slow and
            // starved the broker and every other thread on a 2-core machine.
            if !connection.hasBufferedInput {
                _ = jadugar_wait_socket(connection.socketDescriptor, Self.confirmWaitMilliseconds)
            }
            readFrames(connection)
            return self.connection == nil ? nil : .zero
        }
        // Wake up for heartbeats (rabbitmq-c sends them while reading).
        let heartbeat = connection.heartbeatSeconds
        return heartbeat > 0 ? .milliseconds(heartbeat * 500) : nil
    }

    mutating func close() {
        if let connection, connection.isOpen, outstanding > 0 {
            let deadline = ContinuousClock.now + shutdownTimeout
            while outstanding > 0, self.connection != nil, ContinuousClock.now < deadline {
                readFrames(connection, firstWaitMicroseconds: 10_000)
            }
        }
        failAllPending(MessagingError(.closed, "the RabbitMQ client disconnected before the broker confirmed the message; it may or may not have been stored", isRetriable: true))
        connection?.close()
        connection = nil
    }

    // MARK: Connection

    private mutating func connected() throws -> AMQPConnection {
        if let connection, connection.isOpen { return connection }
        if connection != nil { _ = connectionLost() }
        if connectedOnce, !reconnect.enabled {
            throw MessagingError(.connectionFailed, "the publisher connection to \(settings.redactedTarget) was lost and reconnecting is disabled", isRetriable: false)
        }
        // Everything buffered needs the connection: wait out the backoff here rather than fail
        // each publish at once, so that publishers slow down while the broker is away.
        if let nextAttempt {
            let wait = nextAttempt - .now
            if wait > .zero { usleep(UInt32(clamping: AMQPEnvelope.milliseconds(rounding: wait) * 1000)) }
        }
        do {
            let connection = try AMQPConnection.open(settings)
            channel = nextChannel
            nextChannel = nextChannel >= 2000 ? 1 : nextChannel + 1
            do {
                try connection.openChannel(channel)
                if confirms { try connection.confirmSelect(channel: channel) }
            } catch {
                throw error.messagingError("opening the publisher channel")
            }
            self.connection = connection
            lastTag = 0
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
            mandatoryTags.removeAll()
            knownExchanges = [""]
            auxiliaryChannel = nil
            if connectedOnce {
                events.emit(BrokerEvent(kind: .connected, broker: "rabbitmq", detail: "publisher reconnected to \(settings.redactedTarget)"))
            }
            attempts = 0
            nextAttempt = nil
            connectedOnce = true
            return connection
        } catch let error as MessagingError {
            attempts += 1
            if connectedOnce { nextAttempt = .now + reconnect.delay(forAttempt: attempts) }
            throw error
        }
    }

    /// Fails everything outstanding after the connection broke; returns the error used.
    @discardableResult
    private mutating func connectionLost(_ reason: String = "the connection broke") -> MessagingError {
        let error = MessagingError(
            .connectionFailed,
            "the publisher connection to \(settings.redactedTarget) was lost (\(reason)) before the broker confirmed the message; publish it again",
            isRetriable: true
        )
        connection?.markBroken()
        frames?.discard()
        if connection != nil {
            events.emit(BrokerEvent(kind: .disconnected, broker: "rabbitmq", detail: "publisher: \(reason)"))
            logger.warning("publisher connection lost", metadata: [RabbitMQLogKey.broker: "rabbitmq", RabbitMQLogKey.error: "\(reason)"])
        }
        connection = nil
        attempts = max(attempts, 1)
        nextAttempt = .now + reconnect.delay(forAttempt: attempts)
        failAllPending(error)
        return error
    }

    private mutating func lost(_ failure: AMQPFailure, while what: String) -> MessagingError {
        connectionLost("\(what): \(failure)")
    }

    private func failRest(of batch: inout Batch<PublisherCommand>, from index: Int, _ error: MessagingError) {
        for rest in index..<batch.count where !batch.isResolved(at: rest) {
            batch.fail(at: rest, with: error)
        }
    }

    // MARK: Publishing

    private func publish(_ message: OutgoingMessage, on connection: AMQPConnection) throws(AMQPFailure) {
        arena.reset()
        var properties = message.properties.makeC(in: arena)
        let exchange = arena.bytes(message.exchange)
        let routingKey = arena.bytes(message.routingKey)
        if let frames {
            let frameMax = Int(amqp_get_frame_max(connection.state))
            let channel = self.channel
            let failure = message.body.withUnsafeBytes { body -> AMQPFailure? in
                do throws(AMQPFailure) {
                    try frames.appendPublish(
                        channel: channel, exchange: exchange, routingKey: routingKey, mandatory: message.mandatory,
                        properties: &properties, body: body, frameMax: frameMax
                    )
                    return nil
                } catch {
                    return error
                }
            }
            if let failure { throw failure }
            if frames.count >= Self.flushThreshold { try flushFrames(connection) }
            return
        }
        let status = message.body.withUnsafeBytes { body in
            amqp_basic_publish(
                connection.state, channel, exchange, routingKey, message.mandatory ? 1 : 0, 0, &properties,
                amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress))
            )
        }
        try connection.checkSend(status)
    }

    /// A passive declare on a side channel, so that a publish to a missing exchange fails on its
    /// own instead of closing the confirm channel under every message in flight.
    private mutating func checkExchange(_ name: String, on connection: AMQPConnection) -> MessagingError? {
        do {
            if auxiliaryChannel == nil {
                let candidate = nextChannel
                nextChannel = nextChannel >= 2000 ? 1 : nextChannel + 1
                try connection.openChannel(candidate)
                auxiliaryChannel = candidate
            }
            guard let auxiliaryChannel else { return nil }
            try connection.declareExchange(channel: auxiliaryChannel, name: name, type: "topic", passive: true, durable: false, autoDelete: false, arguments: [])
            knownExchanges.insert(name)
            return nil
        } catch {
            if error.scope == .channel {
                auxiliaryChannel = nil
                return error.messagingError("publishing to exchange '\(name)'")
            }
            return connectionLost("checking exchange '\(name)': \(error)")
        }
    }

    // MARK: Confirms

    /// Reads every frame available now (waiting up to `firstWaitMicroseconds` for the first).
    private mutating func readFrames(_ connection: AMQPConnection, firstWaitMicroseconds: Int = 0) {
        var wait = firstWaitMicroseconds
        while self.connection === connection {
            do {
                guard try connection.readFrame(into: &frame, timeoutMicroseconds: wait) else { break }
            } catch {
                _ = lost(error, while: "reading confirms")
                return
            }
            wait = 0
            handleFrame(connection)
        }
        connection.releaseBuffers()
    }

    private mutating func handleFrame(_ connection: AMQPConnection) {
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD), let decoded = frame.payload.method.decoded else { return }
        switch frame.payload.method.id {
        case AMQPMethod.basicAck:
            let ack = decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            resolve(upTo: ack.delivery_tag, multiple: ack.multiple != 0, nackReason: nil)
        case AMQPMethod.basicNack:
            let nack = decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            let error = MessagingError(
                .queueFull,
                "the broker refused the message (basic.nack): a queue it routes to is full with overflow reject-publish, or could not store it",
                brokerCode: "NACK", brokerReason: "basic.nack for delivery tag \(nack.delivery_tag)"
            )
            resolve(upTo: nack.delivery_tag, multiple: nack.multiple != 0, nackReason: error)
        case AMQPMethod.basicReturn:
            let returned = decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let code = Int(returned.reply_code)
            let text = String(amqpBytes: returned.reply_text)
            let exchange = String(amqpBytes: returned.exchange), routingKey = String(amqpBytes: returned.routing_key)
            let channel = frame.channel
            do {
                let (properties, _) = try connection.readContent(channel: channel)
                markReturned(id: properties.messageID, error: MessagingError(
                    .unroutable, "no queue is bound for topic '\(routingKey)' at exchange '\(exchange)' (mandatory publish returned)",
                    brokerCode: AMQPFailure.codeName(code, scope: .channel), brokerReason: text
                ))
            } catch {
                handleChannelFailure(error, channel: channel)
            }
        case AMQPMethod.channelClose:
            let close = decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let failure = AMQPFailure(scope: .channel, code: Int(close.reply_code), text: String(amqpBytes: close.reply_text))
            connection.sendChannelCloseOK(frame.channel)
            handleChannelFailure(failure, channel: frame.channel)
        case AMQPMethod.connectionClose:
            let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            let failure = AMQPFailure(scope: .connection, code: Int(close.reply_code), text: String(amqpBytes: close.reply_text))
            connection.sendConnectionCloseOK()
            _ = lost(failure, while: "publishing")
        case AMQPMethod.connectionBlocked:
            events.emit(BrokerEvent(kind: .blocked, broker: "rabbitmq", detail: "the broker blocked publishing (resource alarm); publishes wait"))
        case AMQPMethod.connectionUnblocked:
            events.emit(BrokerEvent(kind: .unblocked, broker: "rabbitmq", detail: "the broker accepts publishes again"))
        default:
            break
        }
    }

    /// The broker closed a channel: the side channel is simply forgotten; the confirm channel
    /// takes every unconfirmed message with it, so they fail with the broker's reason, and a new
    /// confirm channel replaces it.
    private mutating func handleChannelFailure(_ failure: AMQPFailure, channel: UInt16) {
        guard failure.scope == .channel else {
            _ = lost(failure, while: "publishing")
            return
        }
        if channel == auxiliaryChannel {
            auxiliaryChannel = nil
            return
        }
        guard channel == self.channel, let connection else { return }
        failAllPending(failure.messagingError("publishing"))
        knownExchanges = [""]
        let replacement = nextChannel
        nextChannel = nextChannel >= 2000 ? 1 : nextChannel + 1
        do {
            try connection.openChannel(replacement)
            if confirms { try connection.confirmSelect(channel: replacement) }
            self.channel = replacement
            lastTag = 0
        } catch {
            _ = lost(error, while: "reopening the publisher channel")
        }
    }

    private mutating func markReturned(id: String?, error: MessagingError) {
        guard let id, var tags = mandatoryTags[id], !tags.isEmpty else { return }
        let tag = tags.removeFirst()
        if tags.isEmpty { mandatoryTags.removeValue(forKey: id) } else { mandatoryTags[id] = tags }
        guard pendingHead < pending.count else { return }
        let index = pendingHead + Int(tag - pending[pendingHead].tag)
        if index >= pendingHead, index < pending.count, pending[index].tag == tag {
            pending[index].returned = error
            pending[index].mandatoryID = nil
        }
    }

    private mutating func resolve(upTo tag: UInt64, multiple: Bool, nackReason: MessagingError?) {
        guard pendingHead < pending.count else { return }
        let first = pending[pendingHead].tag
        if multiple {
            while pendingHead < pending.count, pending[pendingHead].tag <= tag {
                complete(pendingHead, nackReason)
                pendingHead += 1
            }
        } else if tag >= first {
            let index = pendingHead + Int(tag - first)
            if index < pending.count { complete(index, nackReason) }
            while pendingHead < pending.count, pending[pendingHead].completion == nil { pendingHead += 1 }
        }
        if pendingHead == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
        } else if pendingHead >= 4096, pendingHead * 2 >= pending.count {
            pending.removeFirst(pendingHead)
            pendingHead = 0
        }
    }

    private mutating func complete(_ index: Int, _ nackReason: MessagingError?) {
        guard let completion = pending[index].completion else { return }
        pending[index].completion = nil
        if let id = pending[index].mandatoryID {
            // Confirmed without a return: forget the id.
            if var tags = mandatoryTags[id] {
                tags.removeAll { $0 == pending[index].tag }
                if tags.isEmpty { mandatoryTags.removeValue(forKey: id) } else { mandatoryTags[id] = tags }
            }
        }
        if let returned = pending[index].returned {
            completion.fail(returned)
        } else if let nackReason {
            completion.fail(nackReason)
        } else {
            completion.succeed()
        }
    }

    private mutating func failAllPending(_ error: MessagingError) {
        for index in pendingHead..<pending.count {
            if let completion = pending[index].completion {
                pending[index].completion = nil
                completion.fail(error)
            }
        }
        pending.removeAll(keepingCapacity: true)
        pendingHead = 0
        mandatoryTags.removeAll()
    }
}
