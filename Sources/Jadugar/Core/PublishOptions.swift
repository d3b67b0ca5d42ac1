/// Options for one publish.
///
/// Fields left `nil` keep what the message's own metadata says.
///
/// ```swift
/// try await manager.publish("orders.created", message, options: PublishOptions(persistent: true, priority: 5))
/// ```
public struct PublishOptions: Sendable, Hashable {
    /// Ask the broker to store the message durably. Default: `true`.
    public var persistent: Bool
    /// Overrides the message's priority. Default: `nil`.
    public var priority: UInt8?
    /// Overrides the message's expiration. Default: `nil`.
    public var expiration: Duration?
    /// Headers merged over the message's headers. Default: empty.
    public var headers: [String: String]
    /// The exchange to publish to; `nil` means the manager's default topic exchange. Default: `nil`.
    public var exchange: String?
    /// Fail with ``MessagingError/Code/unroutable`` when no queue is bound for the topic. Default: `false`.
    public var mandatory: Bool
    /// Retry a failed publish with this policy before giving up. Default: `nil` (no retry).
    public var retry: RetryPolicy?
    /// Partitioning key for brokers that order per key (Kafka); `nil` uses the correlation id or none. Default: `nil`.
    public var key: String?

    /// Creates options. Every parameter has the default named on its property.
    public init(
        persistent: Bool = true,
        priority: UInt8? = nil,
        expiration: Duration? = nil,
        headers: [String: String] = [:],
        exchange: String? = nil,
        mandatory: Bool = false,
        retry: RetryPolicy? = nil,
        key: String? = nil
    ) {
        self.persistent = persistent
        self.priority = priority
        self.expiration = expiration
        self.headers = headers
        self.exchange = exchange
        self.mandatory = mandatory
        self.retry = retry
        self.key = key
    }

    /// The default options.
    public static let `default` = PublishOptions()

    /// Applies the overrides to a message's metadata.
    func apply(to message: inout Message) {
        if let priority { message.metadata.priority = priority }
        if let expiration { message.metadata.expiration = expiration }
        if !headers.isEmpty { message.metadata.headers.merge(headers) { _, new in new } }
    }
}
