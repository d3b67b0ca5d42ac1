import Foundation

/// One workload of a scenario file: topics, producers, consumers, message sizes, rate, duration
/// and acknowledgement mode. Every field is documented in `Scenarios/README.md`.
///
/// ```swift
/// var workload = Workload(name: "quick")
/// workload.rate = .fixed(10_000)
/// workload.duration = .seconds(5)
/// ```
public struct Workload: Sendable, Equatable {
    /// The name reports use; matrix runs append their values (`throughput[messageSize=1024]`).
    public var name: String
    /// How many topics.
    public var topics = 1
    /// Partitions per topic, for brokers that partition (Kafka).
    public var partitions = 1
    /// Subscriptions (consumer groups) per topic; each gets every message.
    public var subscriptionsPerTopic = 1
    /// Competing consumers in each subscription.
    public var consumersPerSubscription = 1
    /// Producers per topic.
    public var producersPerTopic = 1
    /// Payload sizes.
    public var messageSize = MessageSize.fixed(1024)
    /// A file whose bytes are the payload (its first bytes are overwritten by the runner's 24-byte stamp).
    public var payloadFile: String?
    /// Message keys.
    public var keys = KeyDistribution.none
    /// The publish rate.
    public var rate = Rate.unlimited
    /// Time excluded from the results at the start.
    public var warmup: Duration = .seconds(1)
    /// How long to publish (after warm-up); or use ``messages``.
    public var duration: Duration? = .seconds(10)
    /// How many messages to publish in all (after warm-up), instead of a duration.
    public var messages: Int?
    /// When the run ends after publishing stops.
    public var exitWhen = ExitCondition.drained
    /// The longest to wait for the drain or idleness.
    public var drainTimeout: Duration = .seconds(60)
    /// How consumers acknowledge.
    public var ack = AckMode.manual
    /// Unacknowledged messages per consumer.
    public var prefetch = 256
    /// Ask the broker to persist messages.
    public var persistent = true
    /// Wait for the broker's confirm before counting a publish (publisher confirms).
    public var confirms = true
    /// Publishes in flight per producer (batching through the publisher core).
    public var inFlight = 64
    /// Simulated processing time per message in consumers.
    public var consumerDelay: Duration = .zero
    /// Build a backlog first, then drain it.
    public var backlog: Backlog?
    /// Faults injected while the workload runs: broker restarts, dropped connections.
    public var faults: [Fault] = []
    /// The matrix values that produced this workload, for reports.
    public var matrixValues: [String: String] = [:]

    /// Creates a workload with defaults.
    public init(name: String) {
        self.name = name
    }

    /// Payload sizes.
    public enum MessageSize: Sendable, Equatable, CustomStringConvertible {
        /// Every payload has this many bytes.
        case fixed(Int)
        /// Sizes drawn by weight.
        case distribution([(size: Int, weight: Double)])

        public static func == (lhs: Self, rhs: Self) -> Bool { lhs.description == rhs.description }

        public var description: String {
            switch self {
            case .fixed(let size): "\(size)"
            case .distribution(let entries): entries.map { "\($0.size)@\($0.weight)" }.joined(separator: ",")
            }
        }

        /// The mean size.
        public var mean: Double {
            switch self {
            case .fixed(let size): return Double(size)
            case .distribution(let entries):
                let total = entries.reduce(0) { $0 + $1.weight }
                return entries.reduce(0) { $0 + Double($1.size) * $1.weight } / max(total, 1e-9)
            }
        }
    }

    /// How messages get keys (which order per key on Kafka).
    public enum KeyDistribution: Sendable, Equatable, CustomStringConvertible {
        /// No key.
        case none
        /// A random key out of `n`.
        case random(Int)
        /// Keys `0..<n` in turn.
        case roundRobin(Int)

        public var description: String {
            switch self {
            case .none: "none"
            case .random(let n): "random:\(n)"
            case .roundRobin(let n): "round-robin:\(n)"
            }
        }
    }

    /// The target publish rate.
    public enum Rate: Sendable, Equatable, CustomStringConvertible {
        /// As fast as the broker confirms.
        case unlimited
        /// This many messages per second in all, spread over producers.
        case fixed(Double)
        /// Search the highest rate the broker sustains.
        case max
        /// Run once per rate, for a rate-vs-latency curve.
        case sweep([Double])

