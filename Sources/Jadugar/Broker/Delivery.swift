/// One delivery of a message to a consumer, with the means to settle it.
///
/// A delivery must be settled exactly once: ``ack()`` when handled, ``nack(requeue:delay:)`` to
/// try again, or ``reject(reason:error:)`` to dead-letter it. An unsettled delivery is
/// redelivered when its consumer closes.
///
/// ```swift
/// for try await delivery in stream {
///     do {
///         try await handle(delivery.message)
///         try await delivery.ack()
///     } catch {
///         try await delivery.reject(reason: "rejected", error: "\(error)")
///     }
/// }
/// ```
public struct Delivery: Sendable {
    /// The message.
    public let message: Message
    /// How many times this message has been delivered, this one included (1 the first time).
    public let deliveryCount: Int
    /// The queue it came from.
    public let queue: String
    /// The broker's delivery tag, unique per consumer.
    public let tag: UInt64
    private let settler: any DeliverySettler

    /// Creates a delivery. Broker adapters call this; applications receive deliveries.
    public init(message: Message, deliveryCount: Int, queue: String, tag: UInt64, settler: any DeliverySettler) {
        self.message = message
        self.deliveryCount = deliveryCount
        self.queue = queue
        self.tag = tag
        self.settler = settler
    }

    /// Whether the message was delivered before (to this or another consumer).
    public var redelivered: Bool { deliveryCount > 1 }

    /// Confirms the message was handled; the broker forgets it.
    public func ack() async throws {
        try await settler.settle(self, .ack)
    }

    /// Gives the message back for another delivery, now or after `delay`; with `requeue: false` it is discarded
    /// (or dead-lettered with reason `rejected` when the queue has a dead-letter target).
    public func nack(requeue: Bool = true, delay: Duration? = nil) async throws {
        if let delay, delay < .zero {
            throw MessagingError(.invalidArgument, "a redelivery delay must not be negative, got \(delay)")
        }
        try await settler.settle(self, requeue ? .requeue(delay: delay) : .deadLetter(reason: "rejected", error: nil))
    }

    /// Dead-letters the message with a reason (and the error that caused it), keeping its original topic.
    public func reject(reason: String = "rejected", error: String? = nil) async throws {
        try await settler.settle(self, .deadLetter(reason: reason, error: error))
    }
}

/// How a delivery is settled.
public enum SettleOutcome: Sendable, Hashable {
    /// Handled; forget it.
    case ack
    /// Deliver again, at once or after a delay.
    case requeue(delay: Duration?)
    /// Send to the queue's dead-letter target with a reason and the last error.
    case deadLetter(reason: String, error: String?)
}

/// What a broker adapter implements to settle its deliveries.
public protocol DeliverySettler: Sendable {
    /// Settles one delivery.
    ///
    /// - Important: Called from any task; an adapter forwards the outcome to the connection's own thread.
    func settle(_ delivery: Delivery, _ outcome: SettleOutcome) async throws
}

/// The source behind a ``DeliveryStream``: one consumer on one queue.
public protocol DeliverySource: AnyObject, Sendable {
    /// The next delivery; `nil` when the consumer is closed. Safe to call from several tasks at once.
    func next() async throws -> Delivery?
    /// Stops the consumer; its unsettled deliveries are redelivered to others.
    func close() async
}

/// An asynchronous sequence of deliveries from one consumer.
///
/// Iterate it from one or several tasks; call ``close()`` when done (it also closes when the
/// last reference goes away), and its unsettled deliveries go back to the queue.
///
/// ```swift
/// let stream = try await broker.subscribe("user.*", options: SubscribeOptions(group: "mailer"))
/// for try await delivery in stream {
///     try await delivery.ack()
/// }
/// ```
public struct DeliveryStream: AsyncSequence, Sendable {
    public typealias Element = Delivery

    /// The queue this stream consumes.
    public let queue: String
    private let box: Box

    /// Creates a stream over a source. Adapters call this.
    public init(queue: String, source: any DeliverySource) {
        self.queue = queue
        self.box = Box(source)
    }

    /// Stops the consumer; unsettled deliveries go back to the queue.
    public func close() async {
        await box.source.close()
    }

    /// The next delivery, or `nil` when the stream is closed.
    public func next() async throws -> Delivery? {
        try await box.source.next()
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let box: Box
        public mutating func next() async throws -> Delivery? {
            try await box.source.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(box: box)
    }

    /// Closes the source when the last copy of the stream goes away, so a forgotten stream
    /// cannot hold messages unacknowledged forever.
    final class Box: Sendable {
        let source: any DeliverySource
        init(_ source: any DeliverySource) { self.source = source }
        deinit {
            let source = self.source
            Task { await source.close() }
        }
    }
}
