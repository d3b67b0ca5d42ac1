import DequeModule

extension Batcher {
    /// The batcher's lifecycle: whether the I/O thread runs, and who waits for it to finish.
    ///
    /// Methods return what to do; the caller does it after releasing the lock.
    struct Lifecycle {
        enum State: CustomStringConvertible {
            case idle
            case running
            case shuttingDown(drain: Bool, threadStarted: Bool)
            case terminated

            var description: String {
                switch self {
                case .idle: "idle"
                case .running: "running"
                case .shuttingDown(let drain, _): "shuttingDown(drain: \(drain))"
                case .terminated: "terminated"
                }
            }
        }

        private(set) var state: State = .idle
        private var terminationWaiters: [CheckedContinuation<Void, Never>] = []

        enum StartAction {
            case spawnThread
            case none
        }

        mutating func start() -> StartAction {
            switch self.state {
            case .idle:
                self.state = .running
                return .spawnThread
            case .running:
                preconditionFailure("Batcher.start() called twice; state: \(self.state)")
            case .shuttingDown, .terminated:
                // Shutting down before start already started the thread to settle the buffer.
                return .none
            }
        }

        enum ShutdownAction {
            /// Close the buffer, settle the overflow queue and start the thread to finish the work.
            case closeAndSpawnThread(drain: Bool)
            /// Close the buffer, settle the overflow queue and wake the running thread.
            case closeAndWake(drain: Bool)
            /// Someone else is already shutting down; just wait.
            case none
        }

        mutating func shutdown(drain: Bool) -> ShutdownAction {
            switch self.state {
            case .idle:
                self.state = .shuttingDown(drain: drain, threadStarted: true)
                return .closeAndSpawnThread(drain: drain)
            case .running:
                self.state = .shuttingDown(drain: drain, threadStarted: true)
                return .closeAndWake(drain: drain)
            case .shuttingDown, .terminated:
                return .none
            }
        }

        /// Whether the thread, having found the buffer closed, should write what is left.
        var drainOnShutdown: Bool {
            switch self.state {
            case .shuttingDown(let drain, _): drain
            case .idle, .running, .terminated:
                preconditionFailure("the batcher's buffer is closed but its lifecycle is \(self.state)")
            }
        }

        /// Registers a waiter for termination; returns `false` if already terminated.
        mutating func addTerminationWaiter(_ continuation: CheckedContinuation<Void, Never>) -> Bool {
            if case .terminated = self.state { return false }
            self.terminationWaiters.append(continuation)
            return true
        }

        /// The I/O thread is done; returns the waiters to resume.
        mutating func threadFinished() -> [CheckedContinuation<Void, Never>] {
            guard case .shuttingDown = self.state else {
                preconditionFailure("the batcher's I/O thread finished in state \(self.state)")
            }
            self.state = .terminated
            defer { self.terminationWaiters = [] }
            return self.terminationWaiters
        }
    }

    /// Submitters that found the buffer full under `.suspend`, in arrival order.
    ///
    /// Each waiter's item already carries its continuation: the I/O thread moves items from here
    /// into the ring as space frees, and the submitter's `await` ends when the item is confirmed.
    struct Overflow {
        struct Waiter {
            var id: UInt64
            var entry: _BatchEntry<Item>
        }

        var waiters: Deque<Waiter> = []
        var isClosed = false

        enum EnqueueAction {
            case pushedToRing
            case queued
            case fail(any Error)
        }

        mutating func enqueue(
            _ entry: _BatchEntry<Item>,
            id: UInt64,
            ring: MPSCRingBuffer<_BatchEntry<Item>>
        ) -> EnqueueAction {
            if self.isClosed { return .fail(PublisherError.closed("batcher")) }
            // Space may have freed since the fast path failed; take it only if nobody is ahead of us.
            if self.waiters.isEmpty && ring.tryPush(entry) { return .pushedToRing }
            if Task.isCancelled { return .fail(CancellationError()) }
            self.waiters.append(Waiter(id: id, entry: entry))
            return .queued
        }

        /// Removes a cancelled waiter; `nil` if it already left the queue (moved to the ring, or settled).
        mutating func cancel(id: UInt64) -> _BatchEntry<Item>? {
            guard let index = self.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return self.waiters.remove(at: index).entry
        }

        /// Moves waiters, oldest first, into the ring while it has room.
        mutating func moveToRing(_ ring: MPSCRingBuffer<_BatchEntry<Item>>) {
            while let first = self.waiters.first, ring.tryPush(first.entry) {
                self.waiters.removeFirst()
            }
        }

        /// Closes the queue; returns the waiters to fail now (all of them unless draining).
        mutating func close(drain: Bool) -> Deque<Waiter> {
            self.isClosed = true
            if drain { return [] }
            defer { self.waiters = [] }
            return self.waiters
        }

        mutating func takeAll() -> Deque<Waiter> {
            defer { self.waiters = [] }
            return self.waiters
        }
    }
}
