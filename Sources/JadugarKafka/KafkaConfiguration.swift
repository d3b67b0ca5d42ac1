import Jadugar

/// Settings of a ``KafkaBroker``: where the cluster is, librdkafka properties passed through, and
/// how the adapter maps queues, groups and retries onto Kafka.
///
/// Build it from a URL and adjust fields as needed:
///
/// ```swift
/// var configuration = try KafkaConfiguration(url: "kafka://127.0.0.1:9092?compression.type=lz4")
/// configuration.defaultPartitions = 8
/// configuration.properties["security.protocol"] = "ssl"
/// let broker = KafkaBroker(configuration: configuration)
/// ```
///
/// - Important: Secret property values (`sasl.password`, `ssl.key.password`, ...) never appear in a
///   description, log line or error.
public struct KafkaConfiguration: Sendable, CustomStringConvertible {
    /// The bootstrap servers, `host:port[,host:port...]`. Default: `"127.0.0.1:9092"`.
    public var bootstrapServers: String
    /// librdkafka properties for every client the adapter makes (producer, consumers, admin):
    /// security (`security.protocol`, `ssl.*`, `sasl.*`), `client.id`, `socket.*`, ... Default: empty.
    public var properties: [String: String]
    /// librdkafka properties for the producer only, applied over ``properties`` and the adapter's
    /// own defaults (`compression.type`, `linger.ms`, `batch.size`, `acks`, ...). Default: empty.
    public var producerProperties: [String: String]
    /// librdkafka properties for consumers only, applied over ``properties`` and the adapter's own
    /// defaults (`fetch.wait.max.ms`, `partition.assignment.strategy`, ...). Default: empty.
    public var consumerProperties: [String: String]
    /// Put in front of every Kafka topic name and consumer group id the adapter uses, so that several
    /// environments (or test runs) can share one cluster without seeing each other's topics. Names in
    /// Jadugar's API (topics, queues, groups, reply-to addresses, headers) never carry it. Default: `""`.
    public var topicPrefix: String
    /// The topic exchange name that `publish` and `subscribe` use when the options name none. Kafka
    /// has no exchanges; the name only tells default-exchange messages from others. Default: `"jadugar"`.
    public var defaultExchange: String
    /// Partitions of the topics the adapter creates (`createTopic`, `createQueue`, bound topics).
    /// Exclusive queues and retry topics get one. Default: 4.
    public var defaultPartitions: Int
    /// The replication factor of created topics; -1 takes the broker's default. Default: -1.
    public var replicationFactor: Int
    /// The largest payload `publish` accepts, in bytes; the producer's `message.max.bytes` is set
    /// above it to leave room for headers. Default: 8 MiB.
    public var maxPayloadBytes: Int
    /// Whether the cluster keeps messages across a restart; declares the `persistence` capability.
    /// Kafka does; the test broker does only with durable storage. Default: `true`.
    public var persistent: Bool
    /// `session.timeout.ms` of consumer groups: how long a silent member keeps its partitions.
    /// Default: 6 seconds.
    public var sessionTimeout: Duration
    /// `heartbeat.interval.ms` of consumer groups. Default: 1 second.
    public var heartbeatInterval: Duration
    /// How long a queue's Kafka consumer stays in its group after the last local stream closed, so
    /// that a new stream of the same group in this process skips a group join. Unsettled messages
    /// go back to the other local streams at once, and to other processes when the consumer leaves.
    /// Default: 2 seconds.
    public var consumerLinger: Duration
    /// The most fetched messages a queue's consumer buffers before it pauses fetching. Default: 2,000.
    public var maxBufferedMessages: Int
    /// How long a rebalance waits for in-flight messages of revoked partitions to be settled before
    /// it commits and gives them up (later settlements of those messages fail; the new owner
    /// redelivers them). Default: 2 seconds.
    public var revokeGracePeriod: Duration
    /// How long admin requests, scans and the first fetch of ``KafkaBroker/get(queue:)`` may take.
    /// Default: 15 seconds.
    public var operationTimeout: Duration
    /// How long `disconnect` waits for outstanding delivery reports. Default: 10 seconds.
    public var shutdownTimeout: Duration
    /// How many publishes may wait in the publish buffer before `publish` waits for room. Default: 8192.
    public var publishBufferCapacity: Int
    /// The most messages the publisher's I/O thread hands librdkafka in one batch. Default: 512.
    public var publishMaxBatch: Int
    /// A private subscription (no group) starts at the end of its topics and skips records whose
    /// timestamp is older than its start by more than this, which guards against brokers that
    /// report a stale end offset. Default: 1 second.
    public var privateStartTolerance: Duration

