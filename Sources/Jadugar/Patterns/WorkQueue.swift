import Foundation
import Synchronization

/// Options of a work queue's workers.
///
/// ```swift
/// try await queue.process(options: ProcessOptions(concurrency: 8, retry: .fixed(attempts: 3, delay: .seconds(1)))) { task in ... }
/// ```
public struct ProcessOptions: Sendable, Hashable {
    /// Tasks handled at once. Default: `1`.
    public var concurrency: Int
    /// Tasks fetched ahead per worker set. Default: `concurrency`.
    public var prefetch: Int?
    /// Retry policy for failing tasks. Default: `nil` (dead-letter at once).
    public var retry: RetryPolicy?
    /// A task running longer fails with reason `timeout`. Default: `nil`.
    public var timeout: Duration?

    /// Creates options.
    public init(concurrency: Int = 1, prefetch: Int? = nil, retry: RetryPolicy? = nil, timeout: Duration? = nil) {
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.retry = retry
        self.timeout = timeout
    }
}

/// A work queue's state, with the queue's counts from the broker.
public struct QueueStatus: Sendable, Hashable {
    /// The queue's name.
    public var name: String
    /// Tasks waiting in the broker.
    public var pending: Int
    /// Tasks delivered and not yet settled (all consumers).
    public var inFlight: Int
    /// Tasks waiting for a delayed retry.
    public var delayed: Int
    /// Consumers attached.
    public var consumers: Int
    /// Whether this work queue's workers are paused.
    public var isPaused: Bool
}

/// A work queue's throughput and outcomes since ``WorkQueue/process(options:handler:)`` started.
public struct QueueMetrics: Sendable, Hashable {
    /// Tasks enqueued through this object.
    public var enqueued: Int
    /// Tasks handled successfully.
    public var processed: Int
    /// Handler calls that threw.
    public var failed: Int
    /// Tasks sent back for retry.
    public var retried: Int
    /// Tasks dead-lettered.
    public var deadLettered: Int
    /// Mean handler time.
    public var averageProcessingTime: Duration
    /// Processed tasks per second since processing started.
    public var throughput: Double
}

/// A work queue: producers enqueue tasks, competing workers process each task once.
///
/// ```swift
/// let emails = WorkQueue(manager, name: "emails")
/// try await emails.enqueue(Message(json: email))
/// try await emails.process(options: ProcessOptions(concurrency: 4)) { task in
///     try await send(try task.decode(Email.self))
/// }
/// await emails.pause()
/// ```
public final class WorkQueue: Sendable {
    private struct State {
        var subscription: Subscription?
        var enqueued = 0
        var processed = 0
        var failedTotal = 0
        var busy: Duration = .zero
        var startedAt: ContinuousClock.Instant?
    }

    /// The manager used.
    public let manager: MessageManager
    /// The queue's name.
    public let name: String
    /// The queue's settings, used when it is declared.
    public let queueOptions: QueueOptions?
    private let state = Mutex(State())
    private let gate = PauseGate()

    /// Creates a work queue over a manager.
    ///
    /// - Parameters:
    ///   - manager: The connection.
    ///   - name: The queue.
    ///   - queueOptions: Settings if the queue must be declared (for example ``QueueOptions/maxPriority``). Default: durable with `<name>.dlq`.
    public init(_ manager: MessageManager, name: String, queueOptions: QueueOptions? = nil) {
        self.manager = manager
        self.name = name
        self.queueOptions = queueOptions
    }

    /// Adds a task.
    public func enqueue(_ task: Message, options: EnqueueOptions = EnqueueOptions()) async throws {
        var options = options
        if options.queue == nil { options.queue = queueOptions }
        try await manager.enqueue(name, task, options: options)
        state.withLock { $0.enqueued += 1 }
    }

    /// Adds a task whose payload is a value encoded as JSON.
    public func enqueue<Value: Encodable>(json value: Value, options: EnqueueOptions = EnqueueOptions()) async throws {
        try await enqueue(Message(json: value), options: options)
    }

    /// Starts workers; returns once they are consuming. Calling it again replaces nothing: it fails.
    ///
    /// - Throws: ``MessagingError/Code/alreadyExists`` when this work queue is already processing.
    public func process(options: ProcessOptions = ProcessOptions(), handler: @escaping MessageHandler) async throws {
        if state.withLock({ $0.subscription != nil }) {
            throw MessagingError(.alreadyExists, "work queue '\(name)' is already processing; cancel() it first")
        }
        try await manager.declareQueue(name, options: queueOptions)
        let subscribeOptions = SubscribeOptions(
            prefetch: options.prefetch ?? options.concurrency, concurrency: options.concurrency,
            retry: options.retry, handlerTimeout: options.timeout
        )
        let subscription = try await manager.consume(queue: name, options: subscribeOptions, gate: gate) { [weak self] task in
            let start = ContinuousClock.now
            defer {
                let elapsed = ContinuousClock.now - start
                self?.state.withLock { $0.busy += elapsed }
            }
            try await handler(task)
        }
        state.withLock {
            $0.subscription = subscription
            $0.startedAt = .now
        }
    }

    /// Stops workers from taking new tasks; running tasks finish.
    public func pause() async {
        gate.pause()
    }

    /// Lets paused workers take tasks again.
    public func resume() async {
        gate.resume()
    }

    /// Removes every waiting task; returns how many.
    @discardableResult
    public func clear() async throws -> Int {
        try await manager.declareQueue(name, options: queueOptions)
        return try await manager.broker.purgeQueue(name)
    }

    /// Stops the workers; tasks not yet handled stay in the queue.
    public func cancel() async {
        let subscription = state.withLock { state in
            defer { state.subscription = nil }
            return state.subscription
        }
        gate.resume()
        await subscription?.cancel()
    }

    /// The queue's counts from the broker and whether workers are paused.
    public func getStatus() async throws -> QueueStatus {
        let info = try await manager.broker.queueInfo(name)
        return QueueStatus(name: name, pending: info.ready, inFlight: info.unacknowledged, delayed: info.delayed, consumers: info.consumers, isPaused: gate.isPaused)
    }

    /// Throughput and outcomes of this object's workers.
    public func getMetrics() -> QueueMetrics {
        let (snapshot, statistics) = state.withLock { ($0, $0.subscription?.statistics) }
        let handled = (statistics?.processed ?? 0) + (statistics?.failed ?? 0)
        let elapsed = snapshot.startedAt.map { ContinuousClock.now - $0 } ?? .zero
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return QueueMetrics(
            enqueued: snapshot.enqueued,
            processed: statistics?.processed ?? 0,
            failed: statistics?.failed ?? 0,
            retried: statistics?.retried ?? 0,
            deadLettered: statistics?.deadLettered ?? 0,
            averageProcessingTime: handled > 0 ? snapshot.busy / handled : .zero,
            throughput: seconds > 0 ? Double(statistics?.processed ?? 0) / seconds : 0
        )
    }
}
