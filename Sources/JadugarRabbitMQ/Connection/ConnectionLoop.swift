import CRabbitMQ
import Jadugar
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The control connection of a ``RabbitMQBroker``: one rabbitmq-c connection owned by one thread,
/// which runs everything but publishing: topology operations, consumers, `basic.get`, settlements.
///
/// Swift tasks hand it work as jobs (``perform(_:)`` waits for the result, ``send(_:)`` does not);
/// the thread runs the jobs in order, reads frames (deliveries, cancel notifications, channel and
/// connection closes), sends heartbeats, and sleeps in `poll` on the socket and an eventfd that
/// ``send(_:)`` signals. When the connection is lost it reconnects with backoff and recovers what
/// this client declared (exchanges, queues, bindings) and its consumers.
///
/// `@unchecked Sendable`: every stored property below the `// Thread-confined` mark is read and
/// written only on the loop's own thread (inside jobs or the run loop). What other threads touch
/// is immutable, a `Mutex`, an `Atomic`, or the eventfd (a kernel object).
final class ConnectionLoop: @unchecked Sendable {
    typealias Job = @Sendable (ConnectionLoop) -> Void

    private struct Inbox {
        var jobs: [Job] = []
        var sleeping = false
        var stopping = false
        var finished = false
        var finishWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// What a channel of this connection is used for.
    enum ChannelUse: Equatable {
        case control
        case getter(String)
        case consumer(UInt64)
        case user(UInt64)
    }

    let settings: AMQPConnectionSettings
    let reconnectPolicy: RabbitMQReconnectPolicy
    /// Identifies the broker and vhost, for ``DeadLetterRegistry``.
    let brokerKey: String
    let events: EventBroadcaster
    let logger: Logger
    private let inbox = Mutex(Inbox())
    private let wakeDescriptor: Int32
    private let linkUp = Atomic<Bool>(false)
    private let versionBox = Mutex<String?>(nil)

    // Thread-confined: only the loop's thread reads or writes what follows.
    private(set) var connection: AMQPConnection?
    private(set) var generation: UInt64 = 0
    private var channelUse: [UInt16: ChannelUse] = [:]
    private var nextChannelID: UInt16 = 1
    private var controlChannel: UInt16?
    var getters: [String: GetterLedger] = [:]
    var consumers: [UInt64: ConsumerSource] = [:]
    var consumerChannels: [UInt64: UInt16] = [:]
    private var consumerOrder: [UInt64] = []
    var topology = TopologyRecord()
    var delayQueues: [String: ContinuousClock.Instant] = [:]
    var delayQueuesByOrigin: [String: Set<String>] = [:]
    private var reconnectAt: ContinuousClock.Instant?
    private var reconnectAttempt = 0
    private var everConnected = false
    private var frame = amqp_frame_t()

    init(settings: AMQPConnectionSettings, reconnect: RabbitMQReconnectPolicy, brokerKey: String, events: EventBroadcaster, logger: Logger) throws {
        self.settings = settings
        self.reconnectPolicy = reconnect
        self.brokerKey = brokerKey
        self.events = events
        self.logger = logger
        let descriptor = jadugar_wakeup_create()
        guard descriptor >= 0 else {
            throw MessagingError(.connectionFailed, "could not create the wake-up descriptor of the RabbitMQ connection thread (errno \(errno))")
        }
        self.wakeDescriptor = descriptor
    }

    deinit {
        #if canImport(Glibc)
        _ = Glibc.close(wakeDescriptor)
        #elseif canImport(Musl)
        _ = Musl.close(wakeDescriptor)
        #endif
    }

    /// Whether the connection is up now (false while reconnecting).
    var isLinkUp: Bool { linkUp.load(ordering: .acquiring) }

    /// The server's product and version, from the last successful connect.
    var serverVersion: String? { versionBox.withLock { $0 } }

    // MARK: Lifecycle

    /// Starts the thread. Call once.
    func start() {
        LoopThread.spawn(name: "jadugar-amqp") { [self] in
            self.run()
        }
    }

