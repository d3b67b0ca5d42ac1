import Foundation
import Jadugar
import Synchronization

extension KafkaBroker {
    // MARK: Queues

    /// Declares a queue: creates its topic (one partition for an exclusive queue,
    /// ``KafkaConfiguration/defaultPartitions`` otherwise) and, for a durable queue, its retry topic
    /// `<name>.retry`; records its dead-letter target for the consumers of this process.
    ///
    /// - Throws: ``Jadugar/MessagingError/Code/unsupported`` for a maximum length, an overflow
    ///   policy, a message TTL or priorities, which Kafka topics cannot enforce.
    public func createQueue(_ name: String, options: QueueOptions) async throws {
        let connection = try requireConnection("create a queue")
        try TopicPattern.validateName(name, kind: "queue name")
        try options.validate()
        if options.maxLength != nil || options.overflow != .rejectPublish {
            throw MessagingError(.unsupported, "queue '\(name)': Kafka topics have no maximum length or overflow policy (use retention settings with createTopic(_:partitions:replicationFactor:config:))")
        }
        if options.messageTTL != nil {
            throw MessagingError(.unsupported, "queue '\(name)': Kafka has no queue TTL; set a per-message expiration instead (consumers dead-letter expired messages when they read them)")
        }
        if options.maxPriority > 0 {
            throw MessagingError(.unsupported, "queue '\(name)': Kafka has no message priorities")
        }
        try topology.declareQueue(name, options: options, owner: options.exclusive ? identity : nil, hasOwnTopic: true)
        var topics = [TopicSpec(name: name, partitions: options.exclusive ? 1 : configuration.defaultPartitions, replicationFactor: configuration.replicationFactor)]
        if !options.exclusive {
            topics.append(TopicSpec(name: ConsumerSpec.retryTopic(for: name), partitions: 1, replicationFactor: configuration.replicationFactor))
        }
        try await ensureTopics(topics, connection: connection)
        if let consumer = consumers.withLock({ $0[name] }) { consumer.respecify(spec(for: name)) }
    }

    /// Deletes a queue: its consumer in this client, its topic and retry topic, and its bindings.
    /// The group's committed offsets stay with the broker.
    ///
    /// - Throws: ``Jadugar/MessagingError/Code/notFound`` when neither a declaration nor a topic exists.
    public func deleteQueue(_ name: String) async throws {
        let connection = try requireConnection("delete a queue")
        let consumer = consumers.withLock { $0.removeValue(forKey: name) }
        await consumer?.shutdown()
        let entry = topology.removeQueue(name)
        let exists = try await topicExists(name, connection: connection)
        guard entry != nil || exists else {
            throw MessagingError(.notFound, "queue '\(name)' does not exist", brokerCode: "UNKNOWN_TOPIC_OR_PART")
        }
        var topics = [ConsumerSpec.retryTopic(for: name)]
        if exists { topics.append(name) }
        try await connection.admin.deleteTopics(topics, ignoreMissing: true)
        knownTopics.withLock { $0.subtract(topics) }
    }

    /// Removes the messages ready in a queue and returns how many.
    ///
    /// Kafka cannot delete single records, so this moves the group past them: the queue's topics
    /// are read to their end; a consumer of the queue in this client drops what it buffered and
    /// commits past it, otherwise the group's offsets are committed at the end. Messages in flight
    /// stay. Partitions owned by consumers in other processes are not purged.
    public func purgeQueue(_ name: String) async throws -> Int {
        let connection = try requireConnection("purge a queue")
        let spec = try await readableSpec(name, connection: connection)
        let topics = try await resolveTopics(spec, connection: connection)
        if let consumer = consumers.withLock({ $0[name] }) {
            let scan = try await connection.admin.scan(topics: topics, group: spec.isPrivate ? nil : spec.groupID, spec: spec, commitEnd: false)
            return await consumer.purge(until: scan.last)
        }
        if spec.isPrivate { return 0 }
        let scan = try await connection.admin.scan(topics: topics, group: spec.groupID, spec: spec, commitEnd: true)
        let now = KafkaEnvelope.milliseconds(Date())
        return scan.records.filter { ($0.retryAt ?? 0) <= now }.count
    }

