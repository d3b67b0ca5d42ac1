import Foundation
import Synchronization

/// The embedded broker: a real message broker inside the process, with RabbitMQ's semantics and no server.
///
/// It routes through exchanges (direct, topic with `*`/`#`, fanout, headers) into queues, delivers
/// to competing consumers with a prefetch bound, redelivers unacknowledged messages when a
/// consumer goes away, honours priorities, expires messages into dead-letter queues, and
/// redelivers after a delay for retries. Each `InMemoryBroker` is one client connection; clients
/// made with the same ``init(sharedName:configuration:)`` name share one broker, like two
/// processes sharing a RabbitMQ server.
///
/// Memory is bounded: each queue holds at most ``Configuration/defaultMaxLength`` ready messages
/// unless its ``QueueOptions/maxLength`` says otherwise; past that, publishes to it fail with
/// ``MessagingError/Code/queueFull`` (or the oldest message is dead-lettered with `.dropHead`).
///
/// ```swift
/// let broker = InMemoryBroker()
/// let manager = MessageManager(broker: broker)
/// try await manager.connect()
/// ```
public final class InMemoryBroker: MessageBroker {
    /// Settings of an embedded broker.
    public struct Configuration: Sendable, Hashable {
        /// The largest payload accepted, in bytes. Default: 16 MiB.
        public var maxPayloadBytes: Int
        /// The most ready messages a queue holds when its options name no limit. Default: 1,000,000.
        public var defaultMaxLength: Int
        /// The name of the topic exchange `publish` and `subscribe` use by default. Default: `"jadugar"`.
        public var defaultExchange: String

        /// Creates a configuration.
        public init(maxPayloadBytes: Int = 16 << 20, defaultMaxLength: Int = 1_000_000, defaultExchange: String = InMemoryBroker.defaultExchangeName) {
            self.maxPayloadBytes = maxPayloadBytes
            self.defaultMaxLength = defaultMaxLength
            self.defaultExchange = defaultExchange
        }
    }

    /// The default topic exchange's name.
    public static let defaultExchangeName = "jadugar"

    private struct State {
        var consumers: [UInt64: MemoryConsumer] = [:]
        var getters: [String: MemoryConsumer] = [:]
    }

    public let name = "memory"
    public var defaultExchange: String { core.configuration.defaultExchange }
    public let capabilities: BrokerCapabilities
    let core: MemoryBrokerCore
    private let connected = Atomic<Bool>(false)
    private let state = Mutex(State())
    private let localEvents = EventBroadcaster()
    private static let ids = Atomic<UInt64>(1)

    /// Creates a client of a private embedded broker that only this object can reach.
    public init(configuration: Configuration = Configuration()) {
        core = MemoryBrokerCore(name: "private-\(Self.nextID())", configuration: configuration)
        capabilities = Self.capabilities(configuration)
    }

    /// Creates a client of the process-wide embedded broker with this name; every client of the
    /// same name sees the same exchanges, queues and messages. The first client's configuration wins.
    ///
    /// ```swift
    /// let a = InMemoryBroker(sharedName: "orders")
    /// let b = InMemoryBroker(sharedName: "orders") // same broker, second connection
    /// ```
    public init(sharedName: String, configuration: Configuration = Configuration()) {
        core = MemoryBrokerCore.shared(named: sharedName, configuration: configuration)
        capabilities = Self.capabilities(core.configuration)
    }

    /// Creates a client from a `memory://[name]` URL: with a name, the shared broker of that name;
    /// without, a private one. The query may set `maxPayloadBytes` and `maxLength`.
    public convenience init(url: BrokerURL) {
        var configuration = Configuration()
        if let value = url.query["maxPayloadBytes"].flatMap(Int.init) { configuration.maxPayloadBytes = value }
        if let value = url.query["maxLength"].flatMap(Int.init) { configuration.defaultMaxLength = value }
        let shared = url.host.isEmpty ? url.path : url.host
        if shared.isEmpty {
            self.init(configuration: configuration)
        } else {
            self.init(sharedName: shared, configuration: configuration)
        }
    }

