import Foundation
import Jadugar
import Logging
import Synchronization

/// A ``Jadugar/MessageBroker`` over Apache Kafka (or a Kafka-compatible broker), through librdkafka.
///
/// The AMQP-shaped model maps onto Kafka like this (details in `docs/kafka.md`):
///
/// - **Publish**: a message goes to the Kafka topic named by its topic, keyed by
///   ``Jadugar/PublishOptions/key`` (else the header ``KafkaHeader/key``, else the correlation id),
///   so that per-key order holds. `publish` returns when the broker acknowledged it (acks=all,
///   idempotent producer); it goes through the publisher core's batcher and one I/O thread.
/// - **Queues and groups**: a queue `q` is the consumer group `q`. It reads its own topic `q`
///   (`send(_:toQueue:)`, `createQueue`), its retry topic `q.retry`, and every topic its bindings
///   name (a literal pattern is a topic; a wildcard pattern a regular-expression subscription).
///   `subscribe` with a group maps onto that group; without a group it reads privately from the end
///   of the matching topics, with no group offsets.
/// - **Settlement**: Kafka has no per-message acknowledgement. An ack marks the offset done and the
///   contiguous done prefix of each partition is committed; a requeue delivers the message again
///   from the local buffer; a delayed requeue goes through the queue's retry topic; a reject goes
///   to the dead-letter topic (`<group>.dlq` by default) with the reason, attempts, original topic,
///   partition and offset.
///
/// ```swift
/// let broker = try KafkaBroker(url: "kafka://127.0.0.1:9092")
/// try await broker.connect()
/// let stream = try await broker.subscribe("orders.*", options: SubscribeOptions(group: "billing"))
/// try await broker.publish(Message(topic: "orders.created", string: "{}"), options: PublishOptions(key: "customer-7"))
/// for try await delivery in stream {
///     try await delivery.ack()
/// }
/// ```
///
/// - Important: Safe to use from many tasks at once. librdkafka runs on the adapter's own threads:
///   one publisher I/O thread, one admin thread, and one poll thread per consumed queue; none of
///   its blocking calls runs on Swift's cooperative pool.
public final class KafkaBroker: MessageBroker {
    /// `"kafka"`.
    public let name = "kafka"
    /// The settings this broker was made with.
    public let configuration: KafkaConfiguration
    /// What the adapter offers; see `docs/kafka.md` for what is emulated.
    public let capabilities: BrokerCapabilities
    public var defaultExchange: String { configuration.defaultExchange }

    struct Connection: Sendable {
        let producer: KafkaProducer
        let admin: KafkaAdmin
    }

    private enum Phase {
        case idle
        case connecting(Task<Connection, any Error>)
        case connected(Connection)
    }

    let logger: Logger
    let topology: KafkaTopology
    let eventBroadcaster = EventBroadcaster()
    private let phase = Mutex(Phase.idle)
    let consumers = Mutex<[String: KafkaQueueConsumer]>([:])
    /// Topics known to exist (created or seen), to skip repeated CreateTopics requests.
    let knownTopics = Mutex<Set<String>>([])
    /// Topic and queue names that passed validation, so that the publish hot path checks each name
    /// once (validation walks every Unicode scalar of the name).
    private let validNames = Mutex<(topics: Set<String>, queues: Set<String>)>(([], []))

