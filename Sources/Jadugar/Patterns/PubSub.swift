/// Publish/subscribe: topics, publishers and subscribers over one manager.
///
/// ```swift
/// let pubsub = PubSub(manager)
/// try await pubsub.createTopic("user.created")
/// let subscription = try await pubsub.subscribe("user.*") { message in print(message.topic) }
/// try await pubsub.publish("user.created", json: ["id": 1])
/// ```
public struct PubSub: Sendable {
    /// The manager used.
    public let manager: MessageManager

    /// Creates the pattern over a manager.
    public init(_ manager: MessageManager) {
        self.manager = manager
    }

    /// Publishes raw bytes on a topic.
    public func publish(_ topic: String, payload: [UInt8], metadata: MessageMetadata = MessageMetadata(), options: PublishOptions = .default) async throws {
        try await manager.publish(topic, Message(payload: payload, metadata: metadata), options: options)
    }

    /// Publishes a value as JSON on a topic.
    public func publish<Value: Encodable>(_ topic: String, json value: Value, options: PublishOptions = .default) async throws {
        try await manager.publish(topic, Message(json: value), options: options)
    }

    /// Subscribes a handler to a topic pattern.
    public func subscribe(_ pattern: String, options: SubscribeOptions = .default, handler: @escaping MessageHandler) async throws -> Subscription {
        try await manager.subscribe(pattern, options: options, handler: handler)
    }

    /// Declares a topic.
    public func createTopic(_ name: String) async throws {
        try TopicPattern.validateTopic(name)
        try await manager.broker.createTopic(name)
    }

    /// Deletes a topic.
    public func deleteTopic(_ name: String) async throws {
        try await manager.broker.deleteTopic(name)
    }

    /// The topics the broker knows of.
    public func listTopics() async throws -> [String] {
        try await manager.broker.listTopics()
    }
}