    private static func capabilities(_ configuration: Configuration) -> BrokerCapabilities {
        BrokerCapabilities(
            features: [
                .wildcardRouting, .consumerGroups, .priority, .messageTTL, .delayedRedelivery, .deadLetter,
                .redelivery, .prefetch, .browse, .maxLength,
            ],
            ordering: .queue,
            maxPayloadBytes: configuration.maxPayloadBytes
        )
    }

    static func nextID() -> UInt64 {
        ids.wrappingAdd(1, ordering: .relaxed).newValue
    }

    private var identity: ObjectIdentifier { ObjectIdentifier(self) }

    // MARK: Connection

    public var isConnected: Bool { connected.load(ordering: .acquiring) }

    public func connect() async throws {
        if connected.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged {
            localEvents.emit(BrokerEvent(kind: .connected, broker: name, detail: core.name))
        }
    }

    public func disconnect() async throws {
        guard connected.compareExchange(expected: true, desired: false, ordering: .acquiringAndReleasing).exchanged else { return }
        let consumers = state.withLock { state in
            defer { state.consumers.removeAll(); state.getters.removeAll() }
            return Array(state.consumers.values) + Array(state.getters.values)
        }
        for consumer in consumers { await consumer.close() }
        for queue in core.queuesOwned(by: identity) { try? core.deleteQueue(queue) }
        localEvents.emit(BrokerEvent(kind: .disconnected, broker: name, detail: core.name))
    }

    private func requireConnection(_ operation: String) throws {
        guard isConnected else {
            throw MessagingError(.notConnected, "cannot \(operation): the memory broker client is not connected; call connect() first")
        }
    }

    // MARK: Publishing

    public func publish(_ message: Message, options: PublishOptions) async throws {
        try requireConnection("publish")
        let exchange = options.exchange ?? defaultExchange
        if exchange.isEmpty {
            try TopicPattern.validateName(message.topic, kind: "queue name")
        } else {
            try TopicPattern.validateTopic(message.topic)
        }
        if message.payload.count > core.configuration.maxPayloadBytes {
            throw MessagingError(.payloadTooLarge, "the payload is \(message.payload.count) bytes; the memory broker accepts at most \(core.configuration.maxPayloadBytes)")
        }
        var message = message
        options.apply(to: &message)
        let routed = try core.route(exchange: exchange, routingKey: message.topic, message: message)
        if routed == 0, options.mandatory {
            throw MessagingError(.unroutable, "no queue is bound for topic '\(message.topic)' at exchange '\(exchange)'", brokerCode: "NO_ROUTE")
        }
    }

    // MARK: Consuming

    public func consume(queue name: String, options: ConsumeOptions) async throws -> DeliveryStream {
        try requireConnection("consume")
        try options.validate()
        let queue = try core.queue(named: name)
        if let owner = queue.owner, owner != identity {
            throw MessagingError(.accessDenied, "queue '\(name)' is exclusive to another connection", brokerCode: "RESOURCE_LOCKED")
        }
        let consumer = MemoryConsumer(id: Self.nextID(), queue: queue, core: core) { [weak self] id in
            _ = self?.state.withLock { $0.consumers.removeValue(forKey: id) }
        }
        try queue.addConsumer(consumer.id, prefetch: options.prefetch, autoAck: options.autoAck, settler: consumer)
        state.withLock { $0.consumers[consumer.id] = consumer }
        return DeliveryStream(queue: name, source: consumer)
    }

    public func get(queue name: String) async throws -> Delivery? {
        try requireConnection("get from a queue")
        let queue = try core.queue(named: name)
        let getter = try state.withLock { state -> MemoryConsumer in
            if let existing = state.getters[name], existing.queue === queue { return existing }
            let getter = MemoryConsumer(id: Self.nextID(), queue: queue, core: core) { _ in }
            try queue.addConsumer(getter.id, prefetch: .max, autoAck: false, settler: getter, isGetter: true)
            state.getters[name] = getter
            return getter
        }
        let (delivery, effects) = queue.get(consumer: getter.id, clock: core.clock)
        core.apply(effects, from: queue)
        return delivery
    }

