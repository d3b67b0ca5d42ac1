import Foundation
import Synchronization

/// The state of one embedded broker "server": exchanges, bindings and queues, shared by every
/// ``InMemoryBroker`` client connected to it.
final class MemoryBrokerCore: Sendable {
    struct Binding: Hashable {
        var queue: String
        var key: String
        var pattern: TopicPattern?
    }

    struct Exchange {
        var options: ExchangeOptions
        var bindings: [Binding] = []
    }

    struct Topology {
        var exchanges: [String: Exchange] = [:]
        var queues: [String: MemoryQueue] = [:]
        /// Matching results per exchange and routing key; cleared whenever bindings change.
        var routeCache: [String: [String: [MemoryQueue]]] = [:]
        var cachedRoutes = 0
        var topics = Set<String>()
    }

    static let routeCacheLimit = 10_000

    let name: String
    let configuration: InMemoryBroker.Configuration
    let topology: Mutex<Topology>
    let scheduler: MemoryScheduler
    let events = EventBroadcaster()
    let clock = ContinuousClock()

    init(name: String, configuration: InMemoryBroker.Configuration) {
        self.name = name
        self.configuration = configuration
        self.scheduler = MemoryScheduler(name: name)
        var topology = Topology()
        topology.exchanges[""] = Exchange(options: ExchangeOptions(type: .direct))
        topology.exchanges[configuration.defaultExchange] = Exchange(options: ExchangeOptions(type: .topic))
        self.topology = Mutex(topology)
    }

    deinit {
        scheduler.stop()
    }

    // MARK: Named cores

    private static let named = Mutex<[String: MemoryBrokerCore]>([:])

    /// The process-wide core with this name, created on first use.
    static func shared(named name: String, configuration: InMemoryBroker.Configuration) -> MemoryBrokerCore {
        named.withLock { cores in
            if let core = cores[name] { return core }
            let core = MemoryBrokerCore(name: name, configuration: configuration)
            cores[name] = core
            return core
        }
    }

    // MARK: Routing

    /// Routes a message into every matching queue; returns how many queues took it.
    func route(exchange: String, routingKey: String, message: Message) throws -> Int {
        let queues = try lookup(exchange: exchange, routingKey: routingKey, message: message)
        let now = clock.now
        var accepted = 0
        var full: [String] = []
        for queue in queues {
            switch queue.enqueue(message, exchange: exchange, now: now) {
            case .accepted(let effects):
                accepted += 1
                apply(effects, from: queue)
            case .full:
                full.append(queue.name)
            case .deleted:
                break
            }
        }
        if !full.isEmpty {
            throw MessagingError(
                .queueFull,
                "queue \(full.map { "'\($0)'" }.joined(separator: ", ")) is full (max length reached, overflow reject-publish); the message was not stored there",
                brokerCode: "REJECT_PUBLISH"
            )
        }
        return accepted
    }

    private func lookup(exchange name: String, routingKey: String, message: Message) throws -> [MemoryQueue] {
        try topology.withLock { topology in
            if name.isEmpty {
                return topology.queues[routingKey].map { [$0] } ?? []
            }
            guard let exchange = topology.exchanges[name] else {
                throw MessagingError(.notFound, "exchange '\(name)' does not exist", brokerCode: "NOT_FOUND", brokerReason: "no exchange '\(name)'")
            }
            if exchange.options.type != .headers, let cached = topology.routeCache[name]?[routingKey] {
                return cached
            }
            var names: [String] = []
            var seen = Set<String>()
            for binding in exchange.bindings where !seen.contains(binding.queue) {
                let matches: Bool
                switch exchange.options.type {
                case .fanout: matches = true
                case .direct: matches = binding.key == routingKey
                case .headers: matches = Self.headersMatch(binding.key, message.metadata.headers)
                default: matches = binding.pattern?.matches(routingKey) ?? (binding.key == routingKey)
                }
                if matches {
                    seen.insert(binding.queue)
                    names.append(binding.queue)
                }
            }
            let queues = names.compactMap { topology.queues[$0] }
            if exchange.options.type != .headers {
                if topology.cachedRoutes >= Self.routeCacheLimit {
                    topology.routeCache.removeAll()
                    topology.cachedRoutes = 0
                }
                topology.routeCache[name, default: [:]][routingKey] = queues
                topology.cachedRoutes += 1
            }
            return queues
        }
    }