    /// Creates a broker client; ``connect()`` opens it.
    ///
    /// ```swift
    /// let broker = KafkaBroker(configuration: KafkaConfiguration(bootstrapServers: "kafka-1:9092,kafka-2:9092"))
    /// ```
    ///
    /// - Parameters:
    ///   - configuration: Where the cluster is and how the adapter behaves. Default: `127.0.0.1:9092`.
    ///   - logger: Where the adapter logs. Default: a logger that discards everything.
    public init(configuration: KafkaConfiguration = KafkaConfiguration(), logger: Logger = Logger(label: "jadugar.kafka", factory: { _ in SwiftLogNoOpLogHandler() })) {
        self.configuration = configuration
        self.logger = logger
        self.topology = KafkaTopology.shared(bootstrapServers: configuration.bootstrapServers, defaultExchange: configuration.defaultExchange)
        var features: Set<BrokerFeature> = [
            .wildcardRouting, .consumerGroups, .delayedRedelivery, .deadLetter, .redelivery, .prefetch, .replay, .browse, .reconnect,
        ]
        if configuration.persistent { features.insert(.persistence) }
        capabilities = BrokerCapabilities(
            features: features,
            emulated: [.delayedRedelivery, .deadLetter, .prefetch, .browse],
            ordering: .key,
            maxPayloadBytes: configuration.maxPayloadBytes
        )
    }

    /// Creates a broker client from a `kafka://` URL; see ``KafkaConfiguration/init(url:)-(String)``.
    ///
    /// ```swift
    /// let broker = try KafkaBroker(url: "kafka://127.0.0.1:9092?compression.type=lz4")
    /// ```
    ///
    /// - Throws: ``Jadugar/MessagingError/Code/invalidURL`` or ``Jadugar/MessagingError/Code/unsupportedScheme``.
    public convenience init(url: String, logger: Logger = Logger(label: "jadugar.kafka", factory: { _ in SwiftLogNoOpLogHandler() })) throws {
        try self.init(configuration: KafkaConfiguration(url: url), logger: logger)
    }

    /// Creates a broker client from a parsed `kafka://` URL.
    public convenience init(url: BrokerURL, logger: Logger = Logger(label: "jadugar.kafka", factory: { _ in SwiftLogNoOpLogHandler() })) throws {
        try self.init(configuration: KafkaConfiguration(url: url), logger: logger)
    }

    /// Registers the `kafka://` scheme with ``Jadugar/BrokerRegistry``.
    ///
    /// ```swift
    /// KafkaBroker.register()
    /// let manager = try MessageManager(options: MessageOptions(url: "kafka://127.0.0.1:9092"))
    /// ```
    public static func register() {
        BrokerRegistry.register(scheme: "kafka") { url in try KafkaBroker(url: url) }
    }

    var identity: ObjectIdentifier { ObjectIdentifier(self) }

    // MARK: Connection

    public var isConnected: Bool {
        phase.withLock { if case .connected = $0 { return true } else { return false } }
    }

    /// Creates the producer and admin clients and checks that the cluster answers. Calling it
    /// when connected does nothing.
    ///
    /// - Throws: ``Jadugar/MessagingError/Code/connectionFailed`` (with librdkafka's reason) when no
    ///   broker answers within the operation timeout, ``Jadugar/MessagingError/Code/invalidArgument``
    ///   for a property librdkafka rejects.
    public func connect() async throws {
        let task: Task<Connection, any Error>? = phase.withLock { phase in
            switch phase {
            case .connected: return nil
            case .connecting(let task): return task
            case .idle:
                let task = Task { try await self.open() }
                phase = .connecting(task)
                return task
            }
        }
        guard let task else { return }
        do {
            let connection = try await task.value
            let first = phase.withLock { phase -> Bool in
                if case .connecting = phase {
                    phase = .connected(connection)
                    return true
                }
                return false
            }
            if first { eventBroadcaster.emit(BrokerEvent(kind: .connected, broker: name, detail: configuration.bootstrapServers)) }
        } catch {
            phase.withLock { phase in
                if case .connecting = phase { phase = .idle }
            }
            throw error
        }
    }