    // MARK: Topology

    public func createQueue(_ name: String, options: QueueOptions) async throws {
        try requireConnection("create a queue")
        try core.createQueue(name, options: options, owner: identity)
    }

    public func deleteQueue(_ name: String) async throws {
        try requireConnection("delete a queue")
        try core.deleteQueue(name)
    }

    public func purgeQueue(_ name: String) async throws -> Int {
        try requireConnection("purge a queue")
        return try core.queue(named: name).purge()
    }

    public func queueInfo(_ name: String) async throws -> QueueInfo {
        try requireConnection("read queue counts")
        return try core.queue(named: name).info()
    }

    public func createExchange(_ name: String, options: ExchangeOptions) async throws {
        try requireConnection("create an exchange")
        try core.createExchange(name, options: options)
    }

    public func deleteExchange(_ name: String) async throws {
        try requireConnection("delete an exchange")
        try core.deleteExchange(name)
    }

    public func bind(queue: String, exchange: String, routingKey: String) async throws {
        try requireConnection("bind a queue")
        try core.bind(queue: queue, exchange: exchange, routingKey: routingKey)
    }

    public func unbind(queue: String, exchange: String, routingKey: String) async throws {
        try requireConnection("unbind a queue")
        try core.unbind(queue: queue, exchange: exchange, routingKey: routingKey)
    }

    public func createTopic(_ name: String) async throws {
        try requireConnection("create a topic")
        try core.createTopic(name)
    }

    public func deleteTopic(_ name: String) async throws {
        try requireConnection("delete a topic")
        try core.deleteTopic(name)
    }

    public func listTopics() async throws -> [String] {
        try requireConnection("list topics")
        return core.listTopics()
    }

    // MARK: Monitoring

    public func healthCheck() async -> HealthStatus {
        let start = ContinuousClock.now
        guard isConnected else {
            return HealthStatus(broker: name, isHealthy: false, version: Self.version, reason: "not connected")
        }
        _ = core.topology.withLock { $0.queues.count }
        return HealthStatus(broker: name, isHealthy: true, latency: ContinuousClock.now - start, version: Self.version)
    }

    /// The embedded broker's version, as health checks report it.
    public static let version = "jadugar-memory 1"

    public func events() -> AsyncStream<BrokerEvent> {
        let (stream, continuation) = AsyncStream<BrokerEvent>.makeStream(bufferingPolicy: .bufferingNewest(1000))
        let local = localEvents.register(continuation)
        let shared = core.events.register(continuation)
        continuation.onTermination = { [localEvents, core] _ in
            localEvents.unregister(local)
            core.events.unregister(shared)
        }
        return stream
    }
}

/// One consumer on one memory queue: the source of its deliveries and the settler of them.
final class MemoryConsumer: DeliverySource, DeliverySettler {
    let id: UInt64
    let queue: MemoryQueue
    let core: MemoryBrokerCore
    private let closed = Atomic<Bool>(false)
    private let onClose: @Sendable (UInt64) -> Void

    init(id: UInt64, queue: MemoryQueue, core: MemoryBrokerCore, onClose: @escaping @Sendable (UInt64) -> Void) {
        self.id = id
        self.queue = queue
        self.core = core
        self.onClose = onClose
    }

    func next() async throws -> Delivery? {
        if closed.load(ordering: .acquiring) { return nil }
        return try await queue.next(consumer: id, waiterID: InMemoryBroker.nextID(), clock: core.clock) { effects in
            core.apply(effects, from: queue)
        }
    }

    func close() async {
        guard closed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        core.apply(queue.removeConsumer(id, now: core.clock.now), from: queue)
        onClose(id)
    }

    func settle(_ delivery: Delivery, _ outcome: SettleOutcome) async throws {
        switch try queue.settle(tag: delivery.tag, consumer: id, outcome: outcome, now: core.clock.now) {
        case .done(let effects):
            core.apply(effects, from: queue)
        case .delay(let entry, let delay, let effects):
            core.apply(effects, from: queue)
            core.redeliver(entry, after: delay, into: queue)
        }
    }
}