    /// Creates a configuration. Every parameter has the default named on its property.
    public init(
        bootstrapServers: String = "127.0.0.1:9092",
        properties: [String: String] = [:],
        producerProperties: [String: String] = [:],
        consumerProperties: [String: String] = [:],
        topicPrefix: String = "",
        defaultExchange: String = "jadugar",
        defaultPartitions: Int = 4,
        replicationFactor: Int = -1,
        maxPayloadBytes: Int = 8 << 20,
        persistent: Bool = true,
        sessionTimeout: Duration = .seconds(6),
        heartbeatInterval: Duration = .seconds(1),
        consumerLinger: Duration = .seconds(2),
        maxBufferedMessages: Int = 2000,
        revokeGracePeriod: Duration = .seconds(2),
        operationTimeout: Duration = .seconds(15),
        shutdownTimeout: Duration = .seconds(10),
        publishBufferCapacity: Int = 8192,
        publishMaxBatch: Int = 512,
        privateStartTolerance: Duration = .seconds(1)
    ) {
        self.bootstrapServers = bootstrapServers
        self.properties = properties
        self.producerProperties = producerProperties
        self.consumerProperties = consumerProperties
        self.topicPrefix = topicPrefix
        self.defaultExchange = defaultExchange
        self.defaultPartitions = defaultPartitions
        self.replicationFactor = replicationFactor
        self.maxPayloadBytes = maxPayloadBytes
        self.persistent = persistent
        self.sessionTimeout = sessionTimeout
        self.heartbeatInterval = heartbeatInterval
        self.consumerLinger = consumerLinger
        self.maxBufferedMessages = maxBufferedMessages
        self.revokeGracePeriod = revokeGracePeriod
        self.operationTimeout = operationTimeout
        self.shutdownTimeout = shutdownTimeout
        self.publishBufferCapacity = publishBufferCapacity
        self.publishMaxBatch = publishMaxBatch
        self.privateStartTolerance = privateStartTolerance
    }

    /// Reads a configuration from a `kafka://` URL.
    ///
    /// `kafka://[user:password@]host:port[,host:port...][?query]`. The hosts become
    /// `bootstrap.servers` (port 9092 when missing). A user and password turn on SASL
    /// (`sasl.username`, `sasl.password`, and `security.protocol=sasl_plaintext`,
    /// `sasl.mechanisms=PLAIN` unless the query sets them). Query parameters that name an adapter
    /// setting are read as such: `partitions`, `replicationFactor`, `exchange`, `persistent`
    /// (`true`/`false`), `maxPayloadBytes`, `sessionTimeoutMs`, `heartbeatIntervalMs`,
    /// `consumerLingerMs`, `topicPrefix`; prefix `producer.` or `consumer.` sends a property to one client only;
    /// every other parameter is a librdkafka property for every client (`compression.type`,
    /// `linger.ms`, `batch.size`, `ssl.ca.location`, ...).
    ///
    /// ```swift
    /// let configuration = try KafkaConfiguration(url: "kafka://a:9092,b:9092?producer.compression.type=zstd&partitions=12")
    /// ```
    ///
    /// - Throws: ``MessagingError`` with ``MessagingError/Code/invalidURL`` or
    ///   ``MessagingError/Code/unsupportedScheme``; the message never contains the password.
    public init(url: String) throws {
        try self.init(url: BrokerURL(url))
    }

    /// Reads a configuration from a parsed URL; see ``init(url:)-(String)``.
    public init(url: BrokerURL) throws {
        self.init()
        guard url.scheme == "kafka" else {
            throw MessagingError(.unsupportedScheme, "'\(url.redacted)' is not a Kafka URL; use kafka://host:port")
        }
        if !url.hosts.isEmpty {
            bootstrapServers = url.hosts.map { host in
                let name = host.host.contains(":") ? "[\(host.host)]" : host.host
                return "\(name):\(host.port ?? 9092)"
            }.joined(separator: ",")
        }
        func integer(_ key: String, minimum: Int) throws -> Int? {
            guard let text = url.query[key] else { return nil }
            guard let value = Int(text), value >= minimum else {
                throw MessagingError(.invalidURL, "'\(url.redacted)': \(key) must be a whole number of at least \(minimum), got '\(text)'")
            }
            return value
        }
        let adapterKeys: Set<String> = [
            "partitions", "replicationFactor", "exchange", "persistent", "maxPayloadBytes", "sessionTimeoutMs",
            "heartbeatIntervalMs", "consumerLingerMs", "topicPrefix",
        ]
        if let value = try integer("partitions", minimum: 1) { defaultPartitions = value }
        if let value = try integer("replicationFactor", minimum: -1) { replicationFactor = value }
        if let value = try integer("maxPayloadBytes", minimum: 1) { maxPayloadBytes = value }
        if let value = try integer("sessionTimeoutMs", minimum: 1) { sessionTimeout = .milliseconds(value) }
        if let value = try integer("heartbeatIntervalMs", minimum: 1) { heartbeatInterval = .milliseconds(value) }
        if let value = try integer("consumerLingerMs", minimum: 0) { consumerLinger = .milliseconds(value) }
        if let exchange = url.query["exchange"], !exchange.isEmpty { defaultExchange = exchange }
        if let prefix = url.query["topicPrefix"] { topicPrefix = prefix }
        if let text = url.query["persistent"] {
            switch text.lowercased() {
            case "true", "1", "yes": persistent = true
            case "false", "0", "no": persistent = false
            default: throw MessagingError(.invalidURL, "'\(url.redacted)': persistent must be true or false, got '\(text)'")
            }
        }
        for (key, value) in url.query where !adapterKeys.contains(key) {
            if key.hasPrefix("producer.") {
                producerProperties[String(key.dropFirst("producer.".count))] = value
            } else if key.hasPrefix("consumer.") {
                consumerProperties[String(key.dropFirst("consumer.".count))] = value
            } else {
                properties[key] = value
            }
        }
        if let user = url.user {
            properties["sasl.username"] = user
            properties["sasl.password"] = url.password ?? ""
            if properties["security.protocol"] == nil { properties["security.protocol"] = "sasl_plaintext" }
            if properties["sasl.mechanisms"] == nil { properties["sasl.mechanisms"] = "PLAIN" }
        }
    }

