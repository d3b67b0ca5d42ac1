/// A message broker: the one protocol every backend implements (embedded memory, Redis, RabbitMQ, Kafka).
///
/// The model is AMQP's, because it is the most general of the three: messages are published to an
/// *exchange* with a routing key (the topic); *bindings* route them into *queues*; consumers read
/// queues. The exchange named `""` is the default exchange: it routes a message straight into the
/// queue named by its routing key. Adapters map this model onto their broker and declare in
/// ``capabilities`` what they cannot do.
///
/// ```swift
/// let broker = InMemoryBroker()
/// try await broker.connect()
/// try await broker.createQueue("emails", options: .default)
/// try await broker.bind(queue: "emails", exchange: InMemoryBroker.defaultExchange, routingKey: "user.*")
/// try await broker.publish(Message(topic: "user.created", string: "hi"), options: .default)
/// ```
///
/// - Important: Implementations are safe to use from many tasks at once. Blocking C calls run on
///   the adapter's own threads, never on Swift's cooperative pool.
public protocol MessageBroker: AnyObject, Sendable {
    /// A short name for reports and metrics: `memory`, `redis`, `rabbitmq`, `kafka`.
    var name: String { get }
    /// What the broker guarantees.
    var capabilities: BrokerCapabilities { get }
    /// The topic exchange that `publish` and `subscribe` use when the options name none.
    var defaultExchange: String { get }
    /// Whether the broker is connected now.
    var isConnected: Bool { get }

    /// Connects. Calling it when connected does nothing.
    func connect() async throws
    /// Disconnects: consumers stop, their unsettled deliveries are redelivered, pending publishes complete or fail.
    func disconnect() async throws

    /// Publishes a message to an exchange (``PublishOptions/exchange`` or ``defaultExchange``) with
    /// the message's topic as routing key. Returns when the broker has accepted it.
    func publish(_ message: Message, options: PublishOptions) async throws

    /// Starts a consumer on a queue.
    func consume(queue: String, options: ConsumeOptions) async throws -> DeliveryStream
    /// Takes one message from a queue without a consumer, or `nil` when the queue is empty.
    func get(queue: String) async throws -> Delivery?

    /// Declares a queue; declaring an existing queue again with the same settings does nothing.
    func createQueue(_ name: String, options: QueueOptions) async throws
    /// Deletes a queue and its messages.
    func deleteQueue(_ name: String) async throws
    /// Removes every ready message from a queue; returns how many.
    func purgeQueue(_ name: String) async throws -> Int
    /// The queue's counts, from the broker itself.
    func queueInfo(_ name: String) async throws -> QueueInfo

    /// Declares an exchange.
    func createExchange(_ name: String, options: ExchangeOptions) async throws
    /// Deletes an exchange and its bindings.
    func deleteExchange(_ name: String) async throws
    /// Routes messages from an exchange whose routing key matches `routingKey` into a queue.
    func bind(queue: String, exchange: String, routingKey: String) async throws
    /// Removes a binding.
    func unbind(queue: String, exchange: String, routingKey: String) async throws

    /// Subscribes to a topic pattern: declares the subscription's queue (named after the group, or
    /// private), binds it, and consumes it. Brokers with their own group model override it.
    func subscribe(_ pattern: String, options: SubscribeOptions) async throws -> DeliveryStream

    /// Declares a topic: a Kafka topic, or on exchange-based brokers a name recorded for ``listTopics()``.
    func createTopic(_ name: String) async throws
    /// Deletes a topic declared with ``createTopic(_:)``.
    func deleteTopic(_ name: String) async throws
    /// Topics the broker knows of: declared topics and bound patterns.
    func listTopics() async throws -> [String]

    /// Round trip to the broker: reachable or not, latency, version, and why not.
    func healthCheck() async -> HealthStatus

    /// A stream of connection and delivery events; each call returns a new stream, which
    /// unregisters itself when its iteration ends.
    func events() -> AsyncStream<BrokerEvent>
}

extension MessageBroker {
    /// Sends a message straight into a queue through the default exchange `""`.
    ///
    /// ```swift
    /// try await broker.send(Message(string: "task"), toQueue: "emails")
    /// ```
    public func send(_ message: Message, toQueue queue: String, options: PublishOptions = .default) async throws {
        var options = options
        options.exchange = ""
        var message = message
        let topic = message.topic
        message.topic = queue
        if !topic.isEmpty, topic != queue, message.metadata.headers[JadugarHeader.originalTopic] == nil {
            message.metadata.headers[JadugarHeader.originalTopic] = topic
        }
        try await publish(message, options: options)
    }

    /// The standard mapping of a subscription onto queues and bindings.
    ///
    /// A group `g` consumes the durable queue `g`; without a group the queue is private
    /// (`sub.<id>`, exclusive, auto-delete). Failed messages go to ``SubscribeOptions/deadLetter``
    /// or `<queue>.dlq`.
    public func declareSubscription(_ pattern: String, options: SubscribeOptions) async throws -> String {
        _ = try TopicPattern(pattern)
        try options.validate()
        let queue = options.group ?? "sub.\(Message.makeID())"
        var queueOptions = options.queue ?? QueueOptions(durable: options.group != nil, exclusive: options.group == nil, autoDelete: options.group == nil)
        if queueOptions.deadLetter == nil {
            let deadLetter = options.deadLetter ?? DeadLetterOptions(queue: "\(queue).dlq")
            try await createQueue(deadLetter.queue, options: QueueOptions(durable: true))
            if !deadLetter.exchange.isEmpty {
                try await bind(queue: deadLetter.queue, exchange: deadLetter.exchange, routingKey: deadLetter.routingKey ?? "#")
            }
            queueOptions.deadLetter = DeadLetterTarget(
                exchange: deadLetter.exchange,
                routingKey: deadLetter.exchange.isEmpty ? deadLetter.queue : deadLetter.routingKey
            )
        }
        try await createQueue(queue, options: queueOptions)
        try await bind(queue: queue, exchange: options.exchange ?? defaultExchange, routingKey: pattern)
        return queue
    }

    public func subscribe(_ pattern: String, options: SubscribeOptions) async throws -> DeliveryStream {
        let queue = try await declareSubscription(pattern, options: options)
        return try await consume(queue: queue, options: ConsumeOptions(prefetch: options.prefetch, autoAck: options.autoAck))
    }
}
