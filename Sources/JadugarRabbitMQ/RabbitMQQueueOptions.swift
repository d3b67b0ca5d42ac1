import Jadugar

/// Settings of a RabbitMQ queue for ``RabbitMQBroker/assertQueue(_:options:)``: everything
/// ``QueueOptions`` has, plus what only RabbitMQ offers (queue type, byte limits, expiry,
/// single active consumer, extra arguments).
///
/// ```swift
/// var options = RabbitMQQueueOptions(type: .quorum)
/// options.deadLetterExchange = ""
/// options.deadLetterRoutingKey = "orders.dlq"
/// try await broker.assertQueue("orders", options: options)
/// ```
public struct RabbitMQQueueOptions: Sendable, Hashable {
    /// The queue type (`x-queue-type`). Default: ``RabbitMQQueueType/classic``.
    public var type: RabbitMQQueueType
    /// Survive a broker restart. Default: `true`.
    public var durable: Bool
    /// Owned by this client's connection and deleted with it. Default: `false`.
    public var exclusive: Bool
    /// Deleted when its last consumer goes. Default: `false`.
    public var autoDelete: Bool
    /// The highest priority honoured (`x-max-priority`; classic queues only); 0 disables priorities. Default: `0`.
    public var maxPriority: UInt8
    /// Messages older than this are dead-lettered with reason `expired` (`x-message-ttl`). Default: `nil`.
    public var messageTTL: Duration?
    /// The most ready messages (`x-max-length`). Default: `nil`.
    public var maxLength: Int?
    /// The most bytes of ready message bodies (`x-max-length-bytes`). Default: `nil`.
    public var maxLengthBytes: Int?
    /// What happens past a limit (`x-overflow`). Default: ``RabbitMQOverflow/dropHead`` (RabbitMQ's own default).
    public var overflow: RabbitMQOverflow
    /// The exchange dead letters go to (`x-dead-letter-exchange`; `""` is the default exchange). Default: `nil` (none).
    public var deadLetterExchange: String?
    /// The routing key of dead letters (`x-dead-letter-routing-key`); `nil` keeps each message's own. Default: `nil`.
    public var deadLetterRoutingKey: String?
    /// Delete the queue after it has been unused this long (`x-expires`). Default: `nil`.
    public var expires: Duration?
    /// Deliver to one consumer at a time, failing over to the next (`x-single-active-consumer`). Default: `false`.
    public var singleActiveConsumer: Bool
    /// Quorum queues: dead-letter a message after this many deliveries (`x-delivery-limit`). Default: `nil`.
    public var deliveryLimit: Int?
    /// More `x-` arguments, passed as given. Default: empty.
    public var arguments: [String: RabbitMQArgument]

    /// Creates options. Every parameter has the default named on its property.
    public init(
        type: RabbitMQQueueType = .classic,
        durable: Bool = true,
        exclusive: Bool = false,
        autoDelete: Bool = false,
        maxPriority: UInt8 = 0,
        messageTTL: Duration? = nil,
        maxLength: Int? = nil,
        maxLengthBytes: Int? = nil,
        overflow: RabbitMQOverflow = .dropHead,
        deadLetterExchange: String? = nil,
        deadLetterRoutingKey: String? = nil,
        expires: Duration? = nil,
        singleActiveConsumer: Bool = false,
        deliveryLimit: Int? = nil,
        arguments: [String: RabbitMQArgument] = [:]
    ) {
        self.type = type
        self.durable = durable
        self.exclusive = exclusive
        self.autoDelete = autoDelete
        self.maxPriority = maxPriority
        self.messageTTL = messageTTL
        self.maxLength = maxLength
        self.maxLengthBytes = maxLengthBytes
        self.overflow = overflow
        self.deadLetterExchange = deadLetterExchange
        self.deadLetterRoutingKey = deadLetterRoutingKey
        self.expires = expires
        self.singleActiveConsumer = singleActiveConsumer
        self.deliveryLimit = deliveryLimit
        self.arguments = arguments
    }

    /// The RabbitMQ form of broker-neutral ``QueueOptions``: `kind` names the queue type
    /// (`"quorum"`, `"classic"`, `"stream"`), `overflow` maps to `x-overflow` when `maxLength` is set.
    ///
    /// ```swift
    /// let options = RabbitMQQueueOptions(QueueOptions(maxLength: 100, deadLetter: .queue("jobs.dlq")))
    /// ```
    public init(_ options: QueueOptions) {
        self.init(
            type: options.kind.map { RabbitMQQueueType(name: $0) } ?? .classic,
            durable: options.durable,
            exclusive: options.exclusive,
            autoDelete: options.autoDelete,
            maxPriority: options.maxPriority,
            messageTTL: options.messageTTL,
            maxLength: options.maxLength,
            overflow: options.overflow == .dropHead ? .dropHead : .rejectPublish,
            deadLetterExchange: options.deadLetter?.exchange,
            deadLetterRoutingKey: options.deadLetter?.routingKey
        )
    }