    /// The queue's counts: ready = messages after the group's committed offsets that the queue
    /// delivers, less those this client holds; unacknowledged, delayed and consumers as this
    /// client knows them (other processes' consumers are not counted).
    ///
    /// The ready count reads the queue's topics to their end instead of trusting end offsets, so it
    /// costs a read of the backlog.
    public func queueInfo(_ name: String) async throws -> QueueInfo {
        let connection = try requireConnection("read queue counts")
        let spec = try await readableSpec(name, connection: connection)
        let topics = try await resolveTopics(spec, connection: connection)
        let local = consumers.withLock { $0[name] }?.localView()
        let scan = try await connection.admin.scan(topics: topics, group: spec.isPrivate ? nil : spec.groupID, spec: spec, commitEnd: false)
        let now = KafkaEnvelope.milliseconds(Date())
        var ready = 0
        var delayed = local?.delayed ?? 0
        for record in scan.records {
            if let local {
                if record.position.offset < (local.floor[record.position.partition] ?? -1) || local.notReady.contains(record.position) { continue }
            }
            if let due = record.retryAt, due > now { delayed += 1 } else { ready += 1 }
        }
        return QueueInfo(name: name, ready: ready, unacknowledged: local?.unacknowledged ?? 0, delayed: delayed, consumers: local?.consumers ?? 0)
    }

    /// The consumer settings of a queue that exists (declared here or as a topic).
    private func readableSpec(_ name: String, connection: Connection) async throws -> ConsumerSpec {
        if topology.queue(name) == nil, try await !topicExists(name, connection: connection) {
            throw MessagingError(.notFound, "queue '\(name)' does not exist", brokerCode: "UNKNOWN_TOPIC_OR_PART")
        }
        return spec(for: name)
    }

    /// The existing topics a queue reads: its literal topics and the topics its wildcard bindings match now.
    private func resolveTopics(_ spec: ConsumerSpec, connection: Connection) async throws -> [String] {
        let literal = try await connection.admin.partitions(of: spec.jadugarLiteralTopics)
        var topics = spec.jadugarLiteralTopics.filter { literal[$0] != nil }
        let wildcards = spec.bindings.filter { !$0.pattern.isLiteral }
        if !wildcards.isEmpty {
            let all = try await connection.admin.topics()
            for topic in all.keys.sorted() where !topic.hasPrefix("__") && !topics.contains(topic) && wildcards.contains(where: { $0.pattern.matches(topic) }) {
                topics.append(topic)
            }
        }
        return topics
    }

    // MARK: Exchanges and bindings

    /// Records an exchange. Kafka has no exchanges: the name only travels in the
    /// ``KafkaHeader/exchange`` header, and bindings select by it.
    ///
    /// - Throws: ``Jadugar/MessagingError/Code/unsupported`` for fanout and headers exchanges.
    public func createExchange(_ name: String, options: ExchangeOptions) async throws {
        _ = try requireConnection("create an exchange")
        try TopicPattern.validateName(name, kind: "exchange name")
        guard options.type == .topic || options.type == .direct else {
            throw MessagingError(.unsupported, "exchange '\(name)': Kafka routes by topic name; \(options.type) exchanges have no Kafka equivalent (use topic or direct)")
        }
        try topology.declareExchange(name, options: options)
    }

    /// Forgets an exchange and the bindings to it.
    public func deleteExchange(_ name: String) async throws {
        _ = try requireConnection("delete an exchange")
        if name.isEmpty || name == defaultExchange {
            throw MessagingError(.accessDenied, "the default exchange '\(name)' cannot be deleted", brokerCode: "ACCESS_REFUSED")
        }
        try topology.deleteExchange(name)
    }

    /// Makes a queue read the topics a pattern matches: a literal pattern is created as a topic; a
    /// wildcard pattern becomes a regular-expression subscription (`user.*` → `^user\.[^.]+$`).
    /// A running consumer of the queue subscribes again (a rebalance).
    public func bind(queue: String, exchange: String, routingKey: String) async throws {
        let connection = try requireConnection("bind a queue")
        try await bind(queue: queue, exchange: exchange, routingKey: routingKey, connection: connection)
    }

    func bind(queue: String, exchange: String, routingKey: String, connection: Connection) async throws {
        if exchange.isEmpty {
            throw MessagingError(.accessDenied, "queues cannot be bound to the default exchange", brokerCode: "ACCESS_REFUSED")
        }
        let pattern = try TopicPattern(routingKey)
        let added = try topology.bind(queue: queue, binding: KafkaBinding(exchange: exchange, pattern: pattern))
        if pattern.isLiteral {
            try await ensureTopics([TopicSpec(name: routingKey, partitions: configuration.defaultPartitions, replicationFactor: configuration.replicationFactor)], connection: connection)
        }
        if added, let consumer = consumers.withLock({ $0[queue] }) { consumer.respecify(spec(for: queue)) }
    }

