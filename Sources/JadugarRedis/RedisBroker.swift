import Foundation
import Jadugar
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A ``MessageBroker`` over Redis Streams, through hiredis.
///
/// Each queue is a stream (one per priority level for queues declared with a `maxPriority`)
/// carrying one consumer group; exchanges and bindings live in Redis under the key prefix, so
/// that every process using the same Redis agrees on them. A publish runs the adapter's Lua
/// function library, which matches the bindings (`*` and `#` included) and appends the message to every
/// bound queue's stream in one atomic step. Consumers read with `XREADGROUP` on threads of their
/// own, acknowledge with `XACK` + `XDEL`, and give unsettled messages back when they close or lose
/// their connection; messages of consumers that died are reclaimed after the visibility timeout.
/// Requeues go back to the head of the queue at once; delayed retries wait in a sorted set;
/// expired and rejected messages go to the queue's dead-letter target with the `x-jadugar-*`
/// headers. The stream-entry layout (envelope v1) and the key layout are in `docs/redis.md`.
///
/// ```swift
/// let broker = try RedisBroker(url: "redis://127.0.0.1:6379")
/// try await broker.connect()
/// let stream = try await broker.subscribe("user.*", options: SubscribeOptions(group: "mailer"))
/// try await broker.publish(Message(topic: "user.created", string: "hi"), options: .default)
/// for try await delivery in stream {
///     try await delivery.ack()
/// }
/// ```
///
/// - Important: Safe to use from many tasks at once. Every hiredis call runs on a thread of the
///   adapter (one I/O thread for publishing, one for control commands, one timer thread, one
///   reader thread per consumer), never on Swift's cooperative pool. Needs a standalone Redis 7
///   (no Cluster); RESP2 only, no TLS (Debian's hiredis 0.14).
public final class RedisBroker: MessageBroker {
    /// The default topic exchange's name, declared on connect.
    ///
    /// ```swift
    /// try await broker.bind(queue: "audit", exchange: RedisBroker.defaultExchangeName, routingKey: "#")
    /// ```
    public static let defaultExchangeName = "jadugar"

    /// Ephemeral fan-out, on `PUBLISH`/`PSUBSCRIBE` (``publishEphemeral(_:)`` and
    /// ``subscribeEphemeral(_:bufferLimit:)``): at-most-once, not stored, lost when no subscriber
    /// listens or a connection drops. Not the path of ``publish(_:options:)`` and ``subscribe(_:options:)``.
    ///
    /// ```swift
    /// if broker.capabilities.supports(RedisBroker.ephemeralFanout) { _ = try await broker.subscribeEphemeral("cache.#") }
    /// ```
    public static let ephemeralFanout = BrokerFeature("ephemeral-fanout (at-most-once)")

    public let name = "redis"
    public let capabilities: BrokerCapabilities
    public var defaultExchange: String { configuration.defaultExchange }
    /// The settings, with the URL's query applied.
    ///
    /// ```swift
    /// print(broker.configuration.keyPrefix) // "jadugar:"
    /// ```
    public let configuration: Configuration
    let endpoint: RedisEndpoint
    /// The owner of this client's exclusive queues and the stem of its consumer names.
    let clientID: String
    private let connected = Atomic<Bool>(false)
    private let state = Mutex(State())
    /// Topics (and queue names) that passed validation lately: checking a name's characters
    /// costs more than the rest of encoding a small message, and publishers reuse few names.
    private let validNames = Mutex<Set<String>>([])
    private let eventBroadcaster = EventBroadcaster()

    private enum Phase {
        case idle
        case connecting(Task<RedisSession, any Error>)
        case connected(RedisSession)
        case disconnecting(Task<Void, Never>)
    }

    private struct State {
        var phase = Phase.idle
        var getters: [String: RedisConsumer] = [:]
        var ephemeral: [ObjectIdentifier: RedisEphemeralSubscriber] = [:]
    }

