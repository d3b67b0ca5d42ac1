import Jadugar
import Logging
import Synchronization

/// A ``MessageBroker`` over RabbitMQ (AMQP 0-9-1), built on rabbitmq-c.
///
/// AMQP's model is Jadugar's: `publish` goes to a durable topic exchange (``defaultExchange``,
/// `"jadugar"` unless configured) with the topic as routing key; `""` is AMQP's own default
/// exchange; groups are durable queues bound to that exchange. Every publish waits for a
/// publisher confirm, batched through the publisher core (many messages in flight, multiple-ack
/// confirms). Consumers have their own channel with `basic.qos` prefetch and manual
/// acknowledgements. Delayed retries go through per-delay TTL queues that dead-letter back into
/// the origin queue; RabbitMQ's `x-death` header is read back into Jadugar's dead-letter headers.
///
/// Each broker object holds two connections: a control connection (topology, consumers,
/// settlements) and a publisher connection, each used by one dedicated thread. Both reconnect
/// with backoff; the control connection then recovers the exchanges, queues and bindings this
/// client declared, and restarts its consumers.
///
/// ```swift
/// let broker = try RabbitMQBroker(url: "amqp://guest:guest@127.0.0.1:5672/%2f")
/// try await broker.connect()
/// let stream = try await broker.subscribe("orders.*", options: SubscribeOptions(group: "billing"))
/// try await broker.publish(Message(topic: "orders.created", string: "{}"), options: .default)
/// for try await delivery in stream {
///     try await delivery.ack()
/// }
/// ```
///
/// - Important: Safe to use from many tasks at once. No rabbitmq-c call runs on Swift's
///   cooperative pool: each connection belongs to one thread, and callers hand it work.
public final class RabbitMQBroker: MessageBroker {
    /// The configuration the broker was created with.
    public let configuration: RabbitMQConfiguration
    /// `"rabbitmq"`, for reports and metrics.
    public let name = "rabbitmq"
    /// Persistence, wildcard routing, groups, priority, TTL, dead letters, redelivery, prefetch,
    /// browsing, max length; delayed redelivery (TTL queues) and reconnect (recovery) are emulated.
    public let capabilities: BrokerCapabilities
    /// The durable topic exchange `publish` and `subscribe` use by default, declared on connect.
    ///
    /// ```swift
    /// try await broker.bind(queue: "audit", exchange: broker.defaultExchange, routingKey: "#")
    /// ```
    public var defaultExchange: String { configuration.defaultExchange }

    let logger: Logger
    let localEvents = EventBroadcaster()
    private let current = Mutex<RabbitMQRuntime?>(nil)
    private let lifecycle = AsyncSerialLock()

    /// Creates a broker client; nothing connects until ``connect()``.
    ///
    /// ```swift
    /// let broker = RabbitMQBroker(configuration: RabbitMQConfiguration(virtualHost: "orders"))
    /// ```
    ///
    /// - Parameters:
    ///   - configuration: Where and how to connect. Default: `guest` at `127.0.0.1:5672`, vhost `/`.
    ///   - logger: Where the adapter logs connection events. Default: a logger that discards everything.
    public init(configuration: RabbitMQConfiguration = RabbitMQConfiguration(), logger: Logger = Logger(label: "jadugar.rabbitmq", factory: { _ in SwiftLogNoOpLogHandler() })) {
        self.configuration = configuration
        self.logger = logger
        capabilities = BrokerCapabilities(
            features: [
                .persistence, .wildcardRouting, .consumerGroups, .priority, .messageTTL, .delayedRedelivery,
                .deadLetter, .redelivery, .prefetch, .browse, .reconnect, .maxLength,
            ],
            emulated: [.delayedRedelivery, .reconnect],
            ordering: .queue,
            maxPayloadBytes: configuration.maxPayloadBytes
        )
    }

    /// Creates a broker client from an `amqp://` or `amqps://` URL (see ``RabbitMQConfiguration/init(url:)-(String)``).
    ///
    /// ```swift
    /// let broker = try RabbitMQBroker(url: "amqps://app:pw@mq.internal/prod?cacertfile=/etc/ca.pem")
    /// ```
    ///
    /// - Throws: ``MessagingError`` with ``MessagingError/Code/invalidURL``; never contains the password.
    public convenience init(url: String, logger: Logger = Logger(label: "jadugar.rabbitmq", factory: { _ in SwiftLogNoOpLogHandler() })) throws {
        try self.init(configuration: RabbitMQConfiguration(url: url), logger: logger)
    }

