/// Where a subscription's failed messages go.
///
/// With the default exchange `""`, dead letters go straight into ``queue``; with a named exchange
/// they are published there with ``routingKey`` (or their own topic), and ``queue`` is bound to it.
///
/// ```swift
/// SubscribeOptions(group: "billing", deadLetter: DeadLetterOptions(queue: "billing.failed"))
/// ```
public struct DeadLetterOptions: Sendable, Hashable {
    /// The exchange dead letters are published to. Default: `""` (straight into ``queue``).
    public var exchange: String
    /// The queue that keeps dead letters.
    public var queue: String
    /// The routing key at ``exchange``; `nil` keeps each message's topic. Default: `nil`.
    public var routingKey: String?

    /// Creates options.
    public init(exchange: String = "", queue: String, routingKey: String? = nil) {
        self.exchange = exchange
        self.queue = queue
        self.routingKey = routingKey
    }
}
