import Jadugar
import Synchronization

/// An AMQP channel of one's own on a ``RabbitMQBroker``'s control connection.
///
/// AMQP closes a channel on any channel error (declaring a queue with other settings, binding to
/// a missing exchange ...). The broker's own operations recover from that by opening a new
/// channel; a `RabbitMQChannel` shows it instead: after an error it is closed for good
/// (``isOpen`` is `false`, ``closeReason`` says why) and later calls fail with
/// ``MessagingError/Code/closed``. Open a new one with ``RabbitMQBroker/createChannel()``.
///
/// ```swift
/// let channel = try await broker.createChannel()
/// do {
///     try await channel.assertQueue("jobs", options: RabbitMQQueueOptions(maxLength: 10))
/// } catch let error as MessagingError where error.brokerCode == "PRECONDITION_FAILED" {
///     // the channel is closed now; open another
/// }
/// ```
///
/// - Important: A channel does not survive a reconnect; declarations made through it do (they are
///   recorded like the broker's own).
public final class RabbitMQChannel: Sendable {
    /// The channel number on the connection.
    public let number: UInt16
    private let generation: UInt64
    private let loop: ConnectionLoop
    private let state = Mutex<(open: Bool, reason: MessagingError?)>((true, nil))

    init(number: UInt16, generation: UInt64, loop: ConnectionLoop) {
        self.number = number
        self.generation = generation
        self.loop = loop
    }

    /// Whether the channel can still be used.
    public var isOpen: Bool { state.withLock { $0.open } }

    /// The error that closed the channel, when the broker closed it.
    public var closeReason: MessagingError? { state.withLock { $0.reason } }

    /// Declares an exchange on this channel.
    ///
    /// ```swift
    /// try await channel.assertExchange("audit", options: ExchangeOptions(type: .fanout))
    /// ```
    public func assertExchange(_ name: String, options: ExchangeOptions = .default) async throws {
        try TopicPattern.validateName(name, kind: "exchange name")
        let declaration = ExchangeDeclaration(name: name, type: options.type.name, durable: options.durable, autoDelete: options.autoDelete, arguments: [])
        try await run("declaring exchange '\(name)'", declaring: true) { connection, channel throws(AMQPFailure) in
            try connection.declareExchange(channel: channel, name: name, type: declaration.type, passive: false, durable: declaration.durable, autoDelete: declaration.autoDelete, arguments: [])
        } record: { loop in
            loop.topology.record(declaration)
        }
    }

    /// Declares a queue on this channel.
    ///
    /// ```swift
    /// let state = try await channel.assertQueue("jobs")
    /// ```
    @discardableResult
    public func assertQueue(_ name: String, options: RabbitMQQueueOptions = RabbitMQQueueOptions()) async throws -> RabbitMQQueueState {
        if !name.isEmpty { try TopicPattern.validateName(name, kind: "queue name") }
        try options.validate(name: name)
        let arguments = options.amqpArguments
        let ok = try await run("declaring queue '\(name)'", declaring: true) { connection, channel throws(AMQPFailure) in
            try connection.declareQueue(channel: channel, name: name, passive: false, durable: options.durable, exclusive: options.exclusive, autoDelete: options.autoDelete, arguments: arguments)
        } record: { _ in }
        let declaration = QueueDeclaration(name: ok.queue, durable: options.durable, exclusive: options.exclusive, autoDelete: options.autoDelete, arguments: arguments, deadLetter: options.deadLetterTarget)
        try? await loop.perform { loop in
            loop.topology.record(declaration)
            DeadLetterRegistry.record(broker: loop.brokerKey, queue: declaration.name, target: declaration.deadLetter)
        }
        return RabbitMQQueueState(name: ok.queue, messageCount: ok.messageCount, consumerCount: ok.consumerCount)
    }

    /// Binds a queue on this channel.
    ///
    /// ```swift
    /// try await channel.bind(queue: "jobs", exchange: "work", routingKey: "jobs.#")
    /// ```
    public func bind(queue: String, exchange: String, routingKey: String) async throws {
        let binding = BindingDeclaration(queue: queue, exchange: exchange, routingKey: routingKey, arguments: [])
        try await run("binding queue '\(queue)' to exchange '\(exchange)'") { connection, channel throws(AMQPFailure) in
            try connection.bindQueue(channel: channel, queue: queue, exchange: exchange, routingKey: routingKey, arguments: [])
        } record: { loop in
            loop.topology.record(binding)
        }
    }