    /// Checks the options against each other.
    func validate(name: String) throws {
        if type == .quorum, !durable || exclusive || autoDelete {
            throw MessagingError(.invalidArgument, "quorum queue '\(name)' must be durable, not exclusive and not auto-delete")
        }
        if type == .quorum, maxPriority > 0 {
            throw MessagingError(.invalidArgument, "quorum queue '\(name)' cannot have priorities on this RabbitMQ version; use a classic queue")
        }
        if let maxLength, maxLength < 0 { throw MessagingError(.invalidArgument, "maxLength must not be negative, got \(maxLength)") }
        if let maxLengthBytes, maxLengthBytes < 0 { throw MessagingError(.invalidArgument, "maxLengthBytes must not be negative, got \(maxLengthBytes)") }
        if let messageTTL, messageTTL < .zero { throw MessagingError(.invalidArgument, "messageTTL must not be negative, got \(messageTTL)") }
        if let expires, expires <= .zero { throw MessagingError(.invalidArgument, "expires must be positive, got \(expires)") }
        if deadLetterRoutingKey != nil, deadLetterExchange == nil {
            throw MessagingError(.invalidArgument, "queue '\(name)' names a dead-letter routing key but no dead-letter exchange")
        }
    }

    /// The `queue.declare` arguments.
    var amqpArguments: [AMQPTableEntry] {
        var entries: [AMQPTableEntry] = []
        if type != .classic { entries.append(AMQPTableEntry("x-queue-type", .string(type.name))) }
        if maxPriority > 0 { entries.append(AMQPTableEntry("x-max-priority", .int(Int64(maxPriority)))) }
        if let messageTTL { entries.append(AMQPTableEntry("x-message-ttl", .int(AMQPEnvelope.milliseconds(rounding: messageTTL)))) }
        if let maxLength { entries.append(AMQPTableEntry("x-max-length", .int(Int64(maxLength)))) }
        if let maxLengthBytes { entries.append(AMQPTableEntry("x-max-length-bytes", .int(Int64(maxLengthBytes)))) }
        if maxLength != nil || maxLengthBytes != nil { entries.append(AMQPTableEntry("x-overflow", .string(overflow.name))) }
        if let deadLetterExchange { entries.append(AMQPTableEntry("x-dead-letter-exchange", .string(deadLetterExchange))) }
        if let deadLetterRoutingKey { entries.append(AMQPTableEntry("x-dead-letter-routing-key", .string(deadLetterRoutingKey))) }
        if let expires { entries.append(AMQPTableEntry("x-expires", .int(AMQPEnvelope.milliseconds(rounding: expires)))) }
        if singleActiveConsumer { entries.append(AMQPTableEntry("x-single-active-consumer", .bool(true))) }
        if let deliveryLimit { entries.append(AMQPTableEntry("x-delivery-limit", .int(Int64(deliveryLimit)))) }
        for key in arguments.keys.sorted() { entries.append(AMQPTableEntry(key, arguments[key]!.value)) }
        return entries
    }

    /// Where the queue dead-letters, in Jadugar's terms.
    var deadLetterTarget: DeadLetterTarget? {
        deadLetterExchange.map { DeadLetterTarget(exchange: $0, routingKey: deadLetterRoutingKey) }
    }
}

/// A RabbitMQ queue type.
///
/// ```swift
/// RabbitMQQueueOptions(type: .quorum)
/// ```
public struct RabbitMQQueueType: Sendable, Hashable, CustomStringConvertible {
    /// The `x-queue-type` value.
    public let name: String
    /// Creates a type by name, for types this adapter does not list.
    public init(name: String) { self.name = name }

    /// The classic queue: priorities, exclusive and auto-delete queues.
    public static let classic = RabbitMQQueueType(name: "classic")
    /// The replicated Raft queue: durable only; counts deliveries (`x-delivery-count`).
    public static let quorum = RabbitMQQueueType(name: "quorum")

    public var description: String { name }
}

/// What a full RabbitMQ queue does (`x-overflow`).
///
/// ```swift
/// RabbitMQQueueOptions(maxLength: 1, overflow: .rejectPublish)
/// ```
public struct RabbitMQOverflow: Sendable, Hashable, CustomStringConvertible {
    /// The `x-overflow` value.
    public let name: String
    private init(_ name: String) { self.name = name }

    /// The oldest message is dropped (or dead-lettered with reason `maxlen`).
    public static let dropHead = RabbitMQOverflow("drop-head")
    /// The new message is refused: a confirmed publish fails with a `basic.nack`.
    public static let rejectPublish = RabbitMQOverflow("reject-publish")
    /// Like ``rejectPublish``, and the refused message is dead-lettered.
    public static let rejectPublishDeadLetter = RabbitMQOverflow("reject-publish-dlx")

    public var description: String { name }
}

/// A value of a queue, exchange or binding argument.
///
/// ```swift
/// options.arguments["x-queue-mode"] = .string("lazy")
/// ```
public struct RabbitMQArgument: Sendable, Hashable {
    let value: AMQPFieldValue
    private init(_ value: AMQPFieldValue) { self.value = value }

    /// A text value.
    public static func string(_ text: String) -> RabbitMQArgument { RabbitMQArgument(.string(text)) }
    /// An integer value (sent as a signed 64-bit `long`).
    public static func int(_ number: Int) -> RabbitMQArgument { RabbitMQArgument(.int(Int64(number))) }
    /// A boolean value.
    public static func bool(_ flag: Bool) -> RabbitMQArgument { RabbitMQArgument(.bool(flag)) }
}

/// The counts a queue declaration returns.
public struct RabbitMQQueueState: Sendable, Hashable {
    /// The queue's name (the broker's choice when declared with an empty name).
    public var name: String
    /// Messages ready for delivery.
    public var messageCount: Int
    /// Consumers attached.
    public var consumerCount: Int
}