    private func open() async throws -> Connection {
        try configuration.validate()
        logger.info("connecting to Kafka", metadata: [
            "jadugar.broker": "\(configuration.bootstrapServers)", "kafka.librdkafka": "\(RdKafkaHandle.runtimeVersion)",
        ])
        let admin = try await KafkaAdmin.open(configuration: configuration, logger: logger)
        do {
            _ = try await admin.ping()
        } catch let error as MessagingError {
            await admin.close()
            var failure = error
            failure.message = "could not reach Kafka at \(configuration.bootstrapServers) (librdkafka \(RdKafkaHandle.runtimeVersion)): \(error.message)"
            if failure.code != .authenticationFailed, failure.code != .accessDenied { failure.code = .connectionFailed }
            failure.isRetriable = true
            throw failure
        }
        do {
            let producer = try await KafkaProducer.open(configuration: configuration, events: eventBroadcaster, logger: logger, on: admin.executor)
            return Connection(producer: producer, admin: admin)
        } catch {
            await admin.close()
            throw error
        }
    }

    /// Closes every consumer (their unsettled messages stay uncommitted, so Kafka redelivers
    /// them), deletes this client's exclusive queues, waits for outstanding delivery reports,
    /// and closes the clients.
    public func disconnect() async throws {
        let connection: Connection? = await {
            let state = phase.withLock { phase -> (Connection?, Task<Connection, any Error>?) in
                switch phase {
                case .idle: return (nil, nil)
                case .connecting(let task): return (nil, task)
                case .connected(let connection):
                    phase = .idle
                    return (connection, nil)
                }
            }
            if let task = state.1, let connection = try? await task.value {
                phase.withLock { $0 = .idle }
                return connection
            }
            return state.0
        }()
        guard let connection else { return }
        let all = consumers.withLock { registry in
            defer { registry.removeAll() }
            return Array(registry.values)
        }
        for consumer in all { await consumer.shutdown() }
        for queue in topology.queues(ownedBy: identity) {
            if let entry = topology.removeQueue(queue) {
                let topics = Self.topicsDeletedWith(queue, entry)
                if !topics.isEmpty {
                    try? await connection.admin.deleteTopics(topics, ignoreMissing: true)
                    knownTopics.withLock { $0.subtract(topics) }
                }
            }
        }
        await connection.producer.shutdown()
        await connection.admin.close()
        eventBroadcaster.emit(BrokerEvent(kind: .disconnected, broker: name, detail: configuration.bootstrapServers))
    }

    func requireConnection(_ operation: String) throws -> Connection {
        try phase.withLock { phase in
            guard case .connected(let connection) = phase else {
                throw MessagingError(.notConnected, "cannot \(operation): the Kafka client is not connected; call connect() first")
            }
            return connection
        }
    }

    // MARK: Publishing

    /// Produces a message to the topic named by its topic and returns when Kafka acknowledged it.
    ///
    /// The exchange is recorded in a header when it is not the default one (``KafkaHeader/exchange``);
    /// `""` (``Jadugar/MessageBroker/send(_:toQueue:options:)``) makes the message visible only to the
    /// queue of that name. With ``Jadugar/PublishOptions/mandatory`` the topic must exist.
    ///
    /// - Throws: ``Jadugar/MessagingError`` with ``Jadugar/MessagingError/Code/invalidTopic``,
    ///   ``Jadugar/MessagingError/Code/payloadTooLarge``, ``Jadugar/MessagingError/Code/notConnected``,
    ///   ``Jadugar/MessagingError/Code/unroutable``, or Kafka's refusal with its error code.
    public func publish(_ message: Message, options: PublishOptions) async throws {
        let connection = try requireConnection("publish")
        let exchange = options.exchange ?? defaultExchange
        try validate(message.topic, asQueue: exchange.isEmpty)
        if message.payload.count > configuration.maxPayloadBytes {
            throw MessagingError(.payloadTooLarge, "the payload of message \(message.id) is \(message.payload.count) bytes; this Kafka client accepts at most \(configuration.maxPayloadBytes) (KafkaConfiguration.maxPayloadBytes)")
        }
        var message = message
        if let priority = options.priority { message.metadata.priority = priority }
        if let expiration = options.expiration { message.metadata.expiration = expiration }
        if !options.headers.isEmpty { message.metadata.headers.merge(options.headers) { _, new in new } }
        if options.mandatory, try await !topicExists(message.topic, connection: connection) {
            throw MessagingError(.unroutable, "topic '\(message.topic)' does not exist, so no queue can receive the message", brokerCode: "UNKNOWN_TOPIC_OR_PART")
        }
        let record = KafkaEnvelope.encode(message, topic: configuration.kafkaName(message.topic), exchange: exchange == defaultExchange ? nil : exchange, key: options.key)
        try await connection.producer.send(record)
    }

