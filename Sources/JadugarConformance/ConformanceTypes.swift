import Jadugar

/// Builds a fresh, unconnected broker client; the suite connects and disconnects it.
public typealias BrokerFactory = @Sendable () async throws -> any MessageBroker

/// How the suite runs.
///
/// ```swift
/// var configuration = ConformanceConfiguration(scale: .short)
/// configuration.restartBroker = { try await run("scripts/brokers restart redis") }
/// ```
public struct ConformanceConfiguration: Sendable {
    /// How many messages scenarios use.
    public struct Scale: Sendable, Hashable, CustomStringConvertible {
        /// Multiplies each scenario's message counts.
        public let factor: Double
        /// The name reports print.
        public let name: String
        /// The counts the issue names: 1,000 messages for delivery, 50 publishers, 100 concurrent requests.
        public static let full = Scale(factor: 1, name: "full")
        /// About a fifth of the messages, for quick local runs.
        public static let short = Scale(factor: 0.2, name: "short")
        public var description: String { name }
    }

    /// Message counts. Default: ``Scale/full``.
    public var scale: Scale
    /// The longest a scenario may run before it fails with a timeout. Default: 120 seconds.
    public var scenarioTimeout: Duration
    /// How long to wait for one expected delivery before counting it lost. Default: 30 seconds.
    public var deliveryTimeout: Duration
    /// Restarts the broker under test; without it the reconnect scenario is skipped. Default: `nil`.
    public var restartBroker: (@Sendable () async throws -> Void)?
    /// Run only scenarios whose name contains one of these. Default: all.
    public var only: [String]
    /// Run the whole suite this many times at once (stress mode). Default: `1`.
    public var parallelRuns: Int

    /// Creates a configuration.
    public init(
        scale: Scale = .full,
        scenarioTimeout: Duration = .seconds(120),
        deliveryTimeout: Duration = .seconds(30),
        restartBroker: (@Sendable () async throws -> Void)? = nil,
        only: [String] = [],
        parallelRuns: Int = 1
    ) {
        self.scale = scale
        self.scenarioTimeout = scenarioTimeout
        self.deliveryTimeout = deliveryTimeout
        self.restartBroker = restartBroker
        self.only = only
        self.parallelRuns = parallelRuns
    }

    /// A count scaled to the configuration, at least `minimum`.
    public func count(_ full: Int, minimum: Int = 10) -> Int {
        max(minimum, Int((Double(full) * scale.factor).rounded()))
    }
}

/// What a scenario counted.
public struct ConformanceCounters: Sendable, Hashable, Codable {
    /// Messages the broker confirmed.
    public var published = 0
    /// Distinct messages delivered.
    public var delivered = 0
    /// Deliveries of a message already delivered.
    public var duplicates = 0
    /// Confirmed messages never delivered.
    public var lost = 0

    /// Creates counters.
    public init(published: Int = 0, delivered: Int = 0, duplicates: Int = 0, lost: Int = 0) {
        self.published = published
        self.delivered = delivered
        self.duplicates = duplicates
        self.lost = lost
    }

    static func + (lhs: Self, rhs: Self) -> Self {
        Self(published: lhs.published + rhs.published, delivered: lhs.delivered + rhs.delivered, duplicates: lhs.duplicates + rhs.duplicates, lost: lhs.lost + rhs.lost)
    }
}

/// How one scenario ended.
public struct ConformanceOutcome: Sendable, Hashable, CustomStringConvertible {
    /// `passed`, `failed` or `skipped`.
    public let status: String
    /// Why it failed or was skipped.
    public let reason: String?

    /// The scenario held.
    public static let passed = ConformanceOutcome(status: "passed", reason: nil)
    /// The scenario did not hold, with what went wrong.
    public static func failed(_ reason: String) -> ConformanceOutcome { ConformanceOutcome(status: "failed", reason: reason) }
    /// The scenario did not run, with the missing capability.
    public static func skipped(_ reason: String) -> ConformanceOutcome { ConformanceOutcome(status: "skipped", reason: reason) }

    /// Whether it passed.
    public var isPassed: Bool { status == "passed" }
    /// Whether it failed.
    public var isFailed: Bool { status == "failed" }
    /// Whether it was skipped.
    public var isSkipped: Bool { status == "skipped" }

    public var description: String { reason.map { "\(status): \($0)" } ?? status }
}

/// The result of one scenario.
public struct ConformanceResult: Sendable {
    /// The scenario's name, `category.name`.
    public var scenario: String
    /// The scenario's category.
    public var category: String
    /// How it ended.
    public var outcome: ConformanceOutcome
    /// What it counted.
    public var counters: ConformanceCounters
    /// How long it ran.
    public var duration: Duration
}

/// The results of a suite run against one broker.
public struct ConformanceReport: Sendable {
    /// The broker's name.
    public var broker: String
    /// One result per scenario (per run, in stress mode).
    public var results: [ConformanceResult]
    /// The whole run's duration.
    public var duration: Duration

    /// Scenarios that passed.
    public var passed: Int { results.filter(\.outcome.isPassed).count }
    /// Scenarios that failed.
    public var failed: Int { results.filter(\.outcome.isFailed).count }
    /// Scenarios skipped for a missing capability.
    public var skipped: Int { results.filter(\.outcome.isSkipped).count }
    /// Whether nothing failed.
    public var succeeded: Bool { failed == 0 }
    /// Counters summed over every scenario.
    public var totals: ConformanceCounters { results.reduce(ConformanceCounters()) { $0 + $1.counters } }
}

/// A scenario failed: the reason is the report's.
struct ScenarioFailure: Error, CustomStringConvertible {
    var description: String
}
