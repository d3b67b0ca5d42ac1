import Foundation

/// The health of one broker connection.
///
/// ```swift
/// let health = await manager.healthCheck()
/// print(health.isHealthy ? "ok in \(health.latency!)" : "down: \(health.reason ?? "")")
/// ```
public struct HealthStatus: Sendable, Hashable {
    /// The broker's name.
    public var broker: String
    /// Whether a round trip succeeded.
    public var isHealthy: Bool
    /// The round-trip time, when it succeeded.
    public var latency: Duration?
    /// The broker's version, when known.
    public var version: String?
    /// Why it is unhealthy.
    public var reason: String?
    /// When the check ran.
    public var checkedAt: Date

    /// Creates a status.
    public init(broker: String, isHealthy: Bool, latency: Duration? = nil, version: String? = nil, reason: String? = nil, checkedAt: Date = Date()) {
        self.broker = broker
        self.isHealthy = isHealthy
        self.latency = latency
        self.version = version
        self.reason = reason
        self.checkedAt = checkedAt
    }
}
