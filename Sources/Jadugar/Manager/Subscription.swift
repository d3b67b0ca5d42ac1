import CoreMetrics
import Metrics
import Foundation
import Logging
import Synchronization

/// The handler to call for each message.
public typealias MessageHandler = @Sendable (Message) async throws -> Void

/// A running subscription: tasks that take deliveries from a stream, call a handler, and settle
/// each delivery by the handler's outcome (ack; or retry with backoff; or dead-letter with a reason).
///
/// ```swift
/// let subscription = try await manager.subscribe("orders.*", options: SubscribeOptions(group: "billing")) { message in
///     try await bill(message)
/// }
/// // later
/// await subscription.cancel()
/// ```
///
/// - Important: ``cancel()`` lets handlers that are running finish and settle; messages not yet
///   handed to a handler go back to the queue.
public final class Subscription: Sendable {
    /// Counts of what the subscription did.
    public struct Statistics: Sendable, Hashable {
        /// Handler calls that succeeded.
        public var processed: Int
        /// Handler calls that threw.
        public var failed: Int
        /// Messages sent back for a delayed retry.
        public var retried: Int
        /// Messages dead-lettered.
        public var deadLettered: Int
        /// Settlements the broker refused (the message will be redelivered).
        public var settleErrors: Int
    }

    /// The queue consumed.
    public let queue: String
    /// The subscribed pattern or queue.
    public let pattern: String
    private let stream: DeliveryStream
    private let options: SubscribeOptions
    private let handler: MessageHandler
    private let logger: Logger
    private let workers = Mutex<[Task<Void, Never>]>([])
    private let stats = Mutex(Statistics(processed: 0, failed: 0, retried: 0, deadLettered: 0, settleErrors: 0))
    private let active = Atomic<Bool>(true)
    private let gate: PauseGate
    private let broker: String
    private let dimensions: [(String, String)]

    init(pattern: String, stream: DeliveryStream, options: SubscribeOptions, logger: Logger, broker: String, gate: PauseGate = PauseGate(), handler: @escaping MessageHandler) {
        self.pattern = pattern
        self.queue = stream.queue
        self.stream = stream
        self.options = options
        self.handler = handler
        self.logger = logger
        self.gate = gate
        self.broker = broker
        self.dimensions = [("broker", broker), ("queue", stream.queue), ("group", options.group ?? "")]
    }

    private func count(_ name: String, _ extra: (String, String)? = nil) {
        MessagingMetrics.counter(name, extra.map { dimensions + [$0] } ?? dimensions).increment()
    }

    func start() {
        let tasks = (0..<options.concurrency).map { _ in
            Task { [self] in await self.work() }
        }
        workers.withLock { $0 = tasks }
    }

    /// Whether the subscription still takes messages.
    public var isActive: Bool { active.load(ordering: .acquiring) }

    /// What the subscription did so far.
    public var statistics: Statistics { stats.withLock { $0 } }

    /// Stops taking messages, lets running handlers finish and settle, then closes the consumer.
    public func cancel() async {
        guard active.compareExchange(expected: true, desired: false, ordering: .acquiringAndReleasing).exchanged else {
            await wait()
            return
        }
        let tasks = workers.withLock { $0 }
        gate.cancelAll()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        await stream.close()
    }

    /// Waits until every worker has stopped (after ``cancel()`` or when the broker closes the consumer).
    public func wait() async {
        for task in workers.withLock({ $0 }) { await task.value }
    }

    private func work() async {
        while !Task.isCancelled {
            guard await gate.waitUntilOpen() else { break }
            let delivery: Delivery?
            do {
                delivery = try await stream.next()
            } catch {
                logger.warning("subscription stopped", metadata: [LogKey.queue: "\(queue)", LogKey.error: "\(error)"])
                break
            }
            guard let delivery else { break }
            await process(delivery)
        }
    }

    private func process(_ delivery: Delivery) async {
        let message = delivery.message
        count(MessagingMetrics.Name.delivered)
        MessagingMetrics.timer(MessagingMetrics.Name.endToEndLatency, dimensions).recordNanoseconds(Int64(max(0, Date().timeIntervalSince(message.timestamp)) * 1e9))
        let inFlight = MessagingMetrics.meter(MessagingMetrics.Name.inFlight, dimensions)
        inFlight.increment()
        let start = ContinuousClock.now
        defer {
            inFlight.decrement()
            MessagingMetrics.timer(MessagingMetrics.Name.processingDuration, dimensions).record(duration: ContinuousClock.now - start)
        }
        do {
            try await MessageTracing.consuming(message, queue: queue, broker: broker) {
                try await runHandler(message)
            }
            stats.withLock { $0.processed += 1 }
            if !options.autoAck {
                try await settle(delivery, .ack)
                count(MessagingMetrics.Name.acked)
            }
            return
        } catch let error as SettleFailure {
            stats.withLock { $0.settleErrors += 1 }
            logger.warning("the broker refused an acknowledgement; the message will be redelivered", metadata: [LogKey.messageID: "\(message.id)", LogKey.topic: "\(message.topic)", LogKey.error: "\(error.underlying)"])
            return
        } catch {
            stats.withLock { $0.failed += 1 }
            count(MessagingMetrics.Name.handlerErrors, ("code", (error as? MessagingError)?.code.description ?? "handler"))
            await handleFailure(delivery, error: error)
        }
    }

