import CoreMetrics
import Metrics
import Foundation
import Logging
import Synchronization

/// The entry point: one broker connection with publish, subscribe, queue operations, health and events.
///
/// ```swift
/// let manager = try MessageManager(options: MessageOptions(url: "memory://"))
/// try await manager.connect()
/// let subscription = try await manager.subscribe("user.*", options: SubscribeOptions(group: "mailer")) { message in
///     print("user event:", message.payloadString ?? "")
/// }
/// try await manager.publish("user.created", Message(string: #"{"id":1}"#))
/// ```
public final class MessageManager: Sendable {
    /// The broker this manager talks to.
    public let broker: any MessageBroker
    /// The settings.
    public let options: MessageOptions
    private let declaredQueues = Mutex<Set<String>>([])
    private let listeners = Mutex<[ObjectIdentifier: EventListener]>([:])

    /// Creates a manager for the broker its URL names.
    ///
    /// - Throws: ``MessagingError`` with ``MessagingError/Code/invalidURL`` or ``MessagingError/Code/unsupportedScheme``.
    public convenience init(options: MessageOptions) throws {
        try self.init(broker: BrokerRegistry.makeBroker(url: options.url), options: options)
    }

    /// Creates a manager for a broker you built.
    public init(broker: any MessageBroker, options: MessageOptions = MessageOptions()) {
        self.broker = broker
        self.options = options
    }

    private var logger: Logger { options.logger }

    // MARK: Connection

    /// Connects to the broker.
    public func connect() async throws {
        try await broker.connect()
        logger.debug("connected", metadata: [LogKey.broker: "\(broker.name)"])
    }

    /// Disconnects: subscriptions stop and their unsettled messages are redelivered.
    public func disconnect() async throws {
        for listener in listeners.withLock({ state in defer { state.removeAll() }; return Array(state.values) }) {
            listener.cancel()
        }
        try await broker.disconnect()
    }

    /// Checks the broker with a round trip.
    public func healthCheck() async -> HealthStatus {
        await broker.healthCheck()
    }

    // MARK: Publishing

    /// Publishes a message on a topic and returns when the broker has accepted it.
    ///
    /// ```swift
    /// try await manager.publish("orders.created", Message(json: order), options: PublishOptions(priority: 5))
    /// ```
    ///
    /// - Throws: ``MessagingError``: ``MessagingError/Code/invalidTopic``, ``MessagingError/Code/payloadTooLarge``,
    ///   ``MessagingError/Code/notConnected``, or the broker's refusal.
    public func publish(_ topic: String, _ message: Message, options: PublishOptions = .default) async throws {
        var message = message
        message.topic = topic
        try await publish(message, options: options)
    }

    /// Publishes a message on its own ``Message/topic``.
    ///
    /// The current trace context goes into the message's headers (see ``MessageTracing``), and the
    /// publish is counted and timed in ``MessagingMetrics``.
    public func publish(_ message: Message, options: PublishOptions = .default) async throws {
        try TopicPattern.validateTopic(message.topic)
        try checkPayload(message)
        var options = options
        if options.exchange == nil { options.exchange = self.options.exchange }
        let broker = self.broker
        let dimensions = [("broker", broker.name), ("topic", message.topic)]
        let start = ContinuousClock.now
        var traced = message
        do {
            try await MessageTracing.producing(&traced, broker: broker.name) { message in
                guard let retry = options.retry else {
                    try await broker.publish(message, options: options)
                    return
                }
                let frozen = options
                try await RetryHandler(policy: retry).retry(RetryContext(name: "publish")) {
                    try await broker.publish(message, options: frozen)
                }
            }
        } catch {
            let code = (error as? MessagingError)?.code.description ?? "other"
            MessagingMetrics.counter(MessagingMetrics.Name.publishErrors, dimensions + [("code", code)]).increment()
            throw error
        }
        MessagingMetrics.counter(MessagingMetrics.Name.published, dimensions).increment()
        MessagingMetrics.timer(MessagingMetrics.Name.publishDuration, dimensions).record(duration: ContinuousClock.now - start)
    }

    private func checkPayload(_ message: Message) throws {
        let limit = options.maxPayloadBytes ?? broker.capabilities.maxPayloadBytes
        if message.payload.count > limit {
            throw MessagingError(.payloadTooLarge, "the payload of message \(message.id) is \(message.payload.count) bytes; the limit is \(limit)")
        }
    }

    // MARK: Subscribing

    /// Subscribes a handler to a topic pattern (`*` one word, `#` zero or more).
    ///
    /// Each delivery is acknowledged when the handler returns. When it throws, the message is
    /// retried per ``SubscribeOptions/retry`` (or ``MessageOptions/retry``) and then dead-lettered
    /// with the error as reason.
    ///
    /// - Throws: ``MessagingError/Code/invalidPattern``, ``MessagingError/Code/invalidArgument`` for options out of range, or the broker's refusal.
    public func subscribe(_ pattern: String, options: SubscribeOptions = .default, handler: @escaping MessageHandler) async throws -> Subscription {
        _ = try TopicPattern(pattern)
        let options = resolved(options)
        try options.validate()
        let stream = try await broker.subscribe(pattern, options: options)
        let subscription = Subscription(pattern: pattern, stream: stream, options: options, logger: logger, broker: broker.name, handler: handler)
        subscription.start()
        return subscription
    }

    /// Consumes a queue directly with a handler, with the same settlement rules as ``subscribe(_:options:handler:)``.
    public func consume(queue: String, options: SubscribeOptions = .default, handler: @escaping MessageHandler) async throws -> Subscription {
        try await consume(queue: queue, options: options, gate: PauseGate(), handler: handler)
    }

