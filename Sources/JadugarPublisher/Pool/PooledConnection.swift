import Synchronization

/// A connection checked out of a ``ConnectionPool``, to be returned with ``ConnectionPool/return(_:)``.
///
/// ```swift
/// let lease = try await pool.checkout()
/// do {
///     try await lease.connection.send(frame)
/// } catch {
///     lease.markBroken()            // the pool closes it and opens a new one
/// }
/// await pool.return(lease)
/// ```
///
/// - Important: Return every lease exactly once; returning one twice traps. Until it is returned,
///   the connection counts against the pool's limit.
public final class PooledConnection<Connection: Sendable>: Sendable {
    /// The connection.
    ///
    /// ```swift
    /// try await lease.connection.ping()
    /// ```
    public let connection: Connection

    let id: Int

    private static var brokenBit: UInt8 { 1 }
    private static var returnedBit: UInt8 { 2 }
    private let flags = Atomic<UInt8>(0)

    init(connection: Connection, id: Int) {
        self.connection = connection
        self.id = id
    }

    /// Marks the connection as unusable: when returned, the pool closes it instead of reusing it.
    ///
    /// ```swift
    /// if error is BrokenPipe { lease.markBroken() }
    /// ```
    public func markBroken() {
        self.flags.bitwiseOr(Self.brokenBit, ordering: .relaxed)
    }

    /// Whether ``markBroken()`` was called.
    ///
    /// ```swift
    /// if lease.isBroken { logger.info("replacing connection") }
    /// ```
    public var isBroken: Bool {
        self.flags.load(ordering: .relaxed) & Self.brokenBit != 0
    }

    /// Records the return; traps on a second one.
    func markReturned() {
        let previous = self.flags.bitwiseOr(Self.returnedBit, ordering: .acquiringAndReleasing).oldValue
        precondition(previous & Self.returnedBit == 0, "PooledConnection \(self.id) was returned to its pool twice")
    }
}