    /// Checks a topic (or, for the default exchange, a queue name) once per name.
    private func validate(_ name: String, asQueue: Bool) throws {
        if validNames.withLock({ asQueue ? $0.queues.contains(name) : $0.topics.contains(name) }) { return }
        if asQueue {
            try TopicPattern.validateName(name, kind: "queue name")
        } else {
            try TopicPattern.validateTopic(name)
        }
        validNames.withLock { names in
            if names.topics.count + names.queues.count > 10_000 { names = ([], []) }
            if asQueue { names.queues.insert(name) } else { names.topics.insert(name) }
        }
    }

    // MARK: Consuming

    /// Consumes a queue: the consumer group named after the queue (an exclusive queue reads
    /// without a group). Streams of one queue in this client share one Kafka consumer.
    ///
    /// - Throws: ``Jadugar/MessagingError/Code/notFound`` when the queue was not declared in this
    ///   process and its topic does not exist; ``Jadugar/MessagingError/Code/accessDenied`` for
    ///   another client's exclusive queue.
    public func consume(queue: String, options: ConsumeOptions) async throws -> DeliveryStream {
        let connection = try requireConnection("consume")
        try options.validate()
        try await prepareToRead(queue, connection: connection)
        for _ in 0..<3 {
            let (consumer, id) = attachConsumer(queue, connection: connection) { $0.attach(prefetch: options.prefetch, autoAck: options.autoAck) }
            guard let id else { continue }
            let source = KafkaStreamSource(consumer: consumer, id: id)
            do {
                try await consumer.started()
            } catch {
                await source.close()
                throw error
            }
            return DeliveryStream(queue: queue, source: source)
        }
        throw MessagingError(.closed, "the consumer of queue '\(queue)' kept closing while a stream was being attached; try again")
    }

    /// Takes one message of a queue, or `nil` when the queue's consumer has read every assigned
    /// partition to its end and holds nothing ready.
    ///
    /// The first call starts the queue's consumer (a group join, which can take seconds) and waits
    /// up to ``KafkaConfiguration/operationTimeout`` for it to catch up. The getter stays a member
    /// of the group until 30 seconds after its last use.
    public func get(queue: String) async throws -> Delivery? {
        let connection = try requireConnection("get from a queue")
        try await prepareToRead(queue, connection: connection)
        for _ in 0..<3 {
            let (consumer, _) = attachConsumer(queue, connection: connection) { _ in 0 }
            do {
                try await consumer.started()
                return try await consumer.get()
            } catch is KafkaQueueConsumer.Closing {
                continue
            }
        }
        throw MessagingError(.closed, "the consumer of queue '\(queue)' kept closing; try again")
    }

    /// Checks that a queue can be read: declared here, or its topic exists (then its retry topic is made).
    private func prepareToRead(_ queue: String, connection: Connection) async throws {
        try TopicPattern.validateName(queue, kind: "queue name")
        if let entry = topology.queue(queue) {
            if let owner = entry.owner, owner != identity {
                throw MessagingError(.accessDenied, "queue '\(queue)' is exclusive to another connection", brokerCode: "RESOURCE_LOCKED")
            }
            return
        }
        guard try await topicExists(queue, connection: connection) else {
            throw MessagingError(.notFound, "queue '\(queue)' does not exist: it was not declared in this process and there is no topic '\(queue)'", brokerCode: "UNKNOWN_TOPIC_OR_PART")
        }
        try await ensureTopics([TopicSpec(name: ConsumerSpec.retryTopic(for: queue), partitions: 1, replicationFactor: configuration.replicationFactor)], connection: connection)
    }

