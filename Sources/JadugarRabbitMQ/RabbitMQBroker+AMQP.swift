import Jadugar

/// RabbitMQ's own surface, beyond ``MessageBroker``: exchanges and queues with every AMQP
/// setting, bindings with arguments, publishing with an explicit routing key, handler consumers,
/// and channels of one's own.
extension RabbitMQBroker {
    // MARK: Exchanges

    /// Declares an exchange (`exchange.declare`): `direct`, `topic`, `fanout` or `headers`.
    ///
    /// Declaring an existing exchange with the same settings does nothing; different settings fail
    /// with ``MessagingError/Code/alreadyExists`` (`PRECONDITION_FAILED`). The declaration is
    /// repeated after a reconnect.
    ///
    /// ```swift
    /// try await broker.assertExchange("audit", options: ExchangeOptions(type: .fanout))
    /// ```
    ///
    /// - Parameters:
    ///   - name: The exchange; names starting with `amq.` are reserved by RabbitMQ.
    ///   - options: Type, durability, auto-delete. Default: a durable topic exchange.
    ///   - arguments: More arguments (`alternate-exchange`, ...). Default: none.
    public func assertExchange(_ name: String, options: ExchangeOptions = .default, arguments: [String: RabbitMQArgument] = [:]) async throws {
        try TopicPattern.validateName(name, kind: "exchange name")
        let declaration = ExchangeDeclaration(
            name: name, type: options.type.name, durable: options.durable, autoDelete: options.autoDelete,
            arguments: arguments.keys.sorted().map { AMQPTableEntry($0, arguments[$0]!.value) }
        )
        try await runtime("declare exchange '\(name)'").loop.perform { loop in try loop.declareExchange(declaration) }
    }

    /// Deletes an exchange and its bindings.
    ///
    /// ```swift
    /// try await broker.deleteExchange("audit", ifUnused: true)
    /// ```
    ///
    /// - Throws: ``MessagingError/Code/notFound`` when it does not exist; ``MessagingError/Code/brokerError``
    ///   (`PRECONDITION_FAILED`) when `ifUnused` and it has bindings; ``MessagingError/Code/accessDenied`` for `""` and `amq.*`.
    public func deleteExchange(_ name: String, ifUnused: Bool) async throws {
        try await runtime("delete exchange '\(name)'").loop.perform { loop in try loop.deleteExchange(name, ifUnused: ifUnused) }
    }

    // MARK: Queues

    /// Declares a queue (`queue.declare`) with RabbitMQ's settings: type (classic or quorum),
    /// durability, exclusivity, auto-delete, priorities, TTL, length limits and overflow,
    /// dead-letter exchange and routing key.
    ///
    /// An empty name asks the broker to choose one (returned; such a queue is not re-declared
    /// after a reconnect). Exclusive queues belong to this client's control connection.
    ///
    /// ```swift
    /// let state = try await broker.assertQueue("payments", options: RabbitMQQueueOptions(type: .quorum))
    /// print(state.messageCount)
    /// ```
    ///
    /// - Returns: The queue's name and counts.
    /// - Throws: ``MessagingError/Code/alreadyExists`` when it exists with other settings
    ///   (`PRECONDITION_FAILED`), ``MessagingError/Code/accessDenied`` when another connection owns it (`RESOURCE_LOCKED`).
    @discardableResult
    public func assertQueue(_ name: String, options: RabbitMQQueueOptions = RabbitMQQueueOptions()) async throws -> RabbitMQQueueState {
        if !name.isEmpty { try TopicPattern.validateName(name, kind: "queue name") }
        try options.validate(name: name)
        let declaration = QueueDeclaration(
            name: name, durable: options.durable, exclusive: options.exclusive, autoDelete: options.autoDelete,
            arguments: options.amqpArguments, deadLetter: options.deadLetterTarget
        )
        let ok = try await runtime("declare queue '\(name)'").loop.perform { loop in try loop.declareQueue(declaration) }
        return RabbitMQQueueState(name: ok.queue, messageCount: ok.messageCount, consumerCount: ok.consumerCount)
    }

    /// Deletes a queue and its messages.
    ///
    /// ```swift
    /// let dropped = try await broker.deleteQueue("tmp", ifUnused: false, ifEmpty: false)
    /// ```
    ///
    /// - Returns: How many messages it held.
    /// - Throws: ``MessagingError/Code/notFound`` when it does not exist; ``MessagingError/Code/brokerError``
    ///   (`PRECONDITION_FAILED`) when a condition does not hold.
    @discardableResult
    public func deleteQueue(_ name: String, ifUnused: Bool, ifEmpty: Bool) async throws -> Int {
        try TopicPattern.validateName(name, kind: "queue name")
        return try await runtime("delete queue '\(name)'").loop.perform { loop in try loop.deleteQueue(name, ifUnused: ifUnused, ifEmpty: ifEmpty) }
    }

    // MARK: Bindings

