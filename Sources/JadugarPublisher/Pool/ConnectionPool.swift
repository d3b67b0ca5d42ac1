import Atomics
import DequeModule

/// A bounded, fair pool of connections that it creates, health-checks, replaces and closes
/// through closures you supply.
///
/// At most ``ConnectionPoolConfiguration/maxConnections`` connections are open at once. A checkout
/// takes the most recently returned idle connection (after checking its health), or creates one if
/// there is a free slot, or waits: waiters are served strictly in arrival order, and a new checkout
/// never overtakes them. A connection that fails its health check, or that its user marks broken,
/// is closed and replaced. Connections idle for ``ConnectionPoolConfiguration/maxIdleTime`` are
/// closed, both on checkout and by ``run()``.
///
/// ```swift
/// let pool = ConnectionPool<AMQPConnection>(
///     configuration: .init(maxConnections: 4),
///     make: { try await AMQPConnection.open(url) },
///     close: { await $0.close() },
///     isHealthy: { $0.isOpen }
/// )
/// let count = try await pool.withConnection { lease in
///     try await lease.connection.queueDeclare("orders")
/// }
/// await pool.shutdown()
/// ```
///
/// - Important: Shut the pool down when done: ``shutdown()`` closes idle connections, fails
///   waiting checkouts with ``PublisherError/Code/closed``, and waits for checked-out connections to
///   be returned, closing them as they come back.
public final class ConnectionPool<Connection: Sendable>: Sendable {
    /// The configuration the pool was created with.
    ///
    /// ```swift
    /// print(pool.configuration.maxConnections)
    /// ```
    public let configuration: ConnectionPoolConfiguration

    private let state: LockedValueBox<StateMachine>
    private let waiterIDs = ManagedAtomic<UInt64>(0)
    private let makeConnection: @Sendable () async throws -> Connection
    private let closeConnection: @Sendable (Connection) async -> Void
    private let isHealthy: @Sendable (Connection) async -> Bool

    /// Creates an empty pool; connections are created on demand.
    ///
    /// ```swift
    /// let pool = ConnectionPool(configuration: .init(), make: { try await Client.connect() }, close: { await $0.close() })
    /// ```
    ///
    /// - Parameters:
    ///   - configuration: Limits and timings. Default: `.init()`.
    ///   - make: Opens a new connection; its error fails the checkout that asked for it.
    ///   - close: Closes a connection the pool no longer wants.
    ///   - isHealthy: Checks a reused connection on checkout; `false` closes and replaces it.
    ///     Default: always healthy.
    public init(
        configuration: ConnectionPoolConfiguration = .init(),
        make: @escaping @Sendable () async throws -> Connection,
        close: @escaping @Sendable (Connection) async -> Void,
        isHealthy: @escaping @Sendable (Connection) async -> Bool = { _ in true }
    ) {
        precondition(configuration.maxConnections > 0, "ConnectionPoolConfiguration.maxConnections must be positive")
        self.configuration = configuration
        self.state = LockedValueBox(StateMachine(maxConnections: configuration.maxConnections, maxIdleTime: configuration.maxIdleTime))
        self.makeConnection = make
        self.closeConnection = close
        self.isHealthy = isHealthy
    }

    /// Checks a connection out, waiting in line if none is free.
    ///
    /// ```swift
    /// let lease = try await pool.checkout()
    /// defer { Task { await pool.return(lease) } }
    /// ```
    ///
    /// - Returns: A lease on a healthy connection; return it with ``return(_:)``.
    /// - Throws: The `make` closure's error if a new connection could not be opened;
    ///   ``PublisherError`` with code `closed` if the pool is shut down (or shuts down while
    ///   waiting); `CancellationError` if the task is cancelled while waiting.
    public func checkout() async throws -> PooledConnection<Connection> {
        var grant: Grant
        switch self.state.withLock({ $0.checkout(now: .now) }) {
        case .granted(let granted, let closing):
            await self.close(closing)
            grant = granted
        case .mustWait(let closing):
            await self.close(closing)
            grant = try await self.waitInLine()
        case .fail(let error):
            throw error
        }

        while true {
            switch grant {
            case .reuse(let connection, let id):
                if await self.isHealthy(connection) {
                    return PooledConnection(connection: connection, id: id)
                }
                await self.closeConnection(connection)
                switch self.state.withLock({ $0.replaceUnhealthy() }) {
                case .proceed(let replacement):
                    grant = replacement
                case .fail(let error, let release):
                    self.resume(release)
                    throw error
                }
            case .create(let id):
                let connection: Connection
                do {
                    connection = try await self.makeConnection()
                } catch {
                    self.resume(self.state.withLock { $0.creationFailed() })
                    throw error
                }
                switch self.state.withLock({ $0.created() }) {
                case .lease:
                    return PooledConnection(connection: connection, id: id)
                case .closeAndFail(let error, let shutdownComplete):
                    await self.closeConnection(connection)
                    for waiter in shutdownComplete { waiter.resume() }
                    throw error
                }
            }
        }
    }

