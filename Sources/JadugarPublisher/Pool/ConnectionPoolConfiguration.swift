/// Limits and timings of a ``ConnectionPool``.
///
/// ```swift
/// var configuration = ConnectionPoolConfiguration()
/// configuration.maxConnections = 8
/// configuration.maxIdleTime = .seconds(30)
/// ```
public struct ConnectionPoolConfiguration: Sendable {
    /// The most connections open at once: idle, checked out and being created together.
    ///
    /// Default: 4.
    ///
    /// ```swift
    /// configuration.maxConnections = 8
    /// ```
    public var maxConnections: Int

    /// How long a connection may sit idle before the pool closes it.
    ///
    /// Default: 60 seconds.
    ///
    /// ```swift
    /// configuration.maxIdleTime = .seconds(30)
    /// ```
    public var maxIdleTime: Duration

    /// How often ``ConnectionPool/run()`` looks for idle connections to close. Checkouts also skip
    /// and close expired connections, so this only bounds how long an unused pool holds them.
    ///
    /// Default: 5 seconds.
    ///
    /// ```swift
    /// configuration.idleCheckInterval = .seconds(1)
    /// ```
    public var idleCheckInterval: Duration

    /// Creates a configuration.
    ///
    /// ```swift
    /// let configuration = ConnectionPoolConfiguration(maxConnections: 2, maxIdleTime: .seconds(10))
    /// ```
    ///
    /// - Parameters:
    ///   - maxConnections: The most open connections. Default: 4.
    ///   - maxIdleTime: How long an idle connection lives. Default: 60 seconds.
    ///   - idleCheckInterval: How often `run()` closes expired connections. Default: 5 seconds.
    public init(
        maxConnections: Int = 4,
        maxIdleTime: Duration = .seconds(60),
        idleCheckInterval: Duration = .seconds(5)
    ) {
        self.maxConnections = maxConnections
        self.maxIdleTime = maxIdleTime
        self.idleCheckInterval = idleCheckInterval
    }
}