        public var description: String {
            switch self {
            case .unlimited: "unlimited"
            case .fixed(let rate): "\(Int(rate))/s"
            case .max: "max"
            case .sweep(let rates): rates.map { "\(Int($0))" }.joined(separator: ",") + "/s"
            }
        }
    }

    /// When a run ends once publishing stopped.
    public enum ExitCondition: String, Sendable, Equatable {
        /// Every confirmed message reached every subscription (or the drain timeout passed).
        case drained
        /// No delivery for two seconds.
        case idle
    }

    /// How consumers acknowledge.
    public enum AckMode: Sendable, Equatable, CustomStringConvertible {
        /// The broker forgets a message when it delivers it.
        case auto
        /// One ack per message.
        case manual
        /// Ack in groups of `n` (settled together once `n` are handled).
        case multi(Int)

        public var description: String {
            switch self {
            case .auto: "auto"
            case .manual: "manual"
            case .multi(let n): "multi:\(n)"
            }
        }
    }

    /// A backlog: publish with no consumer, then start consumers and drain.
    public struct Backlog: Sendable, Equatable {
        /// Messages to build up.
        public var messages: Int
        /// Deliveries per second while draining; `nil` for as fast as possible.
        public var drainRate: Double?

        /// Creates a backlog.
        public init(messages: Int, drainRate: Double?) {
            self.messages = messages
            self.drainRate = drainRate
        }
    }

    /// The parameters as strings, for report tables.
    /// A fault injected during a run: a command run at a time or after a number of confirmed
    /// messages, whose effect the report counts (published, confirmed, delivered, duplicates, lost)
    /// and times (until the first confirm after it).
    ///
    /// ```swift
    /// var workload = Workload(name: "restart")
    /// workload.faults = [Workload.Fault(name: "restart", trigger: .after(.seconds(5)), action: .restart)]
    /// ```
    public struct Fault: Sendable, Equatable {
        /// When it fires.
        public enum Trigger: Sendable, Equatable, CustomStringConvertible {
            /// This long after the workload's publishing starts (warm-up included).
            case after(Duration)
            /// Once this many messages are confirmed.
            case afterMessages(Int)

            public var description: String {
                switch self {
                case .after(let duration): "at \(duration)"
                case .afterMessages(let count): "after \(count) messages"
                }
            }
        }

        /// What it does.
        public enum Action: Sendable, Equatable {
            /// The broker's restart command (`jadugar run --restart NAME=COMMAND`).
            case restart
            /// A shell command per broker name (`*` for any broker); brokers without one skip the fault.
            case command([String: String])
        }

        /// The name reports use.
        public var name: String
        /// When it fires.
        public var trigger: Trigger
        /// What it runs.
        public var action: Action

        /// Creates a fault.
        public init(name: String, trigger: Trigger, action: Action) {
            self.name = name
            self.trigger = trigger
            self.action = action
        }
    }

    public var parameters: [String: String] {
        var values: [String: String] = [
            "topics": "\(topics)", "partitions": "\(partitions)", "subscriptionsPerTopic": "\(subscriptionsPerTopic)",
            "consumersPerSubscription": "\(consumersPerSubscription)", "producersPerTopic": "\(producersPerTopic)",
            "messageSize": messageSize.description, "keys": keys.description, "rate": rate.description,
            "warmup": "\(warmup)", "ack": ack.description, "prefetch": "\(prefetch)", "persistent": "\(persistent)",
            "confirms": "\(confirms)", "inFlight": "\(inFlight)", "consumerDelay": "\(consumerDelay)", "exitWhen": exitWhen.rawValue,
        ]
        if let duration { values["duration"] = "\(duration)" }
        if let messages { values["messages"] = "\(messages)" }
        if let backlog { values["backlog"] = "\(backlog.messages)\(backlog.drainRate.map { " at \(Int($0))/s" } ?? "")" }
        if let payloadFile { values["payloadFile"] = payloadFile }
        if !faults.isEmpty { values["faults"] = faults.map { "\($0.name) \($0.trigger)" }.joined(separator: "; ") }
        return values
    }
}
