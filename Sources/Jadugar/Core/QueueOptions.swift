/// Settings of a queue: durability, lifetime, limits and where its dead letters go.
///
/// ```swift
/// try await broker.createQueue("emails", options: QueueOptions(maxLength: 10_000, deadLetter: .queue("emails.dlq")))
/// ```
public struct QueueOptions: Sendable, Hashable {
    /// Survive a broker restart (on brokers that persist). Default: `true`.
    public var durable: Bool
    /// Used by one connection only and deleted when it disconnects. Default: `false`.
    public var exclusive: Bool
    /// Deleted when its last consumer goes away. Default: `false`.
    public var autoDelete: Bool
    /// The highest priority the queue honours (0 disables priorities; at most 255). Default: `0`.
    public var maxPriority: UInt8
    /// Messages older than this are dead-lettered with reason `expired`. Default: `nil`.
    public var messageTTL: Duration?
    /// The most messages ready in the queue; `nil` takes the broker's own limit. Default: `nil`.
    public var maxLength: Int?
    /// What happens to a message that would exceed ``maxLength``. Default: ``OverflowPolicy/rejectPublish``.
    public var overflow: OverflowPolicy
    /// Where rejected, expired and dropped messages go. Default: `nil` (they are discarded).
    public var deadLetter: DeadLetterTarget?
    /// A broker-specific queue kind, for example `"quorum"` on RabbitMQ. Default: `nil`.
    public var kind: String?

    /// Creates options. Every parameter has the default named on its property.
    public init(
        durable: Bool = true,
        exclusive: Bool = false,
        autoDelete: Bool = false,
        maxPriority: UInt8 = 0,
        messageTTL: Duration? = nil,
        maxLength: Int? = nil,
        overflow: OverflowPolicy = .rejectPublish,
        deadLetter: DeadLetterTarget? = nil,
        kind: String? = nil
    ) {
        self.durable = durable
        self.exclusive = exclusive
        self.autoDelete = autoDelete
        self.maxPriority = maxPriority
        self.messageTTL = messageTTL
        self.maxLength = maxLength
        self.overflow = overflow
        self.deadLetter = deadLetter
        self.kind = kind
    }

    /// The default options.
    public static let `default` = QueueOptions()

    /// Checks that every option is in range.
    public func validate() throws {
        if let maxLength, maxLength < 1 {
            throw MessagingError(.invalidArgument, "maxLength must be at least 1, got \(maxLength)")
        }
        if let messageTTL, messageTTL <= .zero {
            throw MessagingError(.invalidArgument, "messageTTL must be positive, got \(messageTTL)")
        }
    }
}

/// What a full queue does with one more message.
///
/// ```swift
/// QueueOptions(maxLength: 1_000, overflow: .dropHead)
/// ```
public struct OverflowPolicy: Sendable, Hashable, CustomStringConvertible {
    private enum Base: String, Sendable, Hashable { case rejectPublish = "reject-publish", dropHead = "drop-head" }
    private let base: Base

    /// The publish fails with ``MessagingError/Code/queueFull``; the publisher keeps the message.
    public static let rejectPublish = OverflowPolicy(base: .rejectPublish)
    /// The oldest message is dead-lettered with reason `maxlen` to make room.
    public static let dropHead = OverflowPolicy(base: .dropHead)

    public var description: String { base.rawValue }
}

/// Where a queue's dead letters go: an exchange and a routing key.
///
/// ```swift
/// let target = DeadLetterTarget.queue("orders.dlq") // straight into one queue
/// ```
public struct DeadLetterTarget: Sendable, Hashable {
    /// The exchange; `""` is the default exchange, which routes to the queue named by the key.
    public var exchange: String
    /// The routing key; `nil` keeps the message's own topic.
    public var routingKey: String?

    /// Creates a target.
    public init(exchange: String, routingKey: String?) {
        self.exchange = exchange
        self.routingKey = routingKey
    }

    /// Dead letters go straight into the named queue.
    public static func queue(_ name: String) -> DeadLetterTarget {
        DeadLetterTarget(exchange: "", routingKey: name)
    }
}

/// Settings of an exchange.
///
/// ```swift
/// try await broker.createExchange("audit", options: ExchangeOptions(type: .fanout))
/// ```
public struct ExchangeOptions: Sendable, Hashable {
    /// How the exchange routes. Default: ``ExchangeType/topic``.
    public var type: ExchangeType
    /// Survive a broker restart. Default: `true`.
    public var durable: Bool
    /// Deleted when its last binding goes. Default: `false`.
    public var autoDelete: Bool

    /// Creates options.
    public init(type: ExchangeType = .topic, durable: Bool = true, autoDelete: Bool = false) {
        self.type = type
        self.durable = durable
        self.autoDelete = autoDelete
    }

    /// The default options.
    public static let `default` = ExchangeOptions()
}

/// How an exchange routes messages to bound queues.
public struct ExchangeType: Sendable, Hashable, CustomStringConvertible {
    /// The name brokers use: `direct`, `topic`, `fanout`, `headers`.
    public let name: String
    private init(_ name: String) { self.name = name }

    /// The routing key must equal the binding key.
    public static let direct = ExchangeType("direct")
    /// The binding key is a pattern with `*` and `#`.
    public static let topic = ExchangeType("topic")
    /// Every bound queue gets every message.
    public static let fanout = ExchangeType("fanout")
    /// Routing by headers (binding key `key=value[,key=value]`, all must match).
    public static let headers = ExchangeType("headers")

    public var description: String { name }
}

/// Counts a broker reports for a queue.
public struct QueueInfo: Sendable, Hashable {
    /// The queue's name.
    public var name: String
    /// Messages ready for delivery.
    public var ready: Int
    /// Messages delivered and not yet settled.
    public var unacknowledged: Int
    /// Messages waiting for a delayed redelivery, where the broker can tell.
    public var delayed: Int
    /// Consumers attached now.
    public var consumers: Int

    /// Creates counts.
    public init(name: String, ready: Int, unacknowledged: Int, delayed: Int = 0, consumers: Int) {
        self.name = name
        self.ready = ready
        self.unacknowledged = unacknowledged
        self.delayed = delayed
        self.consumers = consumers
    }
}
