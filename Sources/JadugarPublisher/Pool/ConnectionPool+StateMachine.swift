import DequeModule

extension ConnectionPool {
    /// What a checkout is allowed to do: use an open connection, or open a new one in a slot
    /// reserved for it.
    enum Grant {
        case reuse(Connection, id: Int)
        case create(id: Int)
    }

    /// The pool's bookkeeping. Every method runs under the pool's lock and returns what to do next;
    /// the caller does it (resume continuations, close connections) after releasing the lock.
    struct StateMachine {
        struct IdleConnection {
            var connection: Connection
            var id: Int
            var idleSince: ContinuousClock.Instant
        }

        struct Waiter {
            var id: UInt64
            var continuation: CheckedContinuation<Grant, any Error>
        }

        enum State: CustomStringConvertible {
            case running
            case shuttingDown
            case shutdown

            var description: String {
                switch self {
                case .running: "running"
                case .shuttingDown: "shuttingDown"
                case .shutdown: "shutdown"
                }
            }
        }

        let maxConnections: Int
        let maxIdleTime: Duration

        private(set) var state = State.running
        /// Oldest first: returns go to the back and checkouts take from the back, so the
        /// connections that expire are the ones at the front.
        private(set) var idle: Deque<IdleConnection> = []
        private(set) var waiters: Deque<Waiter> = []
        /// Slots in use: idle connections, checked-out ones and ones being created or replaced.
        private(set) var open = 0
        private var nextConnectionID = 0
        private var shutdownWaiters: [CheckedContinuation<Void, Never>] = []

        init(maxConnections: Int, maxIdleTime: Duration) {
            self.maxConnections = maxConnections
            self.maxIdleTime = maxIdleTime
        }

        // MARK: Checkout

        enum CheckoutAction {
            case granted(Grant, closing: [Connection])
            case mustWait(closing: [Connection])
            case fail(any Error)
        }

        /// A checkout that does not wait: served at once if nobody is queued ahead and there is an
        /// idle connection or a free slot.
        mutating func checkout(now: ContinuousClock.Instant) -> CheckoutAction {
            guard case .running = self.state else { return .fail(PublisherError.closed("connection pool")) }
            let expired = self.removeExpired(now: now)
            if let grant = self.grantIfPossible() {
                return .granted(grant, closing: expired)
            }
            return .mustWait(closing: expired)
        }

        enum EnqueueAction {
            case granted(Grant)
            case queued
            case fail(any Error)
        }

        /// The waiting checkout: served at once if something freed since ``checkout(now:)``, else queued.
        mutating func enqueue(_ waiter: Waiter, isCancelled: Bool) -> EnqueueAction {
            guard case .running = self.state else { return .fail(PublisherError.closed("connection pool")) }
            if let grant = self.grantIfPossible() { return .granted(grant) }
            if isCancelled { return .fail(CancellationError()) }
            self.waiters.append(waiter)
            return .queued
        }

        mutating func cancel(waiterID: UInt64) -> Waiter? {
            guard let index = self.waiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
            return self.waiters.remove(at: index)
        }

        private mutating func grantIfPossible() -> Grant? {
            guard self.waiters.isEmpty else { return nil }
            if let connection = self.idle.popLast() {
                return .reuse(connection.connection, id: connection.id)
            }
            if self.open < self.maxConnections {
                self.open += 1
                return .create(id: self.makeConnectionID())
            }
            return nil
        }

        private mutating func makeConnectionID() -> Int {
            defer { self.nextConnectionID += 1 }
            return self.nextConnectionID
        }

        // MARK: Creation and health

        /// A slot given up by a failed checkout: maybe for the next waiter, maybe the last one open.
        struct SlotRelease {
            var next: (Waiter, Grant)?
            var shutdownComplete: [CheckedContinuation<Void, Never>]
        }

        enum SlotAction {
            /// Carry on with this grant.
            case proceed(Grant)
            /// The slot was given up: fail the checkout with `error`.
            case fail(any Error, SlotRelease)
        }

        /// A reused connection failed its health check and was closed: replace it in the same slot.
        mutating func replaceUnhealthy() -> SlotAction {
            guard case .running = self.state else {
                return .fail(PublisherError.closed("connection pool"), self.releaseSlot())
            }
            return .proceed(.create(id: self.makeConnectionID()))
        }

