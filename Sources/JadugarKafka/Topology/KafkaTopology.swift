import Jadugar
import Synchronization

/// A topic and partition.
struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    var topic: String
    var partition: Int32
    var description: String { "\(topic)[\(partition)]" }
}

/// A record's place in the log.
struct RecordPosition: Hashable, Sendable {
    var partition: TopicPartition
    var offset: Int64
}

/// A queue's subscription to topics published on an exchange.
struct KafkaBinding: Hashable, Sendable {
    var exchange: String
    var pattern: TopicPattern
}

/// Queues, exchanges and bindings as this process declared them, shared by every ``KafkaBroker``
/// of the process that talks to the same bootstrap servers.
///
/// Kafka keeps topics and group offsets, but nothing like AMQP's bindings or dead-letter settings;
/// the adapter keeps those here, in memory. A consumer in another process knows a queue's
/// bindings only if it declares them too (``KafkaBroker/subscribe(_:options:)`` does).
final class KafkaTopology: Sendable {
    struct QueueEntry: Sendable {
        var options: QueueOptions
        /// The client that declared an exclusive queue.
        var owner: ObjectIdentifier?
        var bindings: [KafkaBinding] = []
        /// Whether the queue has its own topic (declared with `createQueue`); private subscriptions have none.
        var hasOwnTopic: Bool
    }

    private struct State {
        var queues: [String: QueueEntry] = [:]
        var exchanges: [String: ExchangeOptions] = [:]
        /// Delivery attempts of records that were delivered and not acknowledged when their
        /// consumer went away, so that the next consumer in this process counts on.
        var attempts: [String: [RecordPosition: Int]] = [:]
    }

    private static let all = Mutex<[String: KafkaTopology]>([:])
    private let state = Mutex(State())
    static let attemptsLimit = 100_000

    /// The registry for one cluster.
    static func shared(bootstrapServers: String, defaultExchange: String) -> KafkaTopology {
        all.withLock { registries in
            let key = bootstrapServers
            let topology = registries[key] ?? KafkaTopology()
            registries[key] = topology
            topology.state.withLock { state in
                if state.exchanges[defaultExchange] == nil { state.exchanges[defaultExchange] = ExchangeOptions(type: .topic) }
            }
            return topology
        }
    }

    // MARK: Queues

    /// Records a queue; a later declaration's options replace earlier ones (Kafka has no queue settings to conflict with).
    func declareQueue(_ name: String, options: QueueOptions, owner: ObjectIdentifier?, hasOwnTopic: Bool) throws {
        try state.withLock { state in
            if var entry = state.queues[name] {
                if let existing = entry.owner, let owner, existing != owner, entry.options.exclusive {
                    throw MessagingError(.accessDenied, "queue '\(name)' is exclusive to another connection", brokerCode: "RESOURCE_LOCKED")
                }
                entry.options = options
                entry.hasOwnTopic = entry.hasOwnTopic || hasOwnTopic
                state.queues[name] = entry
            } else {
                state.queues[name] = QueueEntry(options: options, owner: options.exclusive ? owner : nil, hasOwnTopic: hasOwnTopic)
            }
        }
    }

    func queue(_ name: String) -> QueueEntry? {
        state.withLock { $0.queues[name] }
    }

    @discardableResult
    func removeQueue(_ name: String) -> QueueEntry? {
        state.withLock { state in
            state.attempts.removeValue(forKey: name)
            return state.queues.removeValue(forKey: name)
        }
    }

    /// Exclusive queues a client declared.
    func queues(ownedBy owner: ObjectIdentifier) -> [String] {
        state.withLock { $0.queues.filter { $0.value.owner == owner }.map(\.key) }
    }

    // MARK: Exchanges and bindings

    func declareExchange(_ name: String, options: ExchangeOptions) throws {
        try state.withLock { state in
            if let existing = state.exchanges[name], existing.type != options.type {
                throw MessagingError(
                    .alreadyExists, "exchange '\(name)' exists with type \(existing.type), not \(options.type)",
                    brokerCode: "PRECONDITION_FAILED"
                )
            }
            state.exchanges[name] = options
        }
    }

    func deleteExchange(_ name: String) throws {
        try state.withLock { state in
            guard state.exchanges.removeValue(forKey: name) != nil else {
                throw MessagingError(.notFound, "exchange '\(name)' does not exist", brokerCode: "NOT_FOUND")
            }
            for key in state.queues.keys {
                state.queues[key]?.bindings.removeAll { $0.exchange == name }
            }
        }
    }

    func exchangeExists(_ name: String) -> Bool {
        state.withLock { $0.exchanges[name] != nil }
    }

    /// Adds a binding; returns whether it is new.
    func bind(queue: String, binding: KafkaBinding) throws -> Bool {
        try state.withLock { state in
            guard var entry = state.queues[queue] else {
                throw MessagingError(.notFound, "cannot bind queue '\(queue)': it was not declared in this process", brokerCode: "NOT_FOUND")
            }
            guard let exchange = state.exchanges[binding.exchange] else {
                throw MessagingError(.notFound, "cannot bind to exchange '\(binding.exchange)': it does not exist", brokerCode: "NOT_FOUND")
            }
            if exchange.type == .direct, !binding.pattern.isLiteral {
                throw MessagingError(.invalidPattern, "exchange '\(binding.exchange)' is a direct exchange; its binding keys cannot have wildcards")
            }
            guard !entry.bindings.contains(binding) else { return false }
            entry.bindings.append(binding)
            state.queues[queue] = entry
            return true
        }
    }

    /// Removes a binding; returns whether it existed.
    func unbind(queue: String, binding: KafkaBinding) -> Bool {
        state.withLock { state in
            guard var entry = state.queues[queue], let index = entry.bindings.firstIndex(of: binding) else { return false }
            entry.bindings.remove(at: index)
            state.queues[queue] = entry
            return true
        }
    }

    /// Every bound pattern, for ``KafkaBroker/listTopics()``.
    var boundPatterns: Set<String> {
        state.withLock { Set($0.queues.values.flatMap { $0.bindings.map(\.pattern.pattern) }) }
    }

    // MARK: Delivery attempts

    func rememberAttempts(queue: String, _ attempts: [RecordPosition: Int]) {
        guard !attempts.isEmpty else { return }
        state.withLock { state in
            var known = state.attempts[queue] ?? [:]
            if known.count + attempts.count > Self.attemptsLimit { known.removeAll() }
            known.merge(attempts) { max($0, $1) }
            state.attempts[queue] = known
        }
    }

    func takeAttempts(queue: String) -> [RecordPosition: Int] {
        state.withLock { $0.attempts.removeValue(forKey: queue) ?? [:] }
    }
}
