/// A feature a broker may offer. The conformance suite skips a scenario only when a feature it needs is absent.
///
/// ```swift
/// if broker.capabilities.supports(.priority) { ... }
/// ```
public struct BrokerFeature: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The feature's name, as reports print it.
    public let name: String
    /// Creates a feature by name; adapters may declare their own.
    public init(_ name: String) { self.name = name }

    /// Messages survive a broker restart.
    public static let persistence = BrokerFeature("persistence")
    /// Topic patterns with `*` and `#`.
    public static let wildcardRouting = BrokerFeature("wildcard-routing")
    /// Competing consumers inside a group and a copy per group.
    public static let consumerGroups = BrokerFeature("consumer-groups")
    /// Per-message priority.
    public static let priority = BrokerFeature("priority")
    /// Per-message and per-queue expiration.
    public static let messageTTL = BrokerFeature("message-ttl")
    /// Redelivery after a delay.
    public static let delayedRedelivery = BrokerFeature("delayed-redelivery")
    /// Dead-letter queues.
    public static let deadLetter = BrokerFeature("dead-letter")
    /// Unacknowledged messages are redelivered when a consumer goes away.
    public static let redelivery = BrokerFeature("redelivery")
    /// A bound on unacknowledged messages per consumer.
    public static let prefetch = BrokerFeature("prefetch")
    /// A new group sees messages published before it existed (a retained log).
    public static let replay = BrokerFeature("replay")
    /// Each message is delivered once and only once.
    public static let exactlyOnce = BrokerFeature("exactly-once")
    /// Non-destructive reading of a queue (fetch, then requeue).
    public static let browse = BrokerFeature("browse")
    /// The broker recovers connections and subscriptions after a restart.
    public static let reconnect = BrokerFeature("reconnect")
    /// Bounded queues with an overflow policy.
    public static let maxLength = BrokerFeature("max-length")

    public var description: String { name }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.name < rhs.name }
}

/// The scope in which a broker keeps messages in order.
public struct OrderingScope: Sendable, Hashable, CustomStringConvertible {
    /// The scope's name.
    public let name: String
    private init(_ name: String) { self.name = name }

    /// No order promised.
    public static let none = OrderingScope("none")
    /// Order per queue, for one consumer.
    public static let queue = OrderingScope("queue")
    /// Order per message key (Kafka partitions by key).
    public static let key = OrderingScope("key")

    public var description: String { name }
}

/// What a broker declares it guarantees, and which features it emulates in the adapter.
///
/// ```swift
/// let capabilities = BrokerCapabilities(features: [.wildcardRouting, .consumerGroups], ordering: .queue)
/// ```
public struct BrokerCapabilities: Sendable, Hashable {
    /// The features offered.
    public var features: Set<BrokerFeature>
    /// The subset of ``features`` done by the adapter rather than the broker.
    public var emulated: Set<BrokerFeature>
    /// Where order holds.
    public var ordering: OrderingScope
    /// The largest payload the broker accepts by default, in bytes.
    public var maxPayloadBytes: Int

    /// Creates capabilities.
    public init(features: Set<BrokerFeature>, emulated: Set<BrokerFeature> = [], ordering: OrderingScope, maxPayloadBytes: Int = 16 << 20) {
        self.features = features
        self.emulated = emulated
        self.ordering = ordering
        self.maxPayloadBytes = maxPayloadBytes
    }

    /// Whether a feature is offered (natively or emulated).
    public func supports(_ feature: BrokerFeature) -> Bool {
        features.contains(feature)
    }
}
