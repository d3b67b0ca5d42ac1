/// Options for a subscription.
///
/// Subscribers that share a ``group`` compete for messages (each message goes to one of them);
/// every group, and every subscriber without a group, receives its own copy of each message.
///
/// ```swift
/// let options = SubscribeOptions(group: "billing", prefetch: 20, retry: .exponential(attempts: 5, delay: .milliseconds(100)))
/// let subscription = try await manager.subscribe("orders.#", options: options) { message in
///     try await bill(message)
/// }
/// ```
public struct SubscribeOptions: Sendable, Hashable {
    /// The consumer group. Subscribers of one group share a durable queue named after the group;
    /// without a group the subscription gets a private queue that is deleted when it closes. Default: `nil`.
    public var group: String?
    /// Acknowledge each message as soon as it is delivered (at-most-once). Default: `false`.
    public var autoAck: Bool
    /// The most unacknowledged messages one consumer holds at a time; at least 1. Default: `16`.
    public var prefetch: Int
    /// How many handler calls of this subscription run at once. Default: `1`.
    public var concurrency: Int
    /// What to do when the handler throws: retry with backoff, then dead-letter. Default: `nil`
    /// (a failed message is dead-lettered at once with the handler's error as reason).
    public var retry: RetryPolicy?
    /// Where failed messages go. Default: `nil`, which means a queue named `<queue>.dlq`.
    public var deadLetter: DeadLetterOptions?
    /// A handler call that runs longer fails with reason `timeout`. Default: `nil` (no limit).
    public var handlerTimeout: Duration?
    /// Settings of the queue that the subscription declares. Default: durable for groups, auto-delete without.
    public var queue: QueueOptions?
    /// The exchange to bind to; `nil` means the default topic exchange. Default: `nil`.
    public var exchange: String?

    /// Creates options. Every parameter has the default named on its property.
    public init(
        group: String? = nil,
        autoAck: Bool = false,
        prefetch: Int = 16,
        concurrency: Int = 1,
        retry: RetryPolicy? = nil,
        deadLetter: DeadLetterOptions? = nil,
        handlerTimeout: Duration? = nil,
        queue: QueueOptions? = nil,
        exchange: String? = nil
    ) {
        self.group = group
        self.autoAck = autoAck
        self.prefetch = prefetch
        self.concurrency = concurrency
        self.retry = retry
        self.deadLetter = deadLetter
        self.handlerTimeout = handlerTimeout
        self.queue = queue
        self.exchange = exchange
    }

    /// The default options.
    public static let `default` = SubscribeOptions()

    /// Checks that every option is in range.
    ///
    /// - Throws: ``MessagingError`` with code ``MessagingError/Code/invalidArgument`` naming the option.
    public func validate() throws {
        if prefetch < 1 {
            throw MessagingError(.invalidArgument, "prefetch must be at least 1, got \(prefetch)")
        }
        if concurrency < 1 {
            throw MessagingError(.invalidArgument, "concurrency must be at least 1, got \(concurrency)")
        }
        if let handlerTimeout, handlerTimeout <= .zero {
            throw MessagingError(.invalidArgument, "handlerTimeout must be positive, got \(handlerTimeout)")
        }
        if let group { try TopicPattern.validateName(group, kind: "group") }
        try retry?.validate()
    }
}

/// Options for consuming one queue directly.
///
/// ```swift
/// let stream = try await broker.consume(queue: "emails", options: ConsumeOptions(prefetch: 1))
/// ```
public struct ConsumeOptions: Sendable, Hashable {
    /// The most unacknowledged deliveries this consumer holds. Default: `16`.
    public var prefetch: Int
    /// Settle each delivery as acknowledged when it is handed out. Default: `false`.
    public var autoAck: Bool

    /// Creates options.
    public init(prefetch: Int = 16, autoAck: Bool = false) {
        self.prefetch = prefetch
        self.autoAck = autoAck
    }

    /// Checks that every option is in range.
    public func validate() throws {
        if prefetch < 1 {
            throw MessagingError(.invalidArgument, "prefetch must be at least 1, got \(prefetch)")
        }
    }
}