    /// Finds the running consumer of a queue or starts one, and runs `attach` on it under the registry lock.
    private func attachConsumer(_ queue: String, connection: Connection, attach: (KafkaQueueConsumer) -> UInt64?) -> (KafkaQueueConsumer, UInt64?) {
        consumers.withLock { registry in
            if let existing = registry[queue], let id = attach(existing) { return (existing, id) }
            let consumer = KafkaQueueConsumer.start(queue: queue, spec: spec(for: queue), environment: environment(connection))
            registry[queue] = consumer
            return (consumer, attach(consumer))
        }
    }

    /// The consumer settings of a queue, from what this process declared.
    func spec(for queue: String) -> ConsumerSpec {
        let entry = topology.queue(queue)
        return ConsumerSpec(
            queue: queue,
            isPrivate: entry?.options.exclusive ?? false,
            hasOwnTopic: entry?.hasOwnTopic ?? true,
            bindings: entry?.bindings ?? [],
            defaultExchange: defaultExchange,
            deadLetter: entry == nil ? .queue("\(queue).dlq") : entry?.options.deadLetter,
            startedAt: Date(),
            startTolerance: configuration.privateStartTolerance,
            prefix: configuration.topicPrefix
        )
    }

    private func environment(_ connection: Connection) -> ConsumerEnvironment {
        ConsumerEnvironment(
            configuration: configuration,
            producer: connection.producer,
            events: eventBroadcaster,
            topology: topology,
            logger: logger,
            ensureTopic: { [weak self] topic in
                guard let self else { return }
                try await self.ensureTopics([TopicSpec(name: topic, partitions: self.configuration.defaultPartitions, replicationFactor: self.configuration.replicationFactor)], connection: connection)
            },
            retire: { [weak self] consumer in
                guard let self else { return consumer.retireIfIdle(force: false) }
                return self.consumers.withLock { registry in
                    guard consumer.retireIfIdle(force: false) else { return false }
                    if registry[consumer.queue] === consumer { registry.removeValue(forKey: consumer.queue) }
                    return true
                }
            },
            closed: { [weak self] consumer in
                self?.consumerClosed(consumer, connection: connection)
            }
        )
    }

    /// A consumer finished: forget it; an exclusive auto-delete queue goes with its consumer.
    private func consumerClosed(_ consumer: KafkaQueueConsumer, connection: Connection) {
        consumers.withLock { registry in
            if registry[consumer.queue] === consumer { registry.removeValue(forKey: consumer.queue) }
        }
        guard let entry = topology.queue(consumer.queue), entry.options.exclusive, entry.options.autoDelete, entry.owner == identity else { return }
        topology.removeQueue(consumer.queue)
        let topics = Self.topicsDeletedWith(consumer.queue, entry)
        guard !topics.isEmpty else { return }
        knownTopics.withLock { $0.subtract(topics) }
        Task { try? await connection.admin.deleteTopics(topics, ignoreMissing: true) }
    }

    /// The topics that go when an exclusive queue of this client goes: its own topic, and for a
    /// group-less subscription (`sub.<id>`) the dead-letter topic `sub.<id>.dlq` it got by default,
    /// which nobody else knows the name of (a dead-letter queue named in the options stays).
    static func topicsDeletedWith(_ queue: String, _ entry: KafkaTopology.QueueEntry) -> [String] {
        var topics: [String] = []
        if entry.hasOwnTopic { topics.append(queue) }
        if queue.hasPrefix(privateSubscriptionPrefix), entry.options.deadLetter == .queue("\(queue).dlq") {
            topics.append("\(queue).dlq")
        }
        return topics
    }

