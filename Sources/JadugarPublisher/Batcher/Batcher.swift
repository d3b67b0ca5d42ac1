import Atomics
import DequeModule
import Atomics
import Dispatch

/// Carries items from any number of submitters to one dedicated I/O thread that writes them to a
/// ``BatchSink`` in batches.
///
/// `submit(_:)` pushes the item into a bounded lock-free ring (``MPSCRingBuffer``) and suspends the
/// calling task, without blocking its thread, until the sink reports the item confirmed or failed.
/// The I/O thread, a POSIX thread of its own rather than one of Swift's cooperative pool, takes up
/// to ``BatcherConfiguration/maxBatch`` items at a time, waiting at most
/// ``BatcherConfiguration/maxDelay`` for a batch to fill, and hands them to the sink. When idle, it
/// sleeps until the next submit.
///
/// When the ring is full, the ``BatcherConfiguration/backpressure`` policy applies: `.suspend`
/// queues submitters in arrival order until there is room; `.failFast` throws
/// ``PublisherError/Code/bufferFull``.
///
/// ```swift
/// let batcher = Batcher<Envelope>(configuration: .init(maxBatch: 128), sink: RedisStreamSink(connection))
/// batcher.start()
/// try await batcher.submit(envelope)          // returns once Redis has the entry
/// try batcher.submitNoWait(otherEnvelope)     // returns at once
/// await batcher.shutdown(drain: true)         // writes what is buffered, then stops
/// ```
///
/// - Important: The sink is moved to the I/O thread and used only there. Every item is either
///   written or failed (``PublisherError/Code/shutdown``) by the time ``shutdown(drain:)`` returns;
///   submits after shutdown began throw ``PublisherError/Code/closed``. The I/O thread keeps the
///   batcher alive until it is shut down, so always shut it down.
public final class Batcher<Item: Sendable>: Sendable {
    /// The configuration the batcher was created with (with `maxBatch` clamped to the capacity).
    ///
    /// ```swift
    /// print(batcher.configuration.maxBatch)
    /// ```
    public let configuration: BatcherConfiguration

    let ring: MPSCRingBuffer<_BatchEntry<Item>>
    let parker = _Parker()
    let lifecycle = LockedValueBox(Lifecycle())
    let overflow = LockedValueBox(Overflow())
    /// Mirrors `overflow.waiters.count`, written under the lock, so that the hot paths can see
    /// whether anyone waits without taking it.
    let overflowCount = ManagedAtomic<Int>(0)
    let waiterIDs = ManagedAtomic<UInt64>(0)
    let sinkBox: _SinkBox<Item>

    /// Creates a batcher that writes to `sink`. Call ``start()`` or ``run()`` to start its I/O thread.
    ///
    /// Items submitted before the thread starts wait in the buffer.
    ///
    /// ```swift
    /// let batcher = Batcher(configuration: .init(maxDelay: .microseconds(50)), sink: sink)
    /// ```
    ///
    /// - Parameters:
    ///   - configuration: Capacity, batch size, delay and backpressure. Default: `.init()`.
    ///   - sink: Where batches are written; moved to the I/O thread.
    public init(configuration: BatcherConfiguration = .init(), sink: sending some BatchSink<Item>) {
        precondition(configuration.capacity > 0, "BatcherConfiguration.capacity must be positive")
        precondition(configuration.maxBatch > 0, "BatcherConfiguration.maxBatch must be positive")
        let ring = MPSCRingBuffer<_BatchEntry<Item>>(minimumCapacity: configuration.capacity)
        var configuration = configuration
        configuration.capacity = ring.capacity
        configuration.maxBatch = min(configuration.maxBatch, ring.capacity)
        self.configuration = configuration
        self.ring = ring
        self.sinkBox = _SinkBox(sink)
    }

    /// Creates a batcher that writes each batch with a closure.
    ///
    /// Returning confirms every item of the batch; throwing fails them all.
    ///
    /// ```swift
    /// let batcher = Batcher<Data>(configuration: .init()) { batch in
    ///     try socket.writeAll(batch)
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - configuration: Capacity, batch size, delay and backpressure. Default: `.init()`.
    ///   - write: Called on the I/O thread with each batch's items.
    public convenience init(
        configuration: BatcherConfiguration = .init(),
        write: sending @escaping (inout [Item]) throws -> Void
    ) {
        self.init(configuration: configuration, sink: ClosureBatchSink(write))
    }