    /// Creates a client for a `redis://[user:password@]host:port[/db]` URL. Nothing connects
    /// until ``connect()``.
    ///
    /// ```swift
    /// let broker = try RedisBroker(url: BrokerURL("redis://app:secret@127.0.0.1:6379/2?prefix=shop:"))
    /// ```
    ///
    /// - Parameters:
    ///   - url: The server. The query may set `prefix`, `exchange`, `persistence`,
    ///     `visibilityTimeout` and `blockTimeout` (ms) and `maxLength`, over `configuration`.
    ///   - configuration: Settings. Default: `Configuration()`.
    /// - Throws: ``MessagingError`` with `invalidURL`, `unsupportedScheme` or `unsupported` (`rediss://`).
    public init(url: BrokerURL, configuration: Configuration = Configuration()) throws {
        var configuration = configuration
        try configuration.apply(query: url.query, url: url)
        try configuration.validate()
        self.endpoint = try RedisEndpoint(url: url)
        self.configuration = configuration
        self.clientID = Self.makeClientID()
        var features: Set<BrokerFeature> = [
            .wildcardRouting, .consumerGroups, .priority, .messageTTL, .delayedRedelivery, .deadLetter,
            .redelivery, .prefetch, .browse, .maxLength, .reconnect, Self.ephemeralFanout,
        ]
        if configuration.persistence { features.insert(.persistence) }
        capabilities = BrokerCapabilities(
            features: features,
            // Streams give storage, consumer groups and pending lists; the rest is the adapter's
            // (its Lua function library and threads).
            emulated: [.wildcardRouting, .priority, .messageTTL, .delayedRedelivery, .deadLetter, .prefetch, .browse, .maxLength, .reconnect],
            ordering: .queue,
            maxPayloadBytes: configuration.maxPayloadBytes
        )
    }

    /// Creates a client from a URL string.
    ///
    /// ```swift
    /// let broker = try RedisBroker(url: "redis://127.0.0.1:6379")
    /// ```
    ///
    /// - Throws: ``MessagingError`` with `invalidURL`, `unsupportedScheme` or `unsupported`.
    public convenience init(url: String, configuration: Configuration = Configuration()) throws {
        try self.init(url: BrokerURL(url), configuration: configuration)
    }

    /// Registers the `redis` scheme with ``BrokerRegistry``, so that a `redis://` URL selects this broker.
    ///
    /// ```swift
    /// RedisBroker.register()
    /// let manager = try MessageManager(options: MessageOptions(url: "redis://127.0.0.1:6379"))
    /// ```
    public static func register() {
        BrokerRegistry.register(scheme: "redis") { url in try RedisBroker(url: url) }
        BrokerRegistry.register(scheme: "rediss") { url in try RedisBroker(url: url) }
    }

