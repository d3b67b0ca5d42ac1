import Jadugar

/// A broker that adds behaviour around another: every call it does not implement goes to ``inner``.
///
/// ```swift
/// final class Audited: BrokerWrapper {
///     let inner: any MessageBroker
///     init(_ inner: any MessageBroker) { self.inner = inner }
///     func publish(_ message: Message, options: PublishOptions) async throws {
///         print("publish", message.topic)
///         try await inner.publish(message, options: options)
///     }
/// }
/// ```
public protocol BrokerWrapper: MessageBroker {
    /// The broker underneath.
    var inner: any MessageBroker { get }
}

extension BrokerWrapper {
    public var name: String { inner.name }
    public var capabilities: BrokerCapabilities { inner.capabilities }
    public var defaultExchange: String { inner.defaultExchange }
    public var isConnected: Bool { inner.isConnected }
    public func connect() async throws { try await inner.connect() }
    public func disconnect() async throws { try await inner.disconnect() }
    public func publish(_ message: Message, options: PublishOptions) async throws { try await inner.publish(message, options: options) }
    public func consume(queue: String, options: ConsumeOptions) async throws -> DeliveryStream { try await inner.consume(queue: queue, options: options) }
    public func get(queue: String) async throws -> Delivery? { try await inner.get(queue: queue) }
    public func createQueue(_ name: String, options: QueueOptions) async throws { try await inner.createQueue(name, options: options) }
    public func deleteQueue(_ name: String) async throws { try await inner.deleteQueue(name) }
    public func purgeQueue(_ name: String) async throws -> Int { try await inner.purgeQueue(name) }
    public func queueInfo(_ name: String) async throws -> QueueInfo { try await inner.queueInfo(name) }
    public func createExchange(_ name: String, options: ExchangeOptions) async throws { try await inner.createExchange(name, options: options) }
    public func deleteExchange(_ name: String) async throws { try await inner.deleteExchange(name) }
    public func bind(queue: String, exchange: String, routingKey: String) async throws { try await inner.bind(queue: queue, exchange: exchange, routingKey: routingKey) }
    public func unbind(queue: String, exchange: String, routingKey: String) async throws { try await inner.unbind(queue: queue, exchange: exchange, routingKey: routingKey) }
    public func subscribe(_ pattern: String, options: SubscribeOptions) async throws -> DeliveryStream { try await inner.subscribe(pattern, options: options) }
    public func createTopic(_ name: String) async throws { try await inner.createTopic(name) }
    public func deleteTopic(_ name: String) async throws { try await inner.deleteTopic(name) }
    public func listTopics() async throws -> [String] { try await inner.listTopics() }
    public func healthCheck() async -> HealthStatus { await inner.healthCheck() }
    public func events() -> AsyncStream<BrokerEvent> { inner.events() }
}

/// A delivery source that changes each delivery on its way out; a transform that throws
/// dead-letters the delivery with the error's reason instead of handing it on.
final class TransformingSource: DeliverySource {
    private let stream: DeliveryStream
    private let transform: @Sendable (Delivery) async throws -> Delivery

    init(_ stream: DeliveryStream, transform: @escaping @Sendable (Delivery) async throws -> Delivery) {
        self.stream = stream
        self.transform = transform
    }

    func next() async throws -> Delivery? {
        while let delivery = try await stream.next() {
            do {
                return try await transform(delivery)
            } catch {
                let reason = (error as? MessagingError)?.code == .accessDenied ? "access-denied" : "integrity"
                try? await delivery.reject(reason: reason, error: String(describing: error))
            }
        }
        return nil
    }

    func close() async {
        await stream.close()
    }
}

/// Settles a changed delivery by settling the original one.
struct ForwardingSettler: DeliverySettler {
    let original: Delivery

    func settle(_ delivery: Delivery, _ outcome: SettleOutcome) async throws {
        switch outcome {
        case .ack: try await original.ack()
        case .requeue(let delay): try await original.nack(requeue: true, delay: delay)
        case .deadLetter(let reason, let error): try await original.reject(reason: reason, error: error)
        }
    }
}

extension Delivery {
    /// The same delivery with another message, settled through the original.
    func replacing(_ message: Message) -> Delivery {
        Delivery(message: message, deliveryCount: deliveryCount, queue: queue, tag: tag, settler: ForwardingSettler(original: self))
    }
}