    /// Creates a broker client from a parsed URL.
    public convenience init(url: BrokerURL, logger: Logger = Logger(label: "jadugar.rabbitmq", factory: { _ in SwiftLogNoOpLogHandler() })) throws {
        try self.init(configuration: RabbitMQConfiguration(url: url), logger: logger)
    }

    /// Registers the `amqp` and `amqps` schemes with ``BrokerRegistry``.
    ///
    /// ```swift
    /// RabbitMQBroker.register()
    /// let broker = try BrokerRegistry.makeBroker(url: "amqp://127.0.0.1")
    /// ```
    public static func register() {
        for scheme in ["amqp", "amqps"] {
            BrokerRegistry.register(scheme: scheme) { url in try RabbitMQBroker(url: url) }
        }
    }

    // MARK: Connection

    /// Whether the control connection is up now (false while reconnecting).
    public var isConnected: Bool {
        current.withLock { $0 }?.loop.isLinkUp ?? false
    }

    /// The server's product and version (`RabbitMQ 3.10.8`), once connected.
    public var serverVersion: String? {
        current.withLock { $0 }?.loop.serverVersion
    }

    /// Opens the control and publisher connections and declares ``defaultExchange``. Does nothing when connected.
    ///
    /// - Throws: ``MessagingError``: ``MessagingError/Code/connectionFailed`` (unreachable, TLS),
    ///   ``MessagingError/Code/authenticationFailed``, ``MessagingError/Code/accessDenied``.
    public func connect() async throws {
        try await lifecycle.run {
            if current.withLock({ $0 }) != nil { return }
            let runtime = try await RabbitMQRuntime.start(configuration: configuration, events: localEvents, logger: logger)
            current.withLock { $0 = runtime }
        }
    }

    /// Waits for outstanding confirms (up to ``RabbitMQConfiguration/shutdownTimeout``), ends every
    /// consumer (the broker requeues what they did not acknowledge) and closes both connections.
    public func disconnect() async throws {
        try await lifecycle.run {
            guard let runtime = current.withLock({ state in defer { state = nil }; return state }) else { return }
            await runtime.stop()
            localEvents.emit(BrokerEvent(kind: .disconnected, broker: name, detail: "\(configuration): disconnected by the application"))
        }
    }

    func runtime(_ operation: String) throws -> RabbitMQRuntime {
        guard let runtime = current.withLock({ $0 }) else {
            throw MessagingError(.notConnected, "cannot \(operation): the RabbitMQ client is not connected; call connect() first")
        }
        return runtime
    }

    // MARK: Publishing

    /// Publishes to ``PublishOptions/exchange`` (or ``defaultExchange``) with the topic as routing
    /// key, and returns when the broker confirmed it.
    ///
    /// - Throws: ``MessagingError``: ``MessagingError/Code/invalidTopic``, ``MessagingError/Code/payloadTooLarge``,
    ///   ``MessagingError/Code/notFound`` (no such exchange), ``MessagingError/Code/unroutable`` (mandatory,
    ///   no queue bound), ``MessagingError/Code/queueFull`` (`basic.nack`: a queue with overflow
    ///   reject-publish is full), ``MessagingError/Code/connectionFailed`` (retriable).
    public func publish(_ message: Message, options: PublishOptions) async throws {
        let exchange = options.exchange ?? defaultExchange
        try await publish(exchange: exchange, routingKey: message.topic, message: message, options: options)
    }