    private static func makeClientID() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buffer, buffer.count) == 0 ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "host"
        var generator = SystemRandomNumberGenerator()
        let random = String(generator.next() as UInt32, radix: 16)
        let clean = host.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-") }
        return "\(String(String.UnicodeScalarView(clean)).prefix(32)).\(getpid()).\(random)"
    }

    // MARK: Connection

    public var isConnected: Bool { connected.load(ordering: .acquiring) }

    /// Connects: opens the control connection (logging in and checking that the server speaks
    /// Redis), loads the adapter's function library, declares the default exchange and starts the
    /// timer thread; the publishing connection opens with the first publish. Calling it when
    /// connected does nothing.
    ///
    /// ```swift
    /// try await broker.connect()
    /// ```
    ///
    /// - Throws: ``MessagingError``: `connectionFailed` (unreachable, or not Redis) within
    ///   ``Configuration/connectTimeout``; `authenticationFailed` (wrong or missing password).
    public func connect() async throws {
        while true {
            enum Step { case done, wait(Task<RedisSession, any Error>), waitDisconnect(Task<Void, Never>) }
            let step: Step = state.withLock { state in
                switch state.phase {
                case .connected: return .done
                case .connecting(let task): return .wait(task)
                case .disconnecting(let task): return .waitDisconnect(task)
                case .idle:
                    let task = Task { try await self.establish() }
                    state.phase = .connecting(task)
                    return .wait(task)
                }
            }
            switch step {
            case .done:
                return
            case .waitDisconnect(let task):
                await task.value
            case .wait(let task):
                _ = try await task.value
                return
            }
        }
    }

    /// Opens a session and publishes the outcome in the state; run once per connect.
    private func establish() async throws -> RedisSession {
        do {
            let session = try await openSession()
            state.withLock { $0.phase = .connected(session) }
            connected.store(true, ordering: .releasing)
            eventBroadcaster.emit(BrokerEvent(kind: .connected, broker: name, detail: endpoint.address))
            return session
        } catch {
            state.withLock { $0.phase = .idle }
            throw error
        }
    }

    private func openSession() async throws -> RedisSession {
        let link = RedisLink(
            endpoint: endpoint, connectTimeout: configuration.connectTimeout, commandTimeout: configuration.commandTimeout,
            minimumBackoff: configuration.minimumReconnectBackoff, maximumBackoff: configuration.maximumReconnectBackoff,
            events: eventBroadcaster, logger: configuration.logger
        )
        let session = RedisSession(link: link, configuration: configuration, clientID: clientID)
        do {
            do {
                _ = try await session.control.run(RedisScript.load)
            } catch let error as MessagingError where RedisScript.isAlreadyLoaded(error.brokerReason ?? "") {
                // Loaded by an earlier client: the name carries the code's hash, so it is this code.
            }
            try await session.control.send(liveness(session))
            try await session.control.send(session.script("declare_exchange", [configuration.defaultExchange, ExchangeType.topic.name]))
        } catch {
            await session.control.shutdown()
            await session.publisher.shutdown()
            throw error
        }
        session.janitor.start(session: session)
        configuration.logger.info("connected", metadata: [RedisLogKey.broker: "redis", RedisLogKey.server: "\(endpoint.address)", RedisLogKey.client: "\(clientID)"])
        return session
    }

    private func liveness(_ session: RedisSession) -> RedisCommand {
        let ttl = max(configuration.visibilityTimeout * 3, .seconds(3))
        return RedisCommand("SET", "\(session.keys.prefix)client:\(clientID)", "1", "PX", String(ttl.milliseconds))
    }

    /// Disconnects: consumers stop and give back their unsettled messages, this client's
    /// exclusive queues are deleted, buffered publishes are written, and the threads end.
    public func disconnect() async throws {
        enum Step { case nothing, wait(Task<Void, Never>), waitConnect(Task<RedisSession, any Error>) }
        while true {
            let step: Step = state.withLock { state in
                switch state.phase {
                case .idle: return .nothing
                case .disconnecting(let task): return .wait(task)
                case .connecting(let task): return .waitConnect(task)
                case .connected(let session):
                    connected.store(false, ordering: .releasing)
                    let getters = Array(state.getters.values)
                    let ephemeral = Array(state.ephemeral.values)
                    state.getters.removeAll()
                    state.ephemeral.removeAll()
                    let task = Task { await self.closeSession(session, getters: getters, ephemeral: ephemeral) }
                    state.phase = .disconnecting(task)
                    return .wait(task)
                }
            }
            switch step {
            case .nothing:
                return
            case .waitConnect(let task):
                _ = try? await task.value
            case .wait(let task):
                await task.value
                state.withLock { state in
                    if case .disconnecting = state.phase { state.phase = .idle }
                }
                return
            }
        }
    }

    /// A client dropped while connected still closes its session, so that its threads end and
    /// its consumers give their messages back.
    deinit {
        let leftover: (RedisSession, [RedisConsumer], [RedisEphemeralSubscriber])? = state.withLock { state in
            guard case .connected(let session) = state.phase else { return nil }
            return (session, Array(state.getters.values), Array(state.ephemeral.values))
        }
        if let (session, getters, ephemeral) = leftover {
            let (clientID, events, name, address) = (clientID, eventBroadcaster, name, endpoint.address)
            Task.detached {
                await Self.closeSession(session, getters: getters, ephemeral: ephemeral, clientID: clientID, events: events, name: name, address: address)
            }
        }
    }

    private func closeSession(_ session: RedisSession, getters: [RedisConsumer], ephemeral: [RedisEphemeralSubscriber]) async {
        await Self.closeSession(session, getters: getters, ephemeral: ephemeral, clientID: clientID, events: eventBroadcaster, name: name, address: endpoint.address)
    }

    private static func closeSession(
        _ session: RedisSession, getters: [RedisConsumer], ephemeral: [RedisEphemeralSubscriber],
        clientID: String, events: EventBroadcaster, name: String, address: String
    ) async {
        await withTaskGroup(of: Void.self) { group in
            for consumer in session.consumers + getters {
                group.addTask { await consumer.close() }
            }
            for subscriber in ephemeral {
                group.addTask { await subscriber.close() }
            }
        }
        _ = try? await session.control.run(session.script("drop_owned", [clientID]))
        await session.janitor.stop()
        await session.publisher.shutdown()
        await session.control.shutdown()
        events.emit(BrokerEvent(kind: .disconnected, broker: name, detail: address))
    }

    func requireSession(_ operation: String) throws -> RedisSession {
        let session: RedisSession? = state.withLock { state in
            if case .connected(let session) = state.phase { return session }
            return nil
        }
        guard let session else { throw RedisErrors.notConnected(operation) }
        return session
    }

    // MARK: Publishing

    public func publish(_ message: Message, options: PublishOptions) async throws {
        let session = try requireSession("publish")
        let (item, expiration) = try publishItem(message, options: options)
        try await session.publisher.publish(item)
        if let expiration { session.janitor.wake(after: expiration) }
    }

    /// Validates a publish and encodes the message's part of a `publish` call (in RESP, on the
    /// publishing task); returns the message's expiration too.
    private func publishItem(_ message: Message, options: PublishOptions) throws -> (RedisPublishItem, Duration?) {
        var segment = RESPArguments(capacity: message.payload.count + 256)
        let expiration = try encodePublish(message, options: options, into: &segment)
        return (RedisPublishItem(segment: segment), expiration)
    }

    /// Validates a publish and appends exchange, topic, mandatory flag, priority, expiration, field
    /// count and the envelope's fields.
    private func encodePublish(_ message: Message, options: PublishOptions, into segment: inout some RedisArguments) throws -> Duration? {
        let exchange = options.exchange ?? defaultExchange
        try validate(message.topic, asQueue: exchange.isEmpty)
        if message.payload.count > configuration.maxPayloadBytes {
            throw MessagingError(.payloadTooLarge, "the payload of message \(message.id) is \(message.payload.count) bytes; the Redis adapter accepts at most \(configuration.maxPayloadBytes)")
        }
        var message = message
        if let priority = options.priority { message.metadata.priority = priority }
        if let expiration = options.expiration { message.metadata.expiration = expiration }
        if !options.headers.isEmpty { message.metadata.headers.merge(options.headers) { _, new in new } }
        if let expiration = message.metadata.expiration, expiration < .zero {
            throw MessagingError(.invalidArgument, "expiration must not be negative, got \(expiration)")
        }
        segment.append(exchange)
        segment.append(message.topic)
        segment.append(options.mandatory ? "1" : "0")
        segment.append(message.metadata.priority.map { String($0) } ?? "")
        segment.append(message.metadata.expiration.map { String(RedisEnvelope.milliseconds($0)) } ?? "")
        segment.append(RedisEnvelope.fieldCount(message, exchange: exchange))
        RedisEnvelope.append(message, to: &segment, exchange: exchange)
        return message.metadata.expiration
    }

    /// Validates a topic (or, for the default exchange, a queue name), remembering the names that passed.
    private func validate(_ name: String, asQueue: Bool) throws {
        let key = asQueue ? "q\u{0}" + name : name
        if validNames.withLock({ $0.contains(key) }) { return }
        if asQueue {
            try TopicPattern.validateName(name, kind: "queue name")
        } else {
            try TopicPattern.validateTopic(name)
        }
        validNames.withLock { names in
            if names.count >= 4096 { names.removeAll(keepingCapacity: true) }
            names.insert(key)
        }
    }

    /// The arguments of the call that publishes `count` copies of a message
    /// (`FCALL <library> 0 publish ...`), as text, so that a benchmark can replay exactly that
    /// command with `redis-benchmark`. Binary payloads come out lossy; use a text payload.
    package func publishArguments(_ message: Message, options: PublishOptions = .default, count: Int = 1) throws -> [String] {
        var segment = RedisCommand()
        _ = try encodePublish(message, options: options, into: &segment)
        var call = RedisScript.command("publish", prefix: configuration.keyPrefix, trim: configuration.streamMaxLength)
        call.append(count)
        for _ in 0..<count { call.append(contentsOf: segment) }
        return call.arguments
    }

    // MARK: Consuming

    public func consume(queue: String, options: ConsumeOptions) async throws -> DeliveryStream {
        let session = try requireSession("consume")
        try options.validate()
        try TopicPattern.validateName(queue, kind: "queue name")
        let consumerName = session.nextConsumerName("c")
        let registered = try await session.control.run(session.script("register", [queue, consumerName, clientID, "1"]))
        let consumer = RedisConsumer(
            queue: queue, name: consumerName, prefetch: options.prefetch, autoAck: options.autoAck,
            mode: .stream, maxPriority: registered.int ?? 0, session: session
        )
        consumer.start()
        return DeliveryStream(queue: queue, source: consumer)
    }

    public func get(queue: String) async throws -> Delivery? {
        let session = try requireSession("get from a queue")
        if let getter = state.withLock({ $0.getters[queue] }), !getter.isFinished {
            return try await getter.getOne()
        }
        let getterName = session.nextConsumerName("get")
        let registered = try await session.control.run(session.script("register", [queue, getterName, clientID, "0"]))
        let created = RedisConsumer(queue: queue, name: getterName, prefetch: .max, autoAck: false, mode: .getter, maxPriority: registered.int ?? 0, session: session)
        let getter = state.withLock { state -> RedisConsumer in
            if let existing = state.getters[queue], !existing.isFinished { return existing }
            state.getters[queue] = created
            return created
        }
        if getter === created { session.add(created) }
        return try await getter.getOne()
    }

    // MARK: Topology

    public func createQueue(_ name: String, options: QueueOptions) async throws {
        let session = try requireSession("create a queue")
        try TopicPattern.validateName(name, kind: "queue name")
        try options.validate()
        let ttl = options.messageTTL.map { String($0.milliseconds) } ?? ""
        let maxLength = options.maxLength.map(String.init) ?? ""
        let flag = { (value: Bool) in value ? "1" : "0" }
        let deadLetter = options.deadLetter
        let spec = [
            "durable=\(flag(options.durable))", "exclusive=\(flag(options.exclusive))", "autoDelete=\(flag(options.autoDelete))",
            "maxPriority=\(options.maxPriority)", "ttl=\(ttl)", "maxLength=\(maxLength)", "overflow=\(options.overflow)",
            "deadLetter=\(deadLetter.map { "\($0.exchange)|\($0.routingKey ?? "*")" } ?? "none")", "kind=\(options.kind ?? "")",
        ].joined(separator: ";")
        _ = try await session.control.run(session.script("declare_queue", [
            name, clientID, spec, String(options.maxPriority), ttl, maxLength, options.overflow.description,
            flag(deadLetter != nil), deadLetter?.exchange ?? "", flag(deadLetter?.routingKey != nil), deadLetter?.routingKey ?? "",
            flag(options.durable), flag(options.exclusive), flag(options.autoDelete), options.kind ?? "",
        ]))
    }

    public func deleteQueue(_ name: String) async throws {
        let session = try requireSession("delete a queue")
        _ = try await session.control.run(session.script("delete_queue", [name]))
        let getter = state.withLock { $0.getters.removeValue(forKey: name) }
        if let getter { await getter.close() }
        await session.wake(queue: name)
    }

    public func purgeQueue(_ name: String) async throws -> Int {
        let session = try requireSession("purge a queue")
        return try await session.control.run(session.script("purge", [name])).int ?? 0
    }

    public func queueInfo(_ name: String) async throws -> QueueInfo {
        let session = try requireSession("read queue counts")
        let counts = try await session.control.run(session.script("info", [name])).elements.map { $0.int ?? 0 }
        guard counts.count == 4 else {
            throw MessagingError(.brokerError, "Redis returned unexpected counts for queue '\(name)': \(counts)")
        }
        return QueueInfo(name: name, ready: max(counts[0], 0), unacknowledged: max(counts[1], 0), delayed: counts[2], consumers: counts[3])
    }

    public func createExchange(_ name: String, options: ExchangeOptions) async throws {
        let session = try requireSession("create an exchange")
        try TopicPattern.validateName(name, kind: "exchange name")
        _ = try await session.control.run(session.script("declare_exchange", [name, options.type.name]))
    }

    public func deleteExchange(_ name: String) async throws {
        let session = try requireSession("delete an exchange")
        _ = try await session.control.run(session.script("delete_exchange", [name, defaultExchange]))
    }

    public func bind(queue: String, exchange: String, routingKey: String) async throws {
        let session = try requireSession("bind a queue")
        if routingKey.contains("*") || routingKey.contains("#") { _ = try TopicPattern(routingKey) }
        _ = try await session.control.run(session.script("bind", [queue, exchange, routingKey]))
    }

    public func unbind(queue: String, exchange: String, routingKey: String) async throws {
        let session = try requireSession("unbind a queue")
        _ = try await session.control.run(session.script("unbind", [queue, exchange, routingKey]))
    }

    public func createTopic(_ name: String) async throws {
        let session = try requireSession("create a topic")
        try TopicPattern.validateTopic(name)
        try await session.control.send(RedisCommand("SADD", "\(session.keys.prefix)topics", name))
    }

    public func deleteTopic(_ name: String) async throws {
        let session = try requireSession("delete a topic")
        let removed = try await session.control.run(RedisCommand("SREM", "\(session.keys.prefix)topics", name))
        if removed.int == 0 {
            throw MessagingError(.notFound, "topic '\(name)' was not created", brokerCode: "NOT_FOUND")
        }
    }

    public func listTopics() async throws -> [String] {
        let session = try requireSession("list topics")
        return try await session.control.run(session.script("topics")).elements.compactMap(\.text).sorted()
    }

    // MARK: Monitoring

    /// Round trip to Redis: `PING` for the latency, `INFO server` for the version.
    public func healthCheck() async -> HealthStatus {
        let session: RedisSession
        do {
            session = try requireSession("check health")
        } catch {
            return HealthStatus(broker: name, isHealthy: false, reason: "not connected")
        }
        let start = ContinuousClock.now
        do {
            let pong = try await session.control.run(RedisCommand("PING"))
            let latency = ContinuousClock.now - start
            guard pong.text == "PONG" else {
                return HealthStatus(broker: name, isHealthy: false, latency: latency, reason: "PING answered \(pong)")
            }
            let info = try await session.control.run(RedisCommand("INFO", "server")).text ?? ""
            let version = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }.map { String($0.dropFirst("redis_version:".count)) }
            return HealthStatus(broker: name, isHealthy: true, latency: latency, version: version)
        } catch {
            return HealthStatus(broker: name, isHealthy: false, reason: "\(error)")
        }
    }

    public func events() -> AsyncStream<BrokerEvent> {
        eventBroadcaster.stream()
    }

    // MARK: Ephemeral fan-out

    func addEphemeral(_ subscriber: RedisEphemeralSubscriber) throws {
        try state.withLock { state in
            guard case .connected = state.phase else { throw RedisErrors.notConnected("subscribe") }
            state.ephemeral[ObjectIdentifier(subscriber)] = subscriber
        }
    }

    func removeEphemeral(_ subscriber: RedisEphemeralSubscriber) {
        _ = state.withLock { $0.ephemeral.removeValue(forKey: ObjectIdentifier(subscriber)) }
    }
}
