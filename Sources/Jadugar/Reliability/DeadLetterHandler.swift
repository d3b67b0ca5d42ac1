import Foundation

/// Counts of a dead-letter queue.
public struct DeadLetterStats: Sendable, Hashable {
    /// Messages in the dead-letter queue.
    public var count: Int
    /// Messages per dead-letter reason (`rejected`, `expired`, `maxlen`, `timeout`, ...).
    public var byReason: [String: Int]
    /// Messages per original topic.
    public var byTopic: [String: Int]
    /// The oldest dead-lettering time.
    public var oldest: Date?
    /// The newest dead-lettering time.
    public var newest: Date?
}

/// Reads a dead-letter queue, adds to it, and sends its messages back where they came from.
///
/// ```swift
/// let dead = DeadLetterHandler(manager, options: DeadLetterOptions(queue: "orders.dlq"))
/// let stats = try await dead.getStats()
/// for message in try await dead.getFailedMessages() where message.topic == "orders.created" {
///     try await dead.retry(message.id)
/// }
/// ```
///
/// - Important: Reading fetches the queue's messages and gives them back, so run one reader of a
///   dead-letter queue at a time.
public final class DeadLetterHandler: Sendable {
    /// The manager used.
    public let manager: MessageManager
    /// The dead-letter queue and where dead letters are published.
    public let options: DeadLetterOptions

    /// Creates a handler.
    public init(_ manager: MessageManager, options: DeadLetterOptions) {
        self.manager = manager
        self.options = options
    }

    private var broker: any MessageBroker { manager.broker }

    /// Dead-letters a message by hand with the error as reason, keeping its original topic.
    public func handle(_ message: Message, error: any Error, reason: String? = nil) async throws {
        try await ensureQueue()
        var letter = message
        var headers = letter.metadata.headers
        headers[JadugarHeader.deadLetterReason] = reason ?? Subscription.deadLetterReason(for: error)
        headers[JadugarHeader.lastError] = String(describing: error)
        if headers[JadugarHeader.originalTopic] == nil { headers[JadugarHeader.originalTopic] = message.topic }
        if headers[JadugarHeader.originalExchange] == nil { headers[JadugarHeader.originalExchange] = manager.options.exchange ?? broker.defaultExchange }
        if headers[JadugarHeader.attempts] == nil { headers[JadugarHeader.attempts] = "1" }
        headers[JadugarHeader.deadLetteredAt] = ISO8601DateFormatter().string(from: Date())
        letter.metadata.headers = headers
        letter.metadata.expiration = nil
        if options.exchange.isEmpty {
            try await broker.send(letter, toQueue: options.queue)
        } else {
            if let key = options.routingKey { letter.topic = key }
            try await broker.publish(letter, options: PublishOptions(exchange: options.exchange))
        }
    }

    /// Sends one dead letter back to its original topic (or queue) and removes it.
    ///
    /// - Throws: ``MessagingError/Code/notFound`` when no dead letter has that id.
    public func retry(_ messageID: String) async throws {
        let found = try await browse { delivery in delivery.message.id == messageID ? true : nil }
        if found == 0 {
            throw MessagingError(.notFound, "no message \(messageID) in dead-letter queue '\(options.queue)'")
        }
    }

    /// Sends every dead letter back; returns how many.
    @discardableResult
    public func retryAll() async throws -> Int {
        try await browse { _ in true }
    }

    /// The dead letters, oldest first, at most `limit`.
    public func getFailedMessages(limit: Int = 10_000) async throws -> [Message] {
        var messages: [Message] = []
        _ = try await browse(limit: limit) { delivery in
            messages.append(delivery.message)
            return nil
        }
        return messages
    }

    /// Counts by reason and topic.
    public func getStats() async throws -> DeadLetterStats {
        let messages = try await getFailedMessages()
        var stats = DeadLetterStats(count: messages.count, byReason: [:], byTopic: [:])
        let formatter = ISO8601DateFormatter()
        for message in messages {
            let headers = message.metadata.headers
            stats.byReason[headers[JadugarHeader.deadLetterReason] ?? "unknown", default: 0] += 1
            stats.byTopic[headers[JadugarHeader.originalTopic] ?? message.topic, default: 0] += 1
            if let date = headers[JadugarHeader.deadLetteredAt].flatMap(formatter.date(from:)) {
                stats.oldest = min(stats.oldest ?? date, date)
                stats.newest = max(stats.newest ?? date, date)
            }
        }
        return stats
    }

    /// Deletes every dead letter; returns how many.
    @discardableResult
    public func purge() async throws -> Int {
        try await ensureQueue()
        return try await broker.purgeQueue(options.queue)
    }

    /// Fetches dead letters one by one; `decide` returns `true` to send one back, `nil` to keep it.
    /// Kept ones are given back in their order. Returns how many were sent back.
    private func browse(limit: Int = .max, _ decide: (Delivery) -> Bool?) async throws -> Int {
        try await ensureQueue()
        var kept: [Delivery] = []
        var resent = 0
        defer {
            let toRelease = kept
            if !toRelease.isEmpty {
                Task { for delivery in toRelease { try? await delivery.nack(requeue: true) } }
            }
        }
        while kept.count + resent < limit, let delivery = try await broker.get(queue: options.queue) {
            if decide(delivery) == true {
                try await send(back: delivery.message)
                try await delivery.ack()
                resent += 1
            } else {
                kept.append(delivery)
            }
        }
        let toRelease = kept
        kept = []
        // Give back newest first so each lands at the head in its old order.
        for delivery in toRelease.reversed() { try await delivery.nack(requeue: true) }
        return resent
    }

    private func send(back letter: Message) async throws {
        var message = letter
        var headers = message.metadata.headers
        let topic = headers[JadugarHeader.originalTopic] ?? message.topic
        let exchange = headers[JadugarHeader.originalExchange] ?? manager.options.exchange ?? broker.defaultExchange
        let queue = headers[JadugarHeader.originalQueue]
        for key in [JadugarHeader.deadLetterReason, JadugarHeader.lastError, JadugarHeader.attempts, JadugarHeader.originalQueue, JadugarHeader.deadLetteredAt, JadugarHeader.originalExchange] {
            headers.removeValue(forKey: key)
        }
        message.metadata.headers = headers
        if exchange.isEmpty, let queue {
            headers.removeValue(forKey: JadugarHeader.originalTopic)
            message.metadata.headers = headers
            try await broker.send(message, toQueue: queue)
        } else {
            message.metadata.headers.removeValue(forKey: JadugarHeader.originalTopic)
            message.topic = topic
            try await broker.publish(message, options: PublishOptions(exchange: exchange))
        }
    }

    private func ensureQueue() async throws {
        try await broker.createQueue(options.queue, options: QueueOptions())
    }
}