    /// Binds a queue to an exchange with a routing key and binding arguments (for headers
    /// exchanges: `x-match` and the headers to match). The binding is repeated after a reconnect.
    ///
    /// ```swift
    /// try await broker.bind(queue: "eu", exchange: "by-region", routingKey: "", arguments: ["x-match": .string("all"), "region": .string("eu")])
    /// ```
    public func bind(queue: String, exchange: String, routingKey: String, arguments: [String: RabbitMQArgument]) async throws {
        try TopicPattern.validateName(queue, kind: "queue name")
        let entries = arguments.keys.sorted().map { AMQPTableEntry($0, arguments[$0]!.value) }
        try await runtime("bind queue '\(queue)'").loop.perform { loop in
            try loop.bind(queue: queue, exchange: exchange, routingKey: routingKey, arguments: entries)
        }
    }

    /// Removes a binding made with the same routing key and arguments.
    ///
    /// ```swift
    /// try await broker.unbind(queue: "eu", exchange: "by-region", routingKey: "", arguments: ["x-match": .string("all"), "region": .string("eu")])
    /// ```
    public func unbind(queue: String, exchange: String, routingKey: String, arguments: [String: RabbitMQArgument]) async throws {
        try TopicPattern.validateName(queue, kind: "queue name")
        let entries = arguments.keys.sorted().map { AMQPTableEntry($0, arguments[$0]!.value) }
        try await runtime("unbind queue '\(queue)'").loop.perform { loop in
            try loop.unbind(queue: queue, exchange: exchange, routingKey: routingKey, arguments: entries)
        }
    }

    // MARK: Publishing

    /// Publishes with an explicit exchange and routing key (the message's topic is ignored) and
    /// returns when the broker confirmed it.
    ///
    /// ```swift
    /// try await broker.publish(exchange: "", routingKey: "emails", message: Message(string: "hi"))
    /// ```
    ///
    /// - Throws: As ``publish(_:options:)``.
    public func publish(exchange: String, routingKey: String, message: Message, options: PublishOptions = .default) async throws {
        let runtime = try runtime("publish")
        let outgoing = try prepare(exchange: exchange, routingKey: routingKey, message: message, options: options)
        try await runtime.publish(outgoing)
    }

    /// Buffers a message for publishing and returns at once, without waiting for the write or the
    /// confirm (fire-and-forget: a nack, a return or a lost connection is not reported).
    ///
    /// ```swift
    /// try broker.publishWithoutConfirm(exchange: "metrics", routingKey: "cpu", message: sample)
    /// ```
    ///
    /// - Throws: Validation errors; ``MessagingError/Code/queueFull`` when the publish buffer is full.
    public func publishWithoutConfirm(exchange: String, routingKey: String, message: Message, options: PublishOptions = .default) throws {
        let runtime = try runtime("publish")
        let outgoing = try prepare(exchange: exchange, routingKey: routingKey, message: message, options: options)
        try runtime.publishWithoutWaiting(outgoing)
    }

    // MARK: Consumers

    /// Consumes a queue with a handler: each message is acknowledged when the handler returns, and
    /// dead-lettered (with the error as last error) when it throws.
    ///
    /// ```swift
    /// let consumer = try await broker.consume(queue: "emails", options: ConsumeOptions(prefetch: 32), concurrency: 4) { message in
    ///     try await send(message)
    /// }
    /// await consumer.cancel()
    /// ```
    ///
    /// - Parameters:
    ///   - queue: The queue.
    ///   - options: Prefetch and auto-acknowledgement. Default: prefetch 16, manual acknowledgement.
    ///   - concurrency: Handler calls at once. Default: 1.
    ///   - handler: Called for each message.
    /// - Returns: The running consumer.
    public func consume(
        queue: String,
        options: ConsumeOptions = ConsumeOptions(),
        concurrency: Int = 1,
        handler: @escaping @Sendable (Message) async throws -> Void
    ) async throws -> RabbitMQConsumer {
        guard concurrency >= 1 else { throw MessagingError(.invalidArgument, "concurrency must be at least 1, got \(concurrency)") }
        let stream = try await consume(queue: queue, options: options)
        return RabbitMQConsumer(stream: stream, concurrency: concurrency, autoAck: options.autoAck, handler: handler)
    }

    // MARK: Channels

    /// Opens a channel of one's own on the control connection, for topology work whose failures
    /// must not disturb anything else: a channel error closes that channel only.
    ///
    /// ```swift
    /// let channel = try await broker.createChannel()
    /// try await channel.assertQueue("scratch", options: RabbitMQQueueOptions(durable: false))
    /// await broker.closeChannel(channel)
    /// ```
    public func createChannel() async throws -> RabbitMQChannel {
        let runtime = try runtime("open a channel")
        let id = runtime.nextConsumerID()
        let (number, generation) = try await runtime.loop.perform { loop in try loop.openUserChannel(id: id) }
        return RabbitMQChannel(number: number, generation: generation, loop: runtime.loop)
    }

    /// Closes a channel opened with ``createChannel()``.
    ///
    /// ```swift
    /// await broker.closeChannel(channel)
    /// ```
    public func closeChannel(_ channel: RabbitMQChannel) async {
        await channel.close()
    }
}
