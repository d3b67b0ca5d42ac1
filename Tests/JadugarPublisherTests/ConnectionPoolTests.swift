@testable import JadugarPublisher
import Testing

/// A fake connection: a number, and whether it has been closed.
final class FakeConnection: Sendable {
    let id: Int
    private let state = Locked<(closed: Bool, healthy: Bool)>((false, true))

    init(id: Int) { self.id = id }

    var isClosed: Bool { self.state.withLock { $0.closed } }
    var isHealthy: Bool { self.state.withLock { $0.healthy && !$0.closed } }
    func close() { self.state.withLock { $0.closed = true } }
    func breakIt() { self.state.withLock { $0.healthy = false } }
}

/// Makes, closes and health-checks fake connections, and records what happened.
final class FakeFactory: Sendable {
    let made = Recorder<FakeConnection>()
    let closed = Recorder<Int>()
    let closedCount = Counter()
    let healthChecks = Counter()
    private let failNext = Locked<(any Error)?>(nil)

    func failNextMake(with error: any Error) { self.failNext.withLock { $0 = error } }

    func makePool(_ configuration: ConnectionPoolConfiguration) -> ConnectionPool<FakeConnection> {
        ConnectionPool(
            configuration: configuration,
            make: {
                if let error = self.failNext.withLock({ state -> (any Error)? in
                    defer { state = nil }
                    return state
                }) {
                    throw error
                }
                let connection = FakeConnection(id: self.made.count)
                self.made.append(connection)
                return connection
            },
            close: { connection in
                #expect(!connection.isClosed, "connection \(connection.id) closed twice")
                connection.close()
                self.closed.append(connection.id)
                self.closedCount.increment()
            },
            isHealthy: { connection in
                self.healthChecks.increment()
                return connection.isHealthy
            }
        )
    }
}

/// How many are inside at once, and the most there ever were.
final class Gauge: Sendable {
    private let state = Locked<(now: Int, peak: Int)>((0, 0))
    func enter() { self.state.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) } }
    func leave() { self.state.withLock { $0.now -= 1 } }
    var peak: Int { self.state.withLock { $0.peak } }
}

@Suite("ConnectionPool", .timeLimit(.minutes(1)))
struct ConnectionPoolTests {
    @Test func reusesAReturnedConnection() async throws {
        let factory = FakeFactory()
        let pool = factory.makePool(.init(maxConnections: 2))
        let first = try await pool.withConnection { $0.connection.id }
        let second = try await pool.withConnection { $0.connection.id }
        #expect(first == 0)
        #expect(second == 0)
        #expect(factory.made.count == 1)
        #expect(factory.healthChecks.value == 1, "a reused connection is checked, a fresh one is not")
        #expect(pool.statistics.open == 1)
        #expect(pool.statistics.idle == 1)
        await pool.shutdown()
        #expect(factory.closed.values == [0])
    }