    /// Queue names of group-less subscriptions start with this.
    static let privateSubscriptionPrefix = "sub."

    // MARK: Subscribing

    /// Subscribes to a topic pattern.
    ///
    /// With a group `g`: declares the queue `g` (consumer group `g`, its retry topic `g.retry`, and
    /// the dead-letter queue `g.dlq` or ``Jadugar/SubscribeOptions/deadLetter``), binds the pattern,
    /// and consumes it; a new group starts at the beginning of the topics (`auto.offset.reset=earliest`).
    /// Without a group: a private reader of the matching topics from their end, which needs no group
    /// join when the pattern is literal; its dead letters go to `sub.<id>.dlq` unless the options name a queue.
    /// That default dead-letter topic is deleted with the subscription (auto-delete), like the subscription itself.
    ///
    /// - Throws: ``Jadugar/MessagingError/Code/invalidPattern``, ``Jadugar/MessagingError/Code/invalidArgument``,
    ///   or Kafka's refusal.
    public func subscribe(_ pattern: String, options: SubscribeOptions) async throws -> DeliveryStream {
        _ = try TopicPattern(pattern)
        try options.validate()
        let exchange = options.exchange ?? defaultExchange
        let consume = ConsumeOptions(prefetch: options.prefetch, autoAck: options.autoAck)
        guard let group = options.group else {
            let connection = try requireConnection("subscribe")
            let queue = "\(Self.privateSubscriptionPrefix)\(Message.makeID())"
            var target: DeadLetterTarget = .queue("\(queue).dlq")
            if let deadLetter = options.deadLetter {
                target = DeadLetterTarget(exchange: deadLetter.exchange, routingKey: deadLetter.exchange.isEmpty ? deadLetter.queue : deadLetter.routingKey)
            }
            try topology.declareQueue(queue, options: QueueOptions(durable: false, exclusive: true, autoDelete: true, deadLetter: target), owner: identity, hasOwnTopic: false)
            do {
                try await bind(queue: queue, exchange: exchange, routingKey: pattern, connection: connection)
                return try await self.consume(queue: queue, options: consume)
            } catch {
                topology.removeQueue(queue)
                throw error
            }
        }
        var queueOptions = options.queue ?? QueueOptions(durable: true)
        if queueOptions.deadLetter == nil {
            let deadLetter = options.deadLetter ?? DeadLetterOptions(queue: "\(group).dlq")
            try await createQueue(deadLetter.queue, options: QueueOptions(durable: true))
            if !deadLetter.exchange.isEmpty {
                try await bind(queue: deadLetter.queue, exchange: deadLetter.exchange, routingKey: deadLetter.routingKey ?? "#")
            }
            queueOptions.deadLetter = DeadLetterTarget(exchange: deadLetter.exchange, routingKey: deadLetter.exchange.isEmpty ? deadLetter.queue : deadLetter.routingKey)
        }
        try await createQueue(group, options: queueOptions)
        try await bind(queue: group, exchange: exchange, routingKey: pattern)
        return try await self.consume(queue: group, options: consume)
    }

    // MARK: Monitoring

    /// A metadata round trip to the cluster.
    public func healthCheck() async -> HealthStatus {
        let version = "librdkafka \(RdKafkaHandle.runtimeVersion)"
        guard let connection = try? requireConnection("check health") else {
            return HealthStatus(broker: name, isHealthy: false, version: version, reason: "not connected")
        }
        do {
            let latency = try await connection.admin.ping()
            return HealthStatus(broker: name, isHealthy: true, latency: latency, version: version)
        } catch {
            return HealthStatus(broker: name, isHealthy: false, version: version, reason: "\(error)")
        }
    }

    public func events() -> AsyncStream<BrokerEvent> {
        eventBroadcaster.stream()
    }
}