    /// The target and settings without secrets.
    public var description: String {
        let prefix = topicPrefix.isEmpty ? "" : " topicPrefix=\(topicPrefix)"
        let shown = properties.merging(producerProperties) { a, _ in a }.merging(consumerProperties) { a, _ in a }
            .map { "\($0.key)=\(RdKafkaHandle.redactedValue(key: $0.key, value: $0.value))" }.sorted()
        return "kafka://\(bootstrapServers)\(prefix)" + (shown.isEmpty ? "" : " [\(shown.joined(separator: ", "))]")
    }

    func validate() throws {
        if bootstrapServers.isEmpty { throw MessagingError(.invalidArgument, "KafkaConfiguration.bootstrapServers is empty") }
        if defaultPartitions < 1 { throw MessagingError(.invalidArgument, "defaultPartitions must be at least 1, got \(defaultPartitions)") }
        if maxPayloadBytes < 1 { throw MessagingError(.invalidArgument, "maxPayloadBytes must be at least 1, got \(maxPayloadBytes)") }
        if publishBufferCapacity < 1 { throw MessagingError(.invalidArgument, "publishBufferCapacity must be at least 1, got \(publishBufferCapacity)") }
        if publishMaxBatch < 1 { throw MessagingError(.invalidArgument, "publishMaxBatch must be at least 1, got \(publishMaxBatch)") }
        if maxBufferedMessages < 1 { throw MessagingError(.invalidArgument, "maxBufferedMessages must be at least 1, got \(maxBufferedMessages)") }
        if sessionTimeout <= .zero { throw MessagingError(.invalidArgument, "sessionTimeout must be positive, got \(sessionTimeout)") }
        if heartbeatInterval <= .zero { throw MessagingError(.invalidArgument, "heartbeatInterval must be positive, got \(heartbeatInterval)") }
    }

    // MARK: Names

    /// The Kafka topic (or group id) for a Jadugar name.
    func kafkaName(_ name: String) -> String { topicPrefix + name }

    /// The Jadugar name of a Kafka topic, or `nil` when the topic is outside ``topicPrefix``.
    func jadugarName(_ kafkaName: String) -> String? {
        guard kafkaName.hasPrefix(topicPrefix) else { return nil }
        return String(kafkaName.dropFirst(topicPrefix.count))
    }

    // MARK: librdkafka properties

    /// Properties every client gets.
    private var common: [String: String] {
        var values = ["bootstrap.servers": bootstrapServers, "client.id": "jadugar"]
        values.merge(properties) { _, new in new }
        return values
    }

    /// The producer's properties: idempotent, acks=all, a 1 ms linger so that a lone awaited
    /// publish is not held for librdkafka's default 5 ms, and the Java client's key partitioner
    /// (murmur2), so that Jadugar and Java producers put a key on the same partition.
    var producerClientProperties: [String: String] {
        var values = [
            "enable.idempotence": "true",
            "partitioner": "murmur2_random",
            "acks": "all",
            "linger.ms": "1",
            "message.timeout.ms": "30000",
            "message.max.bytes": String(maxPayloadBytes + (1 << 20)),
            "queue.buffering.max.messages": "1000000",
        ]
        values.merge(common) { _, new in new }
        values.merge(producerProperties) { _, new in new }
        return values
    }

    /// A consumer's properties for one group.
    func consumerClientProperties(group: String) -> [String: String] {
        var values = [
            "group.id": group,
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": "true",
            "session.timeout.ms": String(sessionTimeout.wholeMilliseconds),
            "heartbeat.interval.ms": String(heartbeatInterval.wholeMilliseconds),
            "fetch.wait.max.ms": "100",
            "topic.metadata.refresh.interval.ms": "5000",
            "queued.max.messages.kbytes": "16384",
            "receive.message.max.bytes": String(max(100_000_000, 2 * maxPayloadBytes + (1 << 20))),
        ]
        values.merge(common) { _, new in new }
        values.merge(consumerProperties) { _, new in new }
        values["group.id"] = group
        return values
    }

    /// The admin client's properties (a producer that never produces, and whose metadata requests
    /// must not create topics).
    var adminClientProperties: [String: String] {
        var values = common
        values["allow.auto.create.topics"] = "false"
        return values
    }
}

extension Duration {
    /// Whole milliseconds, rounded down, at least 0.
    var wholeMilliseconds: Int {
        let (seconds, attoseconds) = components
        return max(0, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }
}