    /// Returns a checked-out connection: to the next waiter, or to the idle set; closed instead if
    /// it was marked broken or the pool is shutting down.
    ///
    /// ```swift
    /// await pool.return(lease)
    /// ```
    ///
    /// - Parameter lease: A lease from ``checkout()``, not yet returned.
    /// - Important: Traps if the lease was already returned.
    public func `return`(_ lease: PooledConnection<Connection>) async {
        lease.markReturned()
        let action = self.state.withLock {
            $0.giveBack(lease.connection, id: lease.id, isBroken: lease.isBroken, now: .now)
        }
        if let (waiter, grant) = action.next {
            waiter.continuation.resume(returning: grant)
        }
        if let connection = action.close {
            await self.closeConnection(connection)
        }
        for waiter in action.shutdownComplete { waiter.resume() }
    }

    /// Checks a connection out, runs `body` with it, and returns it, also when `body` throws.
    ///
    /// Call ``PooledConnection/markBroken()`` inside `body` to have the connection replaced.
    ///
    /// ```swift
    /// let reply = try await pool.withConnection { lease in
    ///     try await lease.connection.send(command)
    /// }
    /// ```
    ///
    /// - Parameter body: Uses the connection.
    /// - Returns: What `body` returns.
    /// - Throws: What ``checkout()`` or `body` throws.
    public func withConnection<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PooledConnection<Connection>) async throws -> sending Result
    ) async throws -> sending Result {
        let lease = try await self.checkout()
        let result: Result
        do {
            result = try await body(lease)
        } catch {
            await self.return(lease)
            throw error
        }
        await self.return(lease)
        return result
    }

    /// Closes idle connections every ``ConnectionPoolConfiguration/idleCheckInterval`` until the pool
    /// shuts down; cancelling the calling task shuts the pool down.
    ///
    /// The shape of swift-service-lifecycle's `Service.run()`. Returns within one interval of a
    /// shutdown started elsewhere.
    ///
    /// ```swift
    /// group.addTask { await pool.run() }
    /// ```
    public func run() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: self.configuration.idleCheckInterval)
            } catch {
                break
            }
            if !self.state.withLock({ $0.isRunning }) { break }
            await self.closeIdleConnections(now: .now)
        }
        await self.shutdown()
    }

    /// Stops the pool: closes idle connections, fails waiting checkouts with
    /// ``PublisherError/Code/closed``, and waits until every checked-out connection has been
    /// returned and closed. Later checkouts fail with `closed`.
    ///
    /// ```swift
    /// await pool.shutdown()
    /// ```
    public func shutdown() async {
        let action = self.state.withLock { $0.beginShutdown() }
        for waiter in action.fail {
            waiter.continuation.resume(throwing: PublisherError.closed("connection pool"))
        }
        await self.close(action.close)
        if action.isComplete { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if !self.state.withLock({ $0.addShutdownWaiter(continuation) }) {
                continuation.resume()
            }
        }
    }

    /// Counts of the pool's connections: a snapshot, for metrics and tests.
    ///
    /// ```swift
    /// let (open, idle, waiting) = pool.statistics
    /// ```
    ///
    /// - Returns: `open`: connections counted against the limit (idle, checked out, being created);
    ///   `idle`: connections ready for reuse; `waiting`: checkouts waiting in line.
    public var statistics: (open: Int, idle: Int, waiting: Int) {
        self.state.withLock { ($0.open, $0.idle.count, $0.waiters.count) }
    }

    /// Closes the connections idle since before `now - maxIdleTime`.
    func closeIdleConnections(now: ContinuousClock.Instant) async {
        await self.close(self.state.withLock { $0.removeExpired(now: now) })
    }

    // MARK: - Internals

    private func waitInLine() async throws -> Grant {
        let id = self.waiterIDs.wrappingIncrementThenLoad(ordering: .relaxed)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                let waiter = StateMachine.Waiter(id: id, continuation: continuation)
                switch self.state.withLock({ $0.enqueue(waiter, isCancelled: Task.isCancelled) }) {
                case .granted(let grant): continuation.resume(returning: grant)
                case .queued: break
                case .fail(let error): continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            self.state.withLock { $0.cancel(waiterID: id) }?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Passes a given-up slot on to the next waiter, or completes a shutdown it was the last of.
    private func resume(_ release: StateMachine.SlotRelease) {
        if let (waiter, grant) = release.next { waiter.continuation.resume(returning: grant) }
        for waiter in release.shutdownComplete { waiter.resume() }
    }

    private func close(_ connections: [Connection]) async {
        for connection in connections {
            await self.closeConnection(connection)
        }
    }
}