    /// Removes a binding; a running consumer of the queue subscribes again.
    public func unbind(queue: String, exchange: String, routingKey: String) async throws {
        _ = try requireConnection("unbind a queue")
        let pattern = try TopicPattern(routingKey)
        if topology.unbind(queue: queue, binding: KafkaBinding(exchange: exchange, pattern: pattern)), let consumer = consumers.withLock({ $0[queue] }) {
            consumer.respecify(spec(for: queue))
        }
    }

    // MARK: Topics

    /// Creates a topic with ``KafkaConfiguration/defaultPartitions`` partitions; an existing topic is left as it is.
    public func createTopic(_ name: String) async throws {
        let connection = try requireConnection("create a topic")
        try TopicPattern.validateTopic(name)
        try await ensureTopics([TopicSpec(name: name, partitions: configuration.defaultPartitions, replicationFactor: configuration.replicationFactor)], connection: connection)
    }

    /// Creates a topic with a number of partitions, a replication factor and topic configuration
    /// (`retention.ms`, `cleanup.policy`, ...).
    ///
    /// ```swift
    /// try await broker.createTopic("orders", partitions: 12, config: ["retention.ms": "604800000"])
    /// ```
    ///
    /// - Parameters:
    ///   - replicationFactor: `nil` takes ``KafkaConfiguration/replicationFactor``.
    /// - Throws: ``Jadugar/MessagingError/Code/alreadyExists`` when the topic exists, or Kafka's refusal.
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int? = nil, config: [String: String] = [:]) async throws {
        let connection = try requireConnection("create a topic")
        try TopicPattern.validateName(name, kind: "topic")
        guard partitions >= 1 else { throw MessagingError(.invalidArgument, "a topic needs at least 1 partition, got \(partitions)") }
        try await connection.admin.createTopics(
            [TopicSpec(name: name, partitions: partitions, replicationFactor: replicationFactor ?? configuration.replicationFactor, config: config)],
            ignoreExisting: false
        )
        _ = knownTopics.withLock { $0.insert(name) }
    }

    /// Deletes a topic.
    ///
    /// - Throws: ``Jadugar/MessagingError/Code/notFound`` when it does not exist.
    public func deleteTopic(_ name: String) async throws {
        let connection = try requireConnection("delete a topic")
        try await connection.admin.deleteTopics([name], ignoreMissing: false)
        _ = knownTopics.withLock { $0.remove(name) }
    }

    /// The cluster's topics (internal `__` topics left out), sorted.
    public func listTopics() async throws -> [String] {
        let connection = try requireConnection("list topics")
        return try await connection.admin.topics().keys.filter { !$0.hasPrefix("__") }.sorted()
    }

    /// The number of partitions of a topic.
    ///
    /// ```swift
    /// let partitions = try await broker.partitionCount(of: "orders") // 12
    /// ```
    ///
    /// - Throws: ``Jadugar/MessagingError/Code/notFound`` when the topic does not exist.
    public func partitionCount(of topic: String) async throws -> Int {
        let connection = try requireConnection("read topic metadata")
        guard let count = try await connection.admin.partitions(of: [topic])[topic] else {
            throw MessagingError(.notFound, "topic '\(topic)' does not exist", brokerCode: "UNKNOWN_TOPIC_OR_PART")
        }
        return count
    }

    /// Creates the topics that are not known to exist yet (existing ones are fine).
    func ensureTopics(_ specs: [TopicSpec], connection: Connection) async throws {
        let missing = knownTopics.withLock { known in specs.filter { !known.contains($0.name) } }
        guard !missing.isEmpty else { return }
        try await connection.admin.createTopics(missing, ignoreExisting: true)
        knownTopics.withLock { $0.formUnion(missing.map(\.name)) }
    }

    func topicExists(_ topic: String, connection: Connection) async throws -> Bool {
        if knownTopics.withLock({ $0.contains(topic) }) { return true }
        let exists = try await connection.admin.partitions(of: [topic])[topic] != nil
        if exists { _ = knownTopics.withLock { $0.insert(topic) } }
        return exists
    }
}