    @Test func neverOpensMoreThanTheLimit() async throws {
        let factory = FakeFactory()
        let pool = factory.makePool(.init(maxConnections: 3))
        let inUse = Gauge()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    try await pool.withConnection { lease in
                        #expect(!lease.connection.isClosed)
                        inUse.enter()
                        await Task.yield()
                        inUse.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(inUse.peak <= 3)
        #expect(inUse.peak >= 1)
        #expect(factory.made.count <= 3)
        #expect(pool.statistics.open <= 3)
        await pool.shutdown()
        #expect(factory.closed.count == factory.made.count)
    }

    @Test func servesWaitersInArrivalOrder() async throws {
        let factory = FakeFactory()
        let pool = factory.makePool(.init(maxConnections: 1))
        let order = Recorder<Int>()
        let held = try await pool.checkout()
        var waiters: [Task<Void, any Error>] = []
        for index in 0..<5 {
            waiters.append(Task {
                try await pool.withConnection { _ in order.append(index) }
            })
            // Each is in line before the next one arrives.
            await eventually { pool.statistics.waiting == index + 1 }
        }
        await pool.return(held)
        for waiter in waiters { try await waiter.value }
        #expect(order.values == [0, 1, 2, 3, 4])
        #expect(factory.made.count == 1)
        await pool.shutdown()
    }

    @Test func aNewCheckoutDoesNotOvertakeWaiters() async throws {
        let factory = FakeFactory()
        let pool = factory.makePool(.init(maxConnections: 1))
        let order = Recorder<String>()
        let held = try await pool.checkout()
        let waiter = Task { try await pool.withConnection { _ in order.append("waiter") } }
        await eventually { pool.statistics.waiting == 1 }
        // Returning hands the connection to the waiter directly; a checkout right after queues.
        await pool.return(held)
        try await pool.withConnection { _ in order.append("latecomer") }
        try await waiter.value
        #expect(order.values == ["waiter", "latecomer"])
        await pool.shutdown()
    }

    @Test func replacesAConnectionThatFailsItsHealthCheck() async throws {
        let factory = FakeFactory()
        let pool = factory.makePool(.init(maxConnections: 1))
        let first = try await pool.withConnection { $0.connection }
        first.breakIt()
        let second = try await pool.withConnection { $0.connection }
        #expect(first.isClosed)
        #expect(second.id == 1)
        #expect(factory.closed.values == [0])
        #expect(pool.statistics.open == 1)
        await pool.shutdown()
    }

    @Test func replacesAConnectionMarkedBroken() async throws {
        let factory = FakeFactory()
        let pool = factory.makePool(.init(maxConnections: 1))
        let held = try await pool.checkout()
        // A waiter must get a fresh connection once the broken one is closed.
        let waiter = Task { try await pool.withConnection { $0.connection.id } }
        await eventually { pool.statistics.waiting == 1 }
        held.markBroken()
        #expect(held.isBroken)
        await pool.return(held)
        #expect(try await waiter.value == 1)
        #expect(factory.closed.values == [0])
        #expect(pool.statistics.open == 1)
        await pool.shutdown()
    }

    @Test func closesConnectionsIdleForTooLong() async throws {
        let factory = FakeFactory()
        let pool = factory.makePool(.init(maxConnections: 2, maxIdleTime: .seconds(60)))
        let a = try await pool.checkout()
        let b = try await pool.checkout()
        await pool.return(a)
        let returned = ContinuousClock.now
        await pool.return(b)
        await pool.closeIdleConnections(now: returned + .seconds(30))
        #expect(factory.closed.values.isEmpty, "not idle long enough yet")
        await pool.closeIdleConnections(now: returned + .seconds(61))
        #expect(Set(factory.closed.values) == [0, 1])
        #expect(pool.statistics.open == 0)
        // The pool opens a new one on demand.
        #expect(try await pool.withConnection { $0.connection.id } == 2)
        await pool.shutdown()
    }

    @Test func checkoutSkipsExpiredConnections() async throws {
        let factory = FakeFactory()
        let pool = factory.makePool(.init(maxConnections: 1, maxIdleTime: .zero))
        let first = try await pool.withConnection { $0.connection.id }
        let second = try await pool.withConnection { $0.connection.id }
        #expect(first == 0)
        #expect(second == 1)
        #expect(factory.closed.values == [0])
        await pool.shutdown()
    }

    @Test func runClosesIdleConnectionsInTheBackground() async throws {
        let factory = FakeFactory()
        let pool = factory.makePool(.init(maxConnections: 1, maxIdleTime: .milliseconds(20), idleCheckInterval: .milliseconds(10)))
        let running = Task { await pool.run() }
        _ = try await pool.withConnection { $0.connection.id }
        await factory.closedCount.wait(for: 1)
        #expect(pool.statistics.open == 0)
        running.cancel()
        await running.value
        #expect(await publisherErrorCode { _ = try await pool.checkout() } == .closed)
    }

    @Test func aFailedCreationFreesItsSlot() async throws {
        let factory = FakeFactory()
        let pool = factory.makePool(.init(maxConnections: 1))
        factory.failNextMake(with: TestError(id: 1))
        await #expect(throws: TestError(id: 1)) { _ = try await pool.checkout() }
        #expect(pool.statistics.open == 0)
        #expect(try await pool.withConnection { $0.connection.id } == 0)
        await pool.shutdown()
    }

    @Test func aCancelledWaiterLeavesTheLine() async throws {
        let factory = FakeFactory()
        let pool = factory.makePool(.init(maxConnections: 1))
        let held = try await pool.checkout()
        let waiter = Task { try await pool.withConnection { $0.connection.id } }
        await eventually { pool.statistics.waiting == 1 }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiter.value }
        #expect(pool.statistics.waiting == 0)
        await pool.return(held)
        #expect(pool.statistics.idle == 1)
        await pool.shutdown()
    }

    @Test func shutdownFailsWaitersAndWaitsForLeasesToComeBack() async throws {
        let factory = FakeFactory()
        let pool = factory.makePool(.init(maxConnections: 2))
        let first = try await pool.checkout()
        let second = try await pool.checkout()
        let inLine = Task { try await pool.withConnection { $0.connection.id } }
        await eventually { pool.statistics.waiting == 1 }

        let shutdown = Task { await pool.shutdown() }
        #expect(await publisherErrorCode { _ = try await inLine.value } == .closed)
        #expect(await publisherErrorCode { _ = try await pool.checkout() } == .closed)
        #expect(factory.closed.values.isEmpty, "checked-out connections stay open until returned")

        await pool.return(first)
        #expect(factory.closed.values == [first.connection.id], "returned during shutdown: closed")
        await pool.return(second)
        await shutdown.value
        #expect(factory.closed.values == [first.connection.id, second.connection.id])
        #expect(pool.statistics.open == 0)
        await pool.shutdown()  // again: returns at once
    }

    @Test func shutdownClosesIdleConnectionsAndReturnsAtOnce() async throws {
        let factory = FakeFactory()
        let pool = factory.makePool(.init(maxConnections: 3))
        let leases = [try await pool.checkout(), try await pool.checkout()]
        for lease in leases { await pool.return(lease) }
        await pool.shutdown()
        #expect(Set(factory.closed.values) == [0, 1])
        #expect(pool.statistics.open == 0)
    }
}