    private func handleFailure(_ delivery: Delivery, error: any Error) async {
        let message = delivery.message
        if options.autoAck {
            logger.error("handler failed on an auto-acknowledged message; it is not redelivered", metadata: [LogKey.messageID: "\(message.id)", LogKey.error: "\(error)"])
            return
        }
        do {
            if error is CancellationError || Task.isCancelled {
                try await settle(delivery, .requeue(delay: nil))
                return
            }
            let reason = Self.deadLetterReason(for: error)
            if let retry = options.retry, !Self.isPermanent(error), retry.allowsRetry(afterAttempt: delivery.deliveryCount) {
                let delay = retry.delay(forRetry: delivery.deliveryCount)
                stats.withLock { $0.retried += 1 }
                count(MessagingMetrics.Name.retried)
                logger.debug("handler failed; retrying", metadata: [LogKey.messageID: "\(message.id)", LogKey.attempt: "\(delivery.deliveryCount)", LogKey.error: "\(error)"])
                try await settle(delivery, .requeue(delay: delay))
            } else {
                stats.withLock { $0.deadLettered += 1 }
                count(MessagingMetrics.Name.deadLettered, ("reason", reason))
                logger.info("handler failed; dead-lettering", metadata: [LogKey.messageID: "\(message.id)", LogKey.reason: "\(reason)", LogKey.error: "\(error)"])
                try await settle(delivery, .deadLetter(reason: reason, error: String(describing: error)))
            }
        } catch {
            stats.withLock { $0.settleErrors += 1 }
            logger.warning("settling a failed message was refused; it will be redelivered", metadata: [LogKey.messageID: "\(message.id)", LogKey.error: "\(error)"])
        }
    }

    private struct SettleFailure: Error { var underlying: any Error }

    private func settle(_ delivery: Delivery, _ outcome: SettleOutcome) async throws {
        do {
            switch outcome {
            case .ack: try await delivery.ack()
            case .requeue(let delay): try await delivery.nack(requeue: true, delay: delay)
            case .deadLetter(let reason, let error): try await delivery.reject(reason: reason, error: error)
            }
        } catch {
            throw SettleFailure(underlying: error)
        }
    }

    private func runHandler(_ message: Message) async throws {
        guard let limit = options.handlerTimeout else {
            try await handler(message)
            return
        }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { [handler] in
                try await handler(message)
                return true
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return false
            }
            defer { group.cancelAll() }
            guard let finished = try await group.next(), finished else {
                throw MessagingError(.timeout, "the handler did not finish within \(limit)")
            }
        }
    }

    static func deadLetterReason(for error: any Error) -> String {
        guard let error = error as? MessagingError else { return "rejected" }
        switch error.code {
        case .timeout: return "timeout"
        case .decodeFailed: return "decode"
        case .integrity: return "integrity"
        case .accessDenied: return "access-denied"
        default: return "rejected"
        }
    }

    /// Errors that another attempt cannot fix: the message itself is bad.
    static func isPermanent(_ error: any Error) -> Bool {
        guard let error = error as? MessagingError else { return false }
        return [.decodeFailed, .integrity, .accessDenied, .invalidArgument].contains(error.code)
    }
}

/// A gate that workers wait at while paused.
final class PauseGate: Sendable {
    private struct State {
        var paused = false
        var cancelled = false
        var waiters: [CheckedContinuation<Bool, Never>] = []
    }
    private let state = Mutex(State())

    init() {}

    var isPaused: Bool { state.withLock { $0.paused } }

    func pause() { state.withLock { $0.paused = true } }

    func resume() {
        let waiters = state.withLock { state in
            state.paused = false
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    func cancelAll() {
        let waiters = state.withLock { state in
            state.cancelled = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: false) }
    }

    /// Returns `true` when open, `false` when the gate was cancelled.
    func waitUntilOpen() async -> Bool {
        await withCheckedContinuation { continuation in
            let answer: Bool? = state.withLock { state in
                if state.cancelled { return false }
                if !state.paused { return true }
                state.waiters.append(continuation)
                return nil
            }
            if let answer { continuation.resume(returning: answer) }
        }
    }
}
