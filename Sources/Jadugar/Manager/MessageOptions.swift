import Logging

/// Settings of a ``MessageManager``: which broker, and the defaults for everything it does.
///
/// ```swift
/// var options = MessageOptions(url: "amqp://app:secret@127.0.0.1:5672/%2f")
/// options.retry = .exponential(attempts: 5, delay: .milliseconds(100))
/// let manager = try MessageManager(options: options)
/// ```
public struct MessageOptions: Sendable {
    /// The broker URL; its scheme selects the broker (`memory://`, `redis://`, `amqp://`, `amqps://`, `kafka://`). Default: `"memory://"`.
    public var url: String
    /// The topic exchange for publish and subscribe; `nil` takes the broker's default. Default: `nil`.
    public var exchange: String?
    /// The queue ``MessageManager/enqueue(_:options:)`` and ``MessageManager/dequeue(options:)`` use without a name. Default: `nil`.
    public var queue: String?
    /// The retry policy of subscriptions whose options name none. Default: `nil` (dead-letter at once).
    public var retry: RetryPolicy?
    /// The dead-letter target of subscriptions whose options name none. Default: `nil` (`<queue>.dlq`).
    public var deadLetter: DeadLetterOptions?
    /// The largest payload accepted; `nil` takes the broker's limit. Default: `nil`.
    public var maxPayloadBytes: Int?
    /// Where the manager logs. Default: a logger that discards everything.
    public var logger: Logger

    /// Creates options.
    public init(
        url: String = "memory://",
        exchange: String? = nil,
        queue: String? = nil,
        retry: RetryPolicy? = nil,
        deadLetter: DeadLetterOptions? = nil,
        maxPayloadBytes: Int? = nil,
        logger: Logger = Logger(label: "jadugar", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.url = url
        self.exchange = exchange
        self.queue = queue
        self.retry = retry
        self.deadLetter = deadLetter
        self.maxPayloadBytes = maxPayloadBytes
        self.logger = logger
    }
}

/// Options of ``MessageManager/enqueue(_:_:options:)``.
///
/// ```swift
/// try await manager.enqueue("emails", task, options: EnqueueOptions(priority: 7))
/// ```
public struct EnqueueOptions: Sendable, Hashable {
    /// The task's priority; honoured when the queue was declared with a ``QueueOptions/maxPriority``. Default: `nil`.
    public var priority: UInt8?
    /// How long the task stays deliverable. Default: `nil`.
    public var expiration: Duration?
    /// Extra headers. Default: empty.
    public var headers: [String: String]
    /// Ask the broker to store the task durably. Default: `true`.
    public var persistent: Bool
    /// Settings used if the queue has to be declared. Default: durable, dead letters to `<queue>.dlq`.
    public var queue: QueueOptions?

    /// Creates options.
    public init(priority: UInt8? = nil, expiration: Duration? = nil, headers: [String: String] = [:], persistent: Bool = true, queue: QueueOptions? = nil) {
        self.priority = priority
        self.expiration = expiration
        self.headers = headers
        self.persistent = persistent
        self.queue = queue
    }
}

/// Options of ``MessageManager/dequeue(_:options:)``.
///
/// ```swift
/// let next = try await manager.dequeue("emails", options: DequeueOptions(wait: .seconds(2)))
/// ```
public struct DequeueOptions: Sendable, Hashable {
    /// How long to wait for a message when the queue is empty; `nil` returns at once. Default: `nil`.
    public var wait: Duration?

    /// Creates options.
    public init(wait: Duration? = nil) {
        self.wait = wait
    }
}