    /// Removes a binding on this channel.
    ///
    /// ```swift
    /// try await channel.unbind(queue: "jobs", exchange: "work", routingKey: "jobs.#")
    /// ```
    public func unbind(queue: String, exchange: String, routingKey: String) async throws {
        let binding = BindingDeclaration(queue: queue, exchange: exchange, routingKey: routingKey, arguments: [])
        try await run("unbinding queue '\(queue)' from exchange '\(exchange)'") { connection, channel throws(AMQPFailure) in
            try connection.unbindQueue(channel: channel, queue: queue, exchange: exchange, routingKey: routingKey, arguments: [])
        } record: { loop in
            loop.topology.forget(binding: binding)
        }
    }

    /// Deletes a queue on this channel; returns how many messages it held.
    ///
    /// ```swift
    /// try await channel.deleteQueue("jobs")
    /// ```
    @discardableResult
    public func deleteQueue(_ name: String, ifUnused: Bool = false, ifEmpty: Bool = false) async throws -> Int {
        try await run("deleting queue '\(name)'") { connection, channel throws(AMQPFailure) in
            try connection.deleteQueue(channel: channel, name: name, ifUnused: ifUnused, ifEmpty: ifEmpty)
        } record: { loop in
            loop.topology.forget(queue: name)
            DeadLetterRegistry.forget(broker: loop.brokerKey, queue: name)
        }
    }

    /// Deletes an exchange on this channel.
    ///
    /// ```swift
    /// try await channel.deleteExchange("audit")
    /// ```
    public func deleteExchange(_ name: String, ifUnused: Bool = false) async throws {
        try await run("deleting exchange '\(name)'") { connection, channel throws(AMQPFailure) in
            try connection.deleteExchange(channel: channel, name: name, ifUnused: ifUnused)
        } record: { loop in
            loop.topology.forget(exchange: name)
        }
    }

    /// Removes every ready message of a queue on this channel; returns how many.
    ///
    /// ```swift
    /// let purged = try await channel.purgeQueue("jobs")
    /// ```
    public func purgeQueue(_ name: String) async throws -> Int {
        try await run("purging queue '\(name)'") { connection, channel throws(AMQPFailure) in
            try connection.purgeQueue(channel: channel, name: name)
        } record: { _ in }
    }

    /// Closes the channel. Idempotent.
    ///
    /// ```swift
    /// await channel.close()
    /// ```
    public func close() async {
        let wasOpen = state.withLock { state -> Bool in
            defer { state.open = false }
            return state.open
        }
        guard wasOpen else { return }
        let number = self.number, generation = self.generation
        _ = try? await loop.perform { loop in
            guard loop.generation == generation, case .user? = loop.use(of: number) else { return }
            loop.closeChannel(number)
        }
    }

    private func run<T: Sendable>(
        _ what: String,
        declaring: Bool = false,
        _ body: @escaping @Sendable (AMQPConnection, UInt16) throws(AMQPFailure) -> T,
        record: @escaping @Sendable (ConnectionLoop) -> Void
    ) async throws -> T {
        if let reason = state.withLock({ $0.open ? nil : ($0.reason ?? MessagingError(.closed, "the channel was closed")) }) {
            throw MessagingError(.closed, "cannot do \(what): channel \(number) is closed (\(reason.message))", brokerCode: reason.brokerCode, brokerReason: reason.brokerReason)
        }
        let number = self.number, generation = self.generation
        do {
            return try await loop.perform { loop in
                let result = try loop.withUserChannel(number, generation: generation, what: what, declaring: declaring, body)
                record(loop)
                return result
            }
        } catch let failure as ConnectionLoop.UserChannelFailure {
            if failure.channelClosed {
                state.withLock { state in
                    state.open = false
                    if state.reason == nil { state.reason = failure.error }
                }
            }
            throw failure.error
        }
    }
}