    /// Opens the connection (the first time; later losses reconnect by themselves).
    func connect() async throws {
        try await perform { loop in try loop.openLink() }
    }

    /// Ends every consumer, closes the connection politely and stops the thread; waits until it has.
    func stop() async {
        let accepted = enqueue { loop in loop.shutdownNow() }
        guard accepted else { return await waitUntilFinished() }
        await waitUntilFinished()
    }

    private func waitUntilFinished() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = inbox.withLock { inbox -> Bool in
                if inbox.finished { return true }
                inbox.finishWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: Jobs

    /// Runs `body` on the loop's thread and returns its result.
    ///
    /// - Throws: What `body` throws, or ``MessagingError/Code/notConnected`` when the loop has stopped.
    func perform<T: Sendable>(_ body: @escaping @Sendable (ConnectionLoop) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = enqueue { loop in
                continuation.resume(with: Result { try body(loop) })
            }
            if !accepted {
                continuation.resume(throwing: MessagingError(.notConnected, "the RabbitMQ client is disconnected; call connect() first"))
            }
        }
    }

    /// Queues `job` without waiting for it; returns `false` when the loop has stopped.
    @discardableResult
    func send(_ job: @escaping Job) -> Bool {
        enqueue(job)
    }

    private func enqueue(_ job: @escaping Job) -> Bool {
        let (accepted, wake) = inbox.withLock { inbox -> (Bool, Bool) in
            if inbox.stopping || inbox.finished { return (false, false) }
            inbox.jobs.append(job)
            if inbox.sleeping {
                inbox.sleeping = false
                return (true, true)
            }
            return (true, false)
        }
        if wake { jadugar_wakeup_signal(wakeDescriptor) }
        return accepted
    }

    // MARK: The run loop