    func prepare(exchange: String, routingKey: String, message: Message, options: PublishOptions) throws -> OutgoingMessage {
        if exchange.isEmpty {
            if !RoutingKeyCheck.isPlainQueueName(routingKey) { try TopicPattern.validateName(routingKey, kind: "queue name") }
        } else {
            if !RoutingKeyCheck.isPlainTopic(routingKey) { try TopicPattern.validateTopic(routingKey) }
        }
        if message.payload.count > configuration.maxPayloadBytes {
            throw MessagingError(.payloadTooLarge, "the payload of message \(message.id) is \(message.payload.count) bytes; this RabbitMQ client accepts at most \(configuration.maxPayloadBytes)")
        }
        var message = message
        if let priority = options.priority { message.metadata.priority = priority }
        if let expiration = options.expiration { message.metadata.expiration = expiration }
        if !options.headers.isEmpty { message.metadata.headers.merge(options.headers) { _, new in new } }
        if let expiration = message.metadata.expiration, expiration < .zero {
            throw MessagingError(.invalidArgument, "expiration must not be negative, got \(expiration)")
        }
        try AMQPEnvelope.validate(message)
        return AMQPEnvelope.encode(message, exchange: exchange, routingKey: routingKey, persistent: options.persistent, mandatory: options.mandatory)
    }

    // MARK: Consuming

    /// Starts a consumer on a channel of its own: `basic.qos` with the prefetch, then `basic.consume`.
    ///
    /// ```swift
    /// let stream = try await broker.consume(queue: "emails", options: ConsumeOptions(prefetch: 32))
    /// ```
    ///
    /// - Throws: ``MessagingError/Code/notFound`` (`NOT_FOUND`) for a missing queue,
    ///   ``MessagingError/Code/accessDenied`` (`RESOURCE_LOCKED`) for another connection's exclusive queue.
    public func consume(queue: String, options: ConsumeOptions) async throws -> DeliveryStream {
        try TopicPattern.validateName(queue, kind: "queue name")
        try options.validate()
        let runtime = try runtime("consume queue '\(queue)'")
        let consumer = ConsumerSource(
            id: runtime.nextConsumerID(), queue: queue, prefetch: options.prefetch, autoAck: options.autoAck,
            loop: runtime.loop, settlement: runtime
        )
        try await runtime.loop.perform { loop in try loop.addConsumer(consumer) }
        return DeliveryStream(queue: queue, source: consumer)
    }

    /// Takes one message with `basic.get` (manual acknowledgement), or `nil` when the queue is empty.
    ///
    /// ```swift
    /// if let delivery = try await broker.get(queue: "emails") { try await delivery.ack() }
    /// ```
    public func get(queue: String) async throws -> Delivery? {
        try TopicPattern.validateName(queue, kind: "queue name")
        let runtime = try runtime("get from queue '\(queue)'")
        return try await runtime.loop.perform { loop in try loop.get(queue: queue, settlement: runtime) }
    }

    // MARK: Topology

    /// Declares a queue from broker-neutral options (see ``RabbitMQQueueOptions/init(_:)``).
    ///
    /// ```swift
    /// try await broker.createQueue("jobs", options: QueueOptions(maxLength: 1000, deadLetter: .queue("jobs.dlq")))
    /// ```
    ///
    /// - Throws: ``MessagingError/Code/alreadyExists`` (`PRECONDITION_FAILED`) when it exists with other settings.
    public func createQueue(_ name: String, options: QueueOptions) async throws {
        try TopicPattern.validateName(name, kind: "queue name")
        try options.validate()
        _ = try await assertQueue(name, options: RabbitMQQueueOptions(options))
    }

    /// Deletes a queue and its messages.
    ///
    /// ```swift
    /// try await broker.deleteQueue("jobs")
    /// ```
    ///
    /// - Throws: ``MessagingError/Code/notFound`` when it does not exist.
    public func deleteQueue(_ name: String) async throws {
        _ = try await deleteQueue(name, ifUnused: false, ifEmpty: false)
    }

    /// Removes the queue's ready messages, and the ones this client's consumers prefetched but did
    /// not hand out yet; returns how many.
    ///
    /// ```swift
    /// let removed = try await broker.purgeQueue("jobs")
    /// ```
    public func purgeQueue(_ name: String) async throws -> Int {
        try TopicPattern.validateName(name, kind: "queue name")
        return try await runtime("purge queue '\(name)'").loop.perform { loop in try loop.purgeQueue(name) }
    }