    /// A headers binding key is `key=value[,key=value...]`; every pair must be present.
    private static func headersMatch(_ key: String, _ headers: [String: String]) -> Bool {
        for pair in key.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, headers[parts[0]] == parts[1] else { return false }
        }
        return true
    }

    // MARK: Effects

    /// Carries out what a queue operation decided under its lock.
    func apply(_ effects: MemoryQueue.Effects, from queue: MemoryQueue) {
        for (continuation, result) in effects.resume { continuation.resume(with: result) }
        for deadLetter in effects.deadLetters { self.deadLetter(deadLetter, from: queue) }
        if let at = effects.sweepAt {
            scheduler.schedule(at: at) { [weak self, weak queue] in
                guard let self, let queue else { return }
                self.apply(queue.sweep(now: self.clock.now), from: queue)
            }
        }
        if effects.becameUnused {
            deleteQueueIfSame(queue)
        }
    }

    /// Schedules a delayed redelivery into the same queue.
    func redeliver(_ entry: MemoryQueue.Entry, after delay: Duration, into queue: MemoryQueue) {
        scheduler.schedule(at: clock.now.advanced(by: delay)) { [weak self, weak queue] in
            guard let self, let queue else { return }
            self.apply(queue.redeliver(entry, now: self.clock.now), from: queue)
        }
    }

    private func deadLetter(_ deadLetter: MemoryQueue.DeadLetter, from queue: MemoryQueue) {
        var message = deadLetter.entry.message
        guard let target = queue.options.deadLetter else {
            events.emit(BrokerEvent(kind: .dropped, broker: "memory", detail: "message \(message.id) from queue '\(queue.name)' discarded (\(deadLetter.reason)); the queue has no dead-letter target"))
            return
        }
        var headers = message.metadata.headers
        headers[JadugarHeader.deadLetterReason] = deadLetter.reason
        headers[JadugarHeader.attempts] = String(deadLetter.entry.deliveryCount)
        headers[JadugarHeader.originalQueue] = queue.name
        if headers[JadugarHeader.originalTopic] == nil { headers[JadugarHeader.originalTopic] = message.topic }
        if headers[JadugarHeader.originalExchange] == nil { headers[JadugarHeader.originalExchange] = deadLetter.entry.exchange }
        headers[JadugarHeader.deadLetteredAt] = ISO8601DateFormatter().string(from: Date())
        if let error = deadLetter.error { headers[JadugarHeader.lastError] = error } else { headers.removeValue(forKey: JadugarHeader.lastError) }
        message.metadata.headers = headers
        // The expiration served its purpose; a dead letter must not expire again in the dead-letter queue.
        message.metadata.expiration = nil
        do {
            let routed = try route(exchange: target.exchange, routingKey: target.routingKey ?? message.topic, message: message)
            if routed == 0 {
                events.emit(BrokerEvent(kind: .dropped, broker: "memory", detail: "dead letter \(message.id) from '\(queue.name)' matched no queue at exchange '\(target.exchange)'"))
            } else {
                events.emit(BrokerEvent(kind: .deadLettered, broker: "memory", detail: "message \(message.id) from '\(queue.name)': \(deadLetter.reason)"))
            }
        } catch {
            events.emit(BrokerEvent(kind: .error, broker: "memory", detail: "dead-lettering message \(message.id) from '\(queue.name)' failed: \(error)"))
        }
    }

    // MARK: Topology

    func queue(named name: String) throws -> MemoryQueue {
        guard let queue = topology.withLock({ $0.queues[name] }) else {
            throw MessagingError(.notFound, "queue '\(name)' does not exist", brokerCode: "NOT_FOUND", brokerReason: "no queue '\(name)'")
        }
        return queue
    }

    func createQueue(_ name: String, options: QueueOptions, owner: ObjectIdentifier) throws {
        try TopicPattern.validateName(name, kind: "queue name")
        try options.validate()
        try topology.withLock { topology in
            if let existing = topology.queues[name] {
                if existing.options != options {
                    throw MessagingError(
                        .alreadyExists,
                        "queue '\(name)' exists with different settings; delete it first or declare it with the same settings",
                        brokerCode: "PRECONDITION_FAILED", brokerReason: "inequivalent arguments for queue '\(name)'"
                    )
                }
                if let queueOwner = existing.owner, queueOwner != owner {
                    throw MessagingError(.accessDenied, "queue '\(name)' is exclusive to another connection", brokerCode: "RESOURCE_LOCKED")
                }
                return
            }
            topology.queues[name] = MemoryQueue(
                name: name, options: options, defaultMaxLength: configuration.defaultMaxLength,
                owner: options.exclusive ? owner : nil
            )
        }
    }

    func deleteQueue(_ name: String) throws {
        let removed: MemoryQueue? = topology.withLock { topology in
            guard let queue = topology.queues.removeValue(forKey: name) else { return nil }
            Self.removeBindings(toQueue: name, &topology)
            return queue
        }
        guard let removed else {
            throw MessagingError(.notFound, "queue '\(name)' does not exist", brokerCode: "NOT_FOUND")
        }
        apply(removed.markDeleted(), from: removed)
    }

    private func deleteQueueIfSame(_ queue: MemoryQueue) {
        let removed = topology.withLock { topology -> Bool in
            guard topology.queues[queue.name] === queue else { return false }
            topology.queues.removeValue(forKey: queue.name)
            Self.removeBindings(toQueue: queue.name, &topology)
            return true
        }
        if removed { apply(queue.markDeleted(), from: queue) }
    }

    private static func removeBindings(toQueue name: String, _ topology: inout Topology) {
        for key in topology.exchanges.keys {
            topology.exchanges[key]?.bindings.removeAll { $0.queue == name }
        }
        topology.routeCache.removeAll()
        topology.cachedRoutes = 0
    }

    func createExchange(_ name: String, options: ExchangeOptions) throws {
        try TopicPattern.validateName(name, kind: "exchange name")
        try topology.withLock { topology in
            if let existing = topology.exchanges[name] {
                if existing.options.type != options.type {
                    throw MessagingError(
                        .alreadyExists,
                        "exchange '\(name)' exists with type \(existing.options.type), not \(options.type)",
                        brokerCode: "PRECONDITION_FAILED", brokerReason: "inequivalent arg 'type' for exchange '\(name)'"
                    )
                }
                return
            }
            topology.exchanges[name] = Exchange(options: options)
        }
    }

    func deleteExchange(_ name: String) throws {
        try topology.withLock { topology in
            if name.isEmpty || name == configuration.defaultExchange {
                throw MessagingError(.accessDenied, "the default exchange '\(name)' cannot be deleted", brokerCode: "ACCESS_REFUSED")
            }
            guard topology.exchanges.removeValue(forKey: name) != nil else {
                throw MessagingError(.notFound, "exchange '\(name)' does not exist", brokerCode: "NOT_FOUND")
            }
            topology.routeCache.removeValue(forKey: name)
        }
    }

    func bind(queue: String, exchange: String, routingKey: String) throws {
        try topology.withLock { topology in
            guard topology.queues[queue] != nil else {
                throw MessagingError(.notFound, "cannot bind queue '\(queue)': it does not exist", brokerCode: "NOT_FOUND")
            }
            if exchange.isEmpty {
                throw MessagingError(.accessDenied, "queues cannot be bound to the default exchange", brokerCode: "ACCESS_REFUSED")
            }
            guard var target = topology.exchanges[exchange] else {
                throw MessagingError(.notFound, "cannot bind to exchange '\(exchange)': it does not exist", brokerCode: "NOT_FOUND")
            }
            let pattern = target.options.type == .topic ? try TopicPattern(routingKey) : nil
            let binding = Binding(queue: queue, key: routingKey, pattern: pattern)
            guard !target.bindings.contains(binding) else { return }
            target.bindings.append(binding)
            topology.exchanges[exchange] = target
            topology.routeCache.removeValue(forKey: exchange)
        }
    }

    func unbind(queue: String, exchange: String, routingKey: String) throws {
        try topology.withLock { topology in
            guard var target = topology.exchanges[exchange] else {
                throw MessagingError(.notFound, "exchange '\(exchange)' does not exist", brokerCode: "NOT_FOUND")
            }
            target.bindings.removeAll { $0.queue == queue && $0.key == routingKey }
            topology.exchanges[exchange] = target
            topology.routeCache.removeValue(forKey: exchange)
        }
    }

    func createTopic(_ name: String) throws {
        try TopicPattern.validateTopic(name)
        _ = topology.withLock { $0.topics.insert(name) }
    }

    func deleteTopic(_ name: String) throws {
        try topology.withLock { topology in
            guard topology.topics.remove(name) != nil else {
                throw MessagingError(.notFound, "topic '\(name)' was not created", brokerCode: "NOT_FOUND")
            }
        }
    }

    func listTopics() -> [String] {
        topology.withLock { topology in
            var topics = topology.topics
            for (name, exchange) in topology.exchanges where !name.isEmpty {
                for binding in exchange.bindings { topics.insert(binding.key) }
            }
            return topics.sorted()
        }
    }

    func queuesOwned(by owner: ObjectIdentifier) -> [String] {
        topology.withLock { topology in
            topology.queues.values.filter { $0.owner == owner }.map(\.name)
        }
    }
}