    func consume(queue: String, options: SubscribeOptions, gate: PauseGate, handler: @escaping MessageHandler) async throws -> Subscription {
        let options = resolved(options)
        try options.validate()
        let stream = try await broker.consume(queue: queue, options: ConsumeOptions(prefetch: options.prefetch, autoAck: options.autoAck))
        let subscription = Subscription(pattern: queue, stream: stream, options: options, logger: logger, broker: broker.name, gate: gate, handler: handler)
        subscription.start()
        return subscription
    }

    private func resolved(_ options: SubscribeOptions) -> SubscribeOptions {
        var options = options
        if options.retry == nil { options.retry = self.options.retry }
        if options.deadLetter == nil { options.deadLetter = self.options.deadLetter }
        if options.exchange == nil { options.exchange = self.options.exchange }
        return options
    }

    // MARK: Queues

    /// Puts a message straight into a queue, declaring the queue (with a `<queue>.dlq` dead-letter queue) on first use.
    ///
    /// ```swift
    /// try await manager.enqueue("emails", Message(json: email))
    /// ```
    public func enqueue(_ queue: String, _ message: Message, options: EnqueueOptions = EnqueueOptions()) async throws {
        try TopicPattern.validateName(queue, kind: "queue name")
        try checkPayload(message)
        try await declareQueue(queue, options: options.queue)
        var message = message
        if let priority = options.priority { message.metadata.priority = priority }
        if let expiration = options.expiration {
            if expiration <= .zero { throw MessagingError(.invalidArgument, "expiration must be positive, got \(expiration)") }
            message.metadata.expiration = expiration
        }
        message.metadata.headers.merge(options.headers) { _, new in new }
        try await broker.send(message, toQueue: queue, options: PublishOptions(persistent: options.persistent))
    }

    /// Puts a message into the default queue (``MessageOptions/queue``).
    public func enqueue(_ message: Message, options: EnqueueOptions = EnqueueOptions()) async throws {
        try await enqueue(try defaultQueue(), message, options: options)
    }

    /// Takes one message from a queue and acknowledges it; `nil` when the queue stays empty.
    /// Declares the queue (as ``enqueue(_:_:options:)`` does) when it does not exist yet.
    ///
    /// - Important: The message is acknowledged on receipt (at-most-once). For manual settlement use
    ///   ``MessageBroker/get(queue:)`` and the ``Delivery`` it returns.
    public func dequeue(_ queue: String, options: DequeueOptions = DequeueOptions()) async throws -> Message? {
        if let wait = options.wait, wait < .zero {
            throw MessagingError(.invalidArgument, "dequeue wait must not be negative, got \(wait)")
        }
        try TopicPattern.validateName(queue, kind: "queue name")
        let deadline = ContinuousClock.now + (options.wait ?? .zero)
        var pause = Duration.milliseconds(1)
        while true {
            let next: Delivery?
            do {
                next = try await broker.get(queue: queue)
            } catch let error as MessagingError where error.code == .notFound {
                // A queue nobody declared yet is empty; declare it so waiting makes sense.
                try await declareQueue(queue, options: nil)
                next = nil
            }
            if let delivery = next {
                try await delivery.ack()
                return delivery.message
            }
            if ContinuousClock.now >= deadline { return nil }
            // Polling is the only portable way: AMQP's basic.get and Redis's XREADGROUP without BLOCK both return at once.
            try await Task.sleep(for: min(pause, deadline - ContinuousClock.now))
            pause = min(pause * 2, .milliseconds(50))
        }
    }

    /// Takes one message from the default queue.
    public func dequeue(options: DequeueOptions = DequeueOptions()) async throws -> Message? {
        try await dequeue(try defaultQueue(), options: options)
    }

    private func defaultQueue() throws -> String {
        guard let queue = options.queue else {
            throw MessagingError(.invalidArgument, "no queue named and MessageOptions.queue is not set")
        }
        return queue
    }

    /// Declares a queue and its dead-letter queue once per manager.
    func declareQueue(_ queue: String, options: QueueOptions?) async throws {
        if declaredQueues.withLock({ $0.contains(queue) }) { return }
        var queueOptions = options ?? QueueOptions()
        if queueOptions.deadLetter == nil {
            let deadLetter = "\(queue).dlq"
            try await broker.createQueue(deadLetter, options: QueueOptions())
            queueOptions.deadLetter = .queue(deadLetter)
        }
        try await broker.createQueue(queue, options: queueOptions)
        _ = declaredQueues.withLock { $0.insert(queue) }
    }

    // MARK: Events

    /// A stream of the broker's events.
    public func events() -> AsyncStream<BrokerEvent> {
        broker.events()
    }

    /// Calls `handler` for each event of a kind (every kind when `nil`) until ``off(_:)``.
    ///
    /// ```swift
    /// let listener = manager.on(.disconnected) { event in print(event) }
    /// manager.off(listener)
    /// ```
    @discardableResult
    public func on(_ kind: BrokerEvent.Kind? = nil, handler: @escaping @Sendable (BrokerEvent) async -> Void) -> EventListener {
        let stream = broker.events()
        let listener = EventListener(task: Task {
            for await event in stream where kind == nil || event.kind == kind {
                await handler(event)
            }
        })
        listeners.withLock { $0[ObjectIdentifier(listener)] = listener }
        return listener
    }

    /// Stops a listener registered with ``on(_:handler:)``.
    public func off(_ listener: EventListener) {
        listeners.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(listener)) }
        listener.cancel()
    }
}

/// A registered event handler; pass it to ``MessageManager/off(_:)`` to stop it.
public final class EventListener: Sendable {
    private let task: Task<Void, Never>
    init(task: Task<Void, Never>) { self.task = task }
    func cancel() { task.cancel() }
}