    /// The queue's counts: `ready` and `consumers` from the broker (`queue.declare` passive);
    /// `unacknowledged` counts this client's own consumers and fetches only (AMQP reports no more);
    /// `delayed` counts messages waiting in the queue's delay queues.
    public func queueInfo(_ name: String) async throws -> QueueInfo {
        try TopicPattern.validateName(name, kind: "queue name")
        return try await runtime("read queue '\(name)'").loop.perform { loop in try loop.queueInfo(name) }
    }

    /// Declares an exchange (see ``assertExchange(_:options:arguments:)``).
    ///
    /// ```swift
    /// try await broker.createExchange("audit", options: ExchangeOptions(type: .fanout))
    /// ```
    public func createExchange(_ name: String, options: ExchangeOptions) async throws {
        try await assertExchange(name, options: options)
    }

    /// Deletes an exchange and its bindings.
    ///
    /// ```swift
    /// try await broker.deleteExchange("audit")
    /// ```
    ///
    /// - Throws: ``MessagingError/Code/notFound`` when it does not exist.
    public func deleteExchange(_ name: String) async throws {
        try await deleteExchange(name, ifUnused: false)
    }

    /// Binds a queue. On a headers exchange that this client declared, a routing key of the form
    /// `key=value[,key=value]` becomes binding arguments matching all the pairs.
    public func bind(queue: String, exchange: String, routingKey: String) async throws {
        try await bind(queue: queue, exchange: exchange, routingKey: routingKey, arguments: [:])
    }

    /// Removes a binding.
    ///
    /// ```swift
    /// try await broker.unbind(queue: "audit", exchange: broker.defaultExchange, routingKey: "#")
    /// ```
    public func unbind(queue: String, exchange: String, routingKey: String) async throws {
        try await unbind(queue: queue, exchange: exchange, routingKey: routingKey, arguments: [:])
    }

    /// Records a topic name for ``listTopics()`` (exchanges need no declared topics).
    ///
    /// ```swift
    /// try await broker.createTopic("orders.created")
    /// ```
    public func createTopic(_ name: String) async throws {
        try TopicPattern.validateTopic(name)
        try await runtime("create a topic").loop.perform { loop in _ = loop.topology.topics.insert(name) }
    }

    /// Forgets a topic recorded with ``createTopic(_:)``.
    ///
    /// - Throws: ``MessagingError/Code/notFound`` when it was not created.
    public func deleteTopic(_ name: String) async throws {
        try await runtime("delete a topic").loop.perform { loop in
            guard loop.topology.topics.remove(name) != nil else {
                throw MessagingError(.notFound, "topic '\(name)' was not created", brokerCode: "NOT_FOUND")
            }
        }
    }

    /// Topics this client created and the routing keys of the bindings it made (AMQP cannot list a broker's bindings).
    ///
    /// ```swift
    /// let topics = try await broker.listTopics()
    /// ```
    public func listTopics() async throws -> [String] {
        try await runtime("list topics").loop.perform { loop in
            var topics = loop.topology.topics
            for binding in loop.topology.bindings where !binding.exchange.isEmpty { topics.insert(binding.routingKey) }
            return topics.sorted()
        }
    }

    // MARK: Monitoring

    /// A round trip on the control connection; the version comes from the broker's `connection.start`.
    ///
    /// ```swift
    /// let health = await broker.healthCheck() // healthy, latency, "RabbitMQ 3.10.8"
    /// ```
    public func healthCheck() async -> HealthStatus {
        guard let runtime = current.withLock({ $0 }) else {
            return HealthStatus(broker: name, isHealthy: false, reason: "not connected")
        }
        let start = ContinuousClock.now
        do {
            try await runtime.loop.perform { loop in try loop.ping() }
            return HealthStatus(broker: name, isHealthy: true, latency: ContinuousClock.now - start, version: runtime.loop.serverVersion)
        } catch {
            return HealthStatus(broker: name, isHealthy: false, version: runtime.loop.serverVersion, reason: "\(error)")
        }
    }

    /// Connection events of both connections (connected, disconnected, reconnecting, blocked,
    /// unblocked, errors of recovery) and dead letters the adapter published.
    ///
    /// ```swift
    /// for await event in broker.events() where event.kind == .reconnecting { print(event) }
    /// ```
    public func events() -> AsyncStream<BrokerEvent> {
        localEvents.stream()
    }
}