    deinit {
        // Only reachable if the thread never ran (it keeps `self` alive while it runs): fail what a
        // fire-and-forget submitter left, rather than drop it without a word. An awaiting submitter
        // keeps the batcher alive, so no continuation can be here.
        while let entry = self.ring.tryPop() {
            entry.continuation?.resume(throwing: PublisherError.shutdown())
        }
    }

    /// Starts the I/O thread.
    ///
    /// ```swift
    /// batcher.start()
    /// ```
    ///
    /// - Important: Call it once. Calling it after ``shutdown(drain:)`` does nothing.
    public func start() {
        switch self.lifecycle.withLock({ $0.start() }) {
        case .spawnThread: self.spawnIOThread()
        case .none: break
        }
    }

    /// Starts the I/O thread and waits until the batcher has shut down; cancelling the calling task
    /// shuts it down, writing what is buffered.
    ///
    /// The shape of swift-service-lifecycle's `Service.run()`.
    ///
    /// ```swift
    /// try await withThrowingDiscardingTaskGroup { group in
    ///     group.addTask { await batcher.run() }
    ///     try await batcher.submit(envelope)
    ///     group.cancelAll()
    /// }
    /// ```
    public func run() async {
        self.start()
        await withTaskCancellationHandler {
            await self.waitForTermination()
        } onCancel: {
            self.beginShutdown(drain: true)
        }
    }