        enum CreatedAction {
            case lease
            case closeAndFail(any Error, shutdownComplete: [CheckedContinuation<Void, Never>])
        }

        /// A connection was created in a reserved slot.
        mutating func created() -> CreatedAction {
            guard case .running = self.state else {
                self.open -= 1
                return .closeAndFail(PublisherError.closed("connection pool"), shutdownComplete: self.completeShutdownIfIdle())
            }
            return .lease
        }

        /// Creating a connection failed: free its slot, and let the next waiter try.
        mutating func creationFailed() -> SlotRelease {
            self.releaseSlot()
        }

        private mutating func releaseSlot() -> SlotRelease {
            self.open -= 1
            let next = self.handFreeSlotToWaiter()
            return SlotRelease(next: next, shutdownComplete: self.completeShutdownIfIdle())
        }

        private mutating func handFreeSlotToWaiter() -> (Waiter, Grant)? {
            guard case .running = self.state, self.open < self.maxConnections, let waiter = self.waiters.popFirst() else {
                return nil
            }
            self.open += 1
            return (waiter, .create(id: self.makeConnectionID()))
        }

        // MARK: Return

        struct ReturnAction {
            var close: Connection?
            var next: (Waiter, Grant)?
            var shutdownComplete: [CheckedContinuation<Void, Never>] = []
        }

        mutating func giveBack(_ connection: Connection, id: Int, isBroken: Bool, now: ContinuousClock.Instant) -> ReturnAction {
            switch self.state {
            case .running:
                if isBroken {
                    self.open -= 1
                    return ReturnAction(close: connection, next: self.handFreeSlotToWaiter())
                }
                if let waiter = self.waiters.popFirst() {
                    return ReturnAction(close: nil, next: (waiter, .reuse(connection, id: id)))
                }
                self.idle.append(IdleConnection(connection: connection, id: id, idleSince: now))
                return ReturnAction(close: nil, next: nil)
            case .shuttingDown:
                self.open -= 1
                return ReturnAction(close: connection, next: nil, shutdownComplete: self.completeShutdownIfIdle())
            case .shutdown:
                preconditionFailure("a connection was returned to a pool in state \(self.state) with \(self.open) open")
            }
        }

        // MARK: Idle expiry

        /// Removes the idle connections that have been idle for `maxIdleTime` or longer.
        mutating func removeExpired(now: ContinuousClock.Instant) -> [Connection] {
            var expired: [Connection] = []
            while let oldest = self.idle.first, now - oldest.idleSince >= self.maxIdleTime {
                expired.append(self.idle.removeFirst().connection)
            }
            self.open -= expired.count
            return expired
        }

        // MARK: Shutdown

        struct ShutdownAction {
            var close: [Connection] = []
            var fail: [Waiter] = []
            var isComplete = false
        }

        mutating func beginShutdown() -> ShutdownAction {
            switch self.state {
            case .running:
                self.state = .shuttingDown
                let closing = self.idle.map(\.connection)
                self.open -= closing.count
                self.idle = []
                // Not `Array(waiters)` when empty: converting an empty Deque writes its count into
                // the runtime's shared empty-array storage, which ThreadSanitizer reports as a race
                // between two pools shutting down at once (a false positive, but it fails the run).
                let failing = self.waiters.isEmpty ? [] : Array(self.waiters)
                self.waiters = []
                let complete = self.completeShutdownIfIdle()
                precondition(complete.isEmpty, "nobody can wait for a shutdown that has not started")
                return ShutdownAction(close: closing, fail: failing, isComplete: self.isShutdown)
            case .shuttingDown:
                return ShutdownAction()
            case .shutdown:
                return ShutdownAction(isComplete: true)
            }
        }

        /// Registers a waiter for the end of shutdown; `false` if it has already ended.
        mutating func addShutdownWaiter(_ continuation: CheckedContinuation<Void, Never>) -> Bool {
            if self.isShutdown { return false }
            self.shutdownWaiters.append(continuation)
            return true
        }

        var isRunning: Bool {
            if case .running = self.state { return true }
            return false
        }

        var isShutdown: Bool {
            if case .shutdown = self.state { return true }
            return false
        }

        private mutating func completeShutdownIfIdle() -> [CheckedContinuation<Void, Never>] {
            guard case .shuttingDown = self.state, self.open == 0 else { return [] }
            self.state = .shutdown
            defer { self.shutdownWaiters = [] }
            return self.shutdownWaiters
        }
    }
}