    private func run() {
        while true {
            let (jobs, stopping) = inbox.withLock { inbox -> ([Job], Bool) in
                defer { inbox.jobs.removeAll(keepingCapacity: true) }
                return (inbox.jobs, inbox.stopping)
            }
            if jobs.count > 1, let connection, connection.isOpen {
                // Many jobs are mostly acknowledgements: let their frames leave in few packets. A
                // job that waits for a reply uncorks first (AMQPConnection.cork()).
                connection.cork()
                for job in jobs { job(self) }
                connection.uncork()
            } else {
                for job in jobs { job(self) }
            }
            if stopping && jobs.isEmpty { break }
            if let connection, connection.isOpen { pumpFrames(connection) }
            reconnectIfDue()
            connection?.releaseBuffers()
            let timeout = nextTimeout()
            if timeout != 0 { sleep(milliseconds: timeout) }
        }
        // Jobs that raced with the stop run now and fail: the connection is gone.
        let late = inbox.withLock { inbox -> [Job] in
            inbox.finished = true
            defer { inbox.jobs.removeAll() }
            return inbox.jobs
        }
        for job in late { job(self) }
        let waiters = inbox.withLock { inbox in
            defer { inbox.finishWaiters.removeAll() }
            return inbox.finishWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Milliseconds to sleep: 0 when input is waiting, half a heartbeat when connected, until the
    /// next reconnect attempt when disconnected, -1 (until woken) when idle.
    private func nextTimeout() -> Int32 {
        if let connection, connection.isOpen {
            if connection.hasBufferedInput { return 0 }
            let heartbeat = connection.heartbeatSeconds
            return heartbeat > 0 ? Int32(max(200, heartbeat * 500)) : 5000
        }
        if let reconnectAt {
            let wait = reconnectAt - ContinuousClock.now
            if wait <= .zero { return 0 }
            return Int32(clamping: max(1, wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000))
        }
        return -1
    }

    private func sleep(milliseconds timeout: Int32) {
        let goToSleep = inbox.withLock { inbox -> Bool in
            if !inbox.jobs.isEmpty || inbox.stopping { return false }
            inbox.sleeping = true
            return true
        }
        guard goToSleep else { return }
        let socket = (connection?.isOpen ?? false) ? connection!.socketDescriptor : -1
        let ready = jadugar_wait_readable(socket, wakeDescriptor, timeout)
        if ready > 0, ready & 2 != 0 { jadugar_wakeup_drain(wakeDescriptor) }
        inbox.withLock { $0.sleeping = false }
    }

    // MARK: The link

    private func openLink() throws {
        if let connection, connection.isOpen { return }
        let connection = try AMQPConnection.open(settings)
        self.connection = connection
        generation += 1
        everConnected = true
        reconnectAt = nil
        reconnectAttempt = 0
        versionBox.withLock { $0 = connection.serverVersion }
        linkUp.store(true, ordering: .releasing)
        events.emit(BrokerEvent(kind: .connected, broker: "rabbitmq", detail: "\(settings.redactedTarget) (\(connection.serverVersion ?? "unknown version"))"))
        logger.debug("connected", metadata: [RabbitMQLogKey.broker: "rabbitmq", RabbitMQLogKey.endpoint: "\(connection.endpoint)"])
    }

    /// The connection failed: drop it, detach consumers (the broker redelivers what they held),
    /// and schedule a reconnect.
    func linkLost(_ failure: AMQPFailure) {
        guard let connection else { return }
        connection.markBroken()
        self.connection = nil
        linkUp.store(false, ordering: .releasing)
        controlChannel = nil
        channelUse.removeAll()
        consumerChannels.removeAll()
        for getter in getters.values { getter.invalidate() }
        getters.removeAll()
        for consumer in consumers.values { consumer.detach() }
        let stopping = inbox.withLock { $0.stopping }
        events.emit(BrokerEvent(kind: .disconnected, broker: "rabbitmq", detail: "\(settings.redactedTarget): \(failure)"))
        logger.warning("connection lost", metadata: [RabbitMQLogKey.broker: "rabbitmq", RabbitMQLogKey.error: "\(failure)"])
        if reconnectPolicy.enabled && !stopping {
            reconnectAttempt = 1
            reconnectAt = ContinuousClock.now + reconnectPolicy.delay(forAttempt: 1)
            events.emit(BrokerEvent(kind: .reconnecting, broker: "rabbitmq", detail: "attempt 1 in \(reconnectPolicy.delay(forAttempt: 1))"))
        } else {
            let error = failure.messagingError("the connection to \(settings.redactedTarget)")
            for consumer in consumers.values { consumer.end(failure: error) }
            consumers.removeAll()
            consumerOrder.removeAll()
        }
    }

    private func reconnectIfDue() {
        guard connection == nil, let at = reconnectAt, ContinuousClock.now >= at else { return }
        if inbox.withLock({ $0.stopping }) { return }
        do {
            let connection = try AMQPConnection.open(settings)
            self.connection = connection
            generation += 1
            reconnectAt = nil
            let attempts = reconnectAttempt
            reconnectAttempt = 0
            versionBox.withLock { $0 = connection.serverVersion }
            recover()
            guard self.connection != nil else { return }
            linkUp.store(true, ordering: .releasing)
            events.emit(BrokerEvent(kind: .connected, broker: "rabbitmq", detail: "reconnected to \(settings.redactedTarget) after \(attempts) attempt(s); recovered \(topology.exchanges.count) exchanges, \(topology.queues.count) queues, \(topology.bindings.count) bindings, \(consumers.count) consumers"))
            logger.info("reconnected", metadata: [RabbitMQLogKey.broker: "rabbitmq", RabbitMQLogKey.attempt: "\(attempts)"])
        } catch {
            reconnectAttempt += 1
            let delay = reconnectPolicy.delay(forAttempt: reconnectAttempt)
            reconnectAt = ContinuousClock.now + delay
            events.emit(BrokerEvent(kind: .reconnecting, broker: "rabbitmq", detail: "attempt \(reconnectAttempt) in \(delay): \(error)"))
        }
    }

    /// Declares again what this client declared and restarts its consumers, on a fresh connection.
    private func recover() {
        for exchange in topology.orderedExchanges {
            recoverStep("exchange '\(exchange.name)'") { connection, channel throws(AMQPFailure) in
                try connection.declareExchange(channel: channel, name: exchange.name, type: exchange.type, passive: false, durable: exchange.durable, autoDelete: exchange.autoDelete, arguments: exchange.arguments)
            }
            if connection == nil { return }
        }
        for queue in topology.orderedQueues {
            // An exclusive queue of the old connection lingers until the broker has cleaned it up.
            for attempt in 0..<30 {
                let failure = recoverStep("queue '\(queue.name)'") { connection, channel throws(AMQPFailure) in
                    _ = try connection.declareQueue(channel: channel, name: queue.name, passive: false, durable: queue.durable, exclusive: queue.exclusive, autoDelete: queue.autoDelete, arguments: queue.arguments)
                }
                if connection == nil { return }
                guard let failure, failure.code == 405, attempt < 29 else { break }
                usleep(100_000)
            }
        }
        for binding in topology.bindings {
            recoverStep("binding of '\(binding.queue)' to '\(binding.exchange)'") { connection, channel throws(AMQPFailure) in
                try connection.bindQueue(channel: channel, queue: binding.queue, exchange: binding.exchange, routingKey: binding.routingKey, arguments: binding.arguments)
            }
            if connection == nil { return }
        }
        for id in consumerOrder {
            guard let consumer = consumers[id], !consumer.isClosed else { continue }
            do {
                try startConsumer(consumer)
            } catch {
                if connection == nil { return }
                consumer.end(failure: error)
                removeConsumer(id)
                events.emit(BrokerEvent(kind: .error, broker: "rabbitmq", detail: "consumer of '\(consumer.queue)' could not be restarted after the reconnect: \(error)"))
            }
        }
    }

    @discardableResult
    private func recoverStep(_ what: String, _ body: (AMQPConnection, UInt16) throws(AMQPFailure) -> Void) -> AMQPFailure? {
        do {
            _ = try withControl("recovering \(what)") { connection, channel throws(AMQPFailure) in try body(connection, channel) }
            return nil
        } catch {
            if connection != nil {
                events.emit(BrokerEvent(kind: .error, broker: "rabbitmq", detail: "recovering \(what) after the reconnect failed: \(error)"))
            }
            return lastControlFailure
        }
    }

    private func shutdownNow() {
        inbox.withLock { $0.stopping = true }
        for consumer in consumers.values { consumer.end(failure: nil) }
        consumers.removeAll()
        consumerOrder.removeAll()
        for getter in getters.values { getter.invalidate() }
        getters.removeAll()
        reconnectAt = nil
        linkUp.store(false, ordering: .releasing)
        if let connection {
            connection.close()
            self.connection = nil
        }
        channelUse.removeAll()
        controlChannel = nil
    }

    /// The error for an operation while there is no connection.
    func linkDownError(_ what: String) -> MessagingError {
        if reconnectAt != nil {
            return MessagingError(.connectionFailed, "cannot \(what): the connection to \(settings.redactedTarget) was lost; reconnecting (attempt \(reconnectAttempt))", isRetriable: true)
        }
        if everConnected, !inbox.withLock({ $0.stopping }) {
            return MessagingError(.connectionFailed, "cannot \(what): the connection to \(settings.redactedTarget) was lost", isRetriable: reconnectPolicy.enabled)
        }
        return MessagingError(.notConnected, "cannot \(what): the RabbitMQ client is not connected; call connect() first")
    }

    // MARK: Channels

    /// The last failure ``withControl(_:declaring:_:)`` saw, for callers that branch on the reply code.
    private(set) var lastControlFailure: AMQPFailure?

    /// Runs `body` on the control channel (opened on demand), turning failures into ``MessagingError``.
    /// A channel error closes only the control channel (the next call opens a new one); a
    /// connection error starts a reconnect.
    func withControl<T>(_ what: String, declaring: Bool = false, _ body: (AMQPConnection, UInt16) throws(AMQPFailure) -> T) throws(MessagingError) -> T {
        lastControlFailure = nil
        guard let connection, connection.isOpen else { throw linkDownError(what) }
        var channel: UInt16 = 0
        do {
            if let controlChannel {
                channel = controlChannel
            } else {
                channel = try openChannel(connection, use: .control)
                controlChannel = channel
            }
            return try body(connection, channel)
        } catch {
            lastControlFailure = error
            handle(error, on: channel)
            if channel == controlChannel, error.scope == .channel { controlChannel = nil }
            throw error.messagingError(what, declaring: declaring)
        }
    }

    /// Forgets a channel the broker closed, or starts a reconnect when the connection failed.
    func handle(_ failure: AMQPFailure, on channel: UInt16) {
        if failure.scope == .channel {
            if channel != 0 { channelUse.removeValue(forKey: channel) }
        } else {
            linkLost(failure)
        }
    }

    /// Opens a channel with a number not used recently, so that frames still queued for a closed
    /// channel can never reach its successor.
    func openChannel(_ connection: AMQPConnection, use: ChannelUse) throws(AMQPFailure) -> UInt16 {
        let negotiated = Int(amqp_get_channel_max(connection.state))
        let maximum = UInt16(clamping: negotiated == 0 ? 65535 : negotiated)
        var candidate = nextChannelID
        var tried = 0
        while channelUse[candidate] != nil {
            candidate = candidate >= maximum ? 1 : candidate + 1
            tried += 1
            if tried > Int(maximum) {
                throw AMQPFailure(scope: .channel, code: 504, text: "all \(maximum) channels of the connection are in use")
            }
        }
        nextChannelID = candidate >= maximum ? 1 : candidate + 1
        try connection.openChannel(candidate)
        channelUse[candidate] = use
        return candidate
    }

    /// Closes a channel of ours and forgets it.
    func closeChannel(_ channel: UInt16) {
        guard channelUse.removeValue(forKey: channel) != nil, let connection, connection.isOpen else { return }
        connection.closeChannel(channel)
        if !connection.isOpen {
            linkLost(AMQPFailure(scope: .connection, code: 0, text: "closing channel \(channel) failed"))
        }
    }

    func use(of channel: UInt16) -> ChannelUse? { channelUse[channel] }

    // MARK: Consumers

    /// Registers a consumer and starts it on a new channel.
    func addConsumer(_ consumer: ConsumerSource) throws {
        consumers[consumer.id] = consumer
        consumerOrder.append(consumer.id)
        do {
            try startConsumer(consumer)
        } catch {
            removeConsumer(consumer.id)
            throw error
        }
    }

    /// `basic.qos` and `basic.consume` on a channel of the consumer's own.
    func startConsumer(_ consumer: ConsumerSource) throws(MessagingError) {
        guard let connection, connection.isOpen else { throw linkDownError("consume queue '\(consumer.queue)'") }
        var channel: UInt16 = 0
        do {
            channel = try openChannel(connection, use: .consumer(consumer.id))
            if !consumer.autoAck { try connection.qos(channel: channel, prefetch: consumer.prefetch) }
            _ = try connection.consume(channel: channel, queue: consumer.queue, tag: consumer.tag, noAck: consumer.autoAck)
        } catch {
            handle(error, on: channel)
            throw error.messagingError("consuming queue '\(consumer.queue)'")
        }
        consumerChannels[consumer.id] = channel
        consumer.attach(channel: channel, generation: generation)
    }

    func removeConsumer(_ id: UInt64) {
        consumers.removeValue(forKey: id)
        consumerOrder.removeAll { $0 == id }
        consumerChannels.removeValue(forKey: id)
    }

    /// Cancels a consumer by closing its channel; the broker requeues what it had not acknowledged.
    func stopConsumer(_ id: UInt64) async {
        _ = try? await perform { loop in
            let channel = loop.consumerChannels[id]
            let queue = loop.consumers[id]?.queue
            loop.removeConsumer(id)
            if let channel { loop.closeChannel(channel) }
            // The broker deletes an auto-delete queue with its last consumer: stop recovering it.
            if let queue, loop.topology.queues[queue]?.autoDelete == true, !loop.consumers.values.contains(where: { $0.queue == queue }) {
                loop.topology.forget(queue: queue)
                DeadLetterRegistry.forget(broker: loop.brokerKey, queue: queue)
            }
        }
    }

    // MARK: Frames

    /// Reads and handles what the broker sent, a bounded number of frames per turn so that jobs keep running.
    private func pumpFrames(_ connection: AMQPConnection) {
        for _ in 0..<512 {
            do {
                guard try connection.readFrame(into: &frame) else { return }
            } catch {
                linkLost(error)
                return
            }
            handleFrame()
            guard self.connection === connection, connection.isOpen else { return }
        }
    }

    private func handleFrame() {
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else {
            // Heartbeats, and content of deliveries to a channel already closed: nothing to do.
            return
        }
        let channel = frame.channel
        let method = frame.payload.method
        switch method.id {
        case AMQPMethod.basicDeliver:
            guard let decoded = method.decoded else { return }
            let deliver = decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            let tag = deliver.delivery_tag, redelivered = deliver.redelivered != 0
            let exchange = String(amqpBytes: deliver.exchange), routingKey = String(amqpBytes: deliver.routing_key)
            guard case .consumer(let id)? = channelUse[channel], let consumer = consumers[id], let connection else {
                // A delivery to a channel being closed: the broker requeues it. Its content frames are skipped.
                return
            }
            do {
                let (properties, body) = try connection.readContent(channel: channel)
                consumer.deliver(RawDelivery(generation: generation, brokerTag: tag, redelivered: redelivered, exchange: exchange, routingKey: routingKey, properties: properties, body: body))
            } catch {
                handle(error, on: channel)
                if error.scope == .channel { consumerChannelClosed(channel, error) }
            }
        case AMQPMethod.basicCancel:
            // consumer_cancel_notify: the queue was deleted (or the node holding it went away).
            guard case .consumer(let id)? = channelUse[channel], let consumer = consumers[id] else { return }
            removeConsumer(id)
            closeChannel(channel)
            consumer.end(failure: nil)
            events.emit(BrokerEvent(kind: .error, broker: "rabbitmq", detail: "the broker cancelled the consumer of queue '\(consumer.queue)' (queue deleted?)"))
        case AMQPMethod.channelClose:
            guard let decoded = method.decoded, let connection else { return }
            let close = decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let failure = AMQPFailure(scope: .channel, code: Int(close.reply_code), text: String(amqpBytes: close.reply_text))
            connection.sendChannelCloseOK(channel)
            if channel == controlChannel { controlChannel = nil }
            let use = channelUse.removeValue(forKey: channel)
            if case .consumer? = use { consumerChannelClosed(channel, failure) }
            if case .getter(let queue)? = use {
                getters.removeValue(forKey: queue)?.invalidate()
            }
            if !connection.isOpen { linkLost(failure) }
        case AMQPMethod.connectionClose:
            guard let decoded = method.decoded, let connection else { return }
            let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            let failure = AMQPFailure(scope: .connection, code: Int(close.reply_code), text: String(amqpBytes: close.reply_text))
            connection.sendConnectionCloseOK()
            linkLost(failure)
        case AMQPMethod.connectionBlocked:
            events.emit(BrokerEvent(kind: .blocked, broker: "rabbitmq", detail: "the broker blocked the control connection"))
        case AMQPMethod.connectionUnblocked:
            events.emit(BrokerEvent(kind: .unblocked, broker: "rabbitmq", detail: "the broker unblocked the control connection"))
        default:
            break
        }
    }

    /// The broker closed a consumer's channel (a settlement it refused, for instance): that
    /// consumer ends with the broker's reason; its unsettled messages go back to the queue.
    private func consumerChannelClosed(_ channel: UInt16, _ failure: AMQPFailure) {
        guard let (id, _) = consumerChannels.first(where: { $0.value == channel }), let consumer = consumers[id] else { return }
        removeConsumer(id)
        consumer.detach()
        consumer.end(failure: failure.messagingError("consuming queue '\(consumer.queue)'"))
    }
}