    /// Submits an item and waits until the sink reports it confirmed or failed.
    ///
    /// Does not block the calling thread. If the buffer is full, the backpressure policy decides:
    /// `.suspend` waits for room in arrival order, `.failFast` throws.
    ///
    /// ```swift
    /// try await batcher.submit(envelope)
    /// ```
    ///
    /// - Parameter item: The item to write.
    /// - Throws: The sink's error if the write failed; ``PublisherError`` with code `bufferFull`
    ///   (`.failFast` only), `closed` (submitted after shutdown began) or `shutdown` (buffered, then
    ///   shut down without draining); `CancellationError` if the task is cancelled while waiting
    ///   for room (once in the buffer, an item is written whatever happens to its task).
    public func submit(_ item: Item) async throws {
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if let error = self.pushFast(_BatchEntry(item: item, continuation: continuation)) {
                    continuation.resume(throwing: error)
                }
            }
        } catch is _WaitForRoom {
            try await self.submitWaitingForRoom(item)
        }
    }

    /// Submits an item without waiting for it to be written.
    ///
    /// Never waits, whatever the backpressure policy. The item's result is not reported.
    ///
    /// ```swift
    /// try batcher.submitNoWait(metricsSample)
    /// ```
    ///
    /// - Parameter item: The item to write.
    /// - Throws: ``PublisherError`` with code `bufferFull` if the buffer is full or submitters are
    ///   waiting for room, or `closed` after shutdown began.
    public func submitNoWait(_ item: Item) throws {
        if self.overflowCount.load(ordering: .relaxed) == 0,
            self.ring.tryPush(_BatchEntry(item: item, continuation: nil))
        {
            self.parker.unpark()
            return
        }
        if self.ring.isClosed { throw PublisherError.closed("batcher") }
        throw PublisherError.bufferFull(capacity: self.configuration.capacity, policy: "fire-and-forget never waits")
    }

    /// Stops accepting items, settles the buffered ones, and waits for the I/O thread to finish.
    ///
    /// With `drain: true` every buffered item (and every submitter waiting for room) is written
    /// through the sink; with `drain: false` they fail with ``PublisherError/Code/shutdown``. A batch
    /// being written when shutdown starts completes either way. Then the sink's ``BatchSink/close()``
    /// runs. Calling it again, or concurrently, waits for the same shutdown.
    ///
    /// ```swift
    /// await batcher.shutdown(drain: true)
    /// ```
    ///
    /// - Parameter drain: Whether to write buffered items (`true`) or fail them. Default: `true`.
    public func shutdown(drain: Bool = true) async {
        self.beginShutdown(drain: drain)
        await self.waitForTermination()
    }

    /// The number of items buffered and not yet taken by the I/O thread, including submitters
    /// waiting for room: a snapshot.
    ///
    /// ```swift
    /// gauge.record(batcher.bufferedCount)
    /// ```
    public var bufferedCount: Int {
        self.ring.count + self.overflowCount.load(ordering: .relaxed)
    }

    // MARK: - Internals

    /// Pushes an entry into the ring if nobody waits for room; returns why not otherwise.
    @inline(__always)
    private func pushFast(_ entry: __owned _BatchEntry<Item>) -> (any Error)? {
        if self.overflowCount.load(ordering: .relaxed) == 0, self.ring.tryPush(entry) {
            self.parker.unpark()
            return nil
        }
        if self.ring.isClosed { return PublisherError.closed("batcher") }
        if self.configuration.backpressure == .failFast {
            return PublisherError.bufferFull(capacity: self.configuration.capacity, policy: "failFast")
        }
        return _WaitForRoom()
    }

    private func submitWaitingForRoom(_ item: Item) async throws {
        let id = self.waiterIDs.wrappingIncrementThenLoad(ordering: .relaxed)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let entry = _BatchEntry(item: item, continuation: continuation)
                let action = self.overflow.withLock { overflow in
                    let action = overflow.enqueue(entry, id: id, ring: self.ring)
                    self.overflowCount.store(overflow.waiters.count, ordering: .sequentiallyConsistent)
                    return action
                }
                switch action {
                case .pushedToRing, .queued:
                    self.parker.unpark()
                case .fail(let error):
                    continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            let entry = self.overflow.withLock { overflow in
                let entry = overflow.cancel(id: id)
                self.overflowCount.store(overflow.waiters.count, ordering: .sequentiallyConsistent)
                return entry
            }
            entry?.continuation?.resume(throwing: CancellationError())
        }
    }

    func beginShutdown(drain: Bool) {
        let action = self.lifecycle.withLock { $0.shutdown(drain: drain) }
        let drain: Bool
        switch action {
        case .none: return
        case .closeAndSpawnThread(let value), .closeAndWake(let value): drain = value
        }
        // Close the ring first: from here on a submitter either fails with `closed` or queues in
        // the overflow, which is settled right below or by the I/O thread.
        self.ring.close()
        let failed = self.overflow.withLock { overflow in
            let failed = overflow.close(drain: drain)
            self.overflowCount.store(overflow.waiters.count, ordering: .sequentiallyConsistent)
            return failed
        }
        for waiter in failed {
            waiter.entry.continuation?.resume(throwing: PublisherError.shutdown())
        }
        switch action {
        case .closeAndSpawnThread: self.spawnIOThread()
        case .closeAndWake: self.parker.unpark()
        case .none: break
        }
    }

    func waitForTermination() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if !self.lifecycle.withLock({ $0.addTerminationWaiter(continuation) }) {
                continuation.resume()
            }
        }
    }

    private func spawnIOThread() {
        _IOThread.spawn(name: self.configuration.threadName) {
            self.runIOLoop()
            let waiters = self.lifecycle.withLock { $0.threadFinished() }
            for waiter in waiters { waiter.resume() }
        }
    }
}

/// Tells `submit(_:)` that the fast path found no room and the slow path must queue.
struct _WaitForRoom: Error {}

/// Holds the sink for the I/O thread.
///
/// `@unchecked Sendable` because the sink itself need not be: it is handed over with `sending` in
/// `init`, and from then on only the batcher's one I/O thread touches it (the thread is started at
/// most once, by the lifecycle state machine).
final class _SinkBox<Item: Sendable>: @unchecked Sendable {
    var sink: any BatchSink<Item>

    init(_ sink: sending some BatchSink<Item>) {
        self.sink = sink
    }
}

extension PublisherError {
    static func bufferFull(capacity: Int, policy: String, file: String = #fileID, line: Int = #line) -> PublisherError {
        PublisherError(
            code: .bufferFull,
            message: "the publish buffer is full (capacity \(capacity)); \(policy)",
            file: file,
            line: line
        )
    }
}
