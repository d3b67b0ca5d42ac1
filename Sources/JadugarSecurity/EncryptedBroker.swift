import Jadugar

/// A broker that seals every payload it publishes and opens every payload it delivers.
///
/// Messages that fail to open (altered, or sealed with a key the keyring lacks) never reach the
/// consumer: they are dead-lettered with reason `integrity`. Works with every pattern
/// (pub/sub, work queues, request/reply) because it sits under the ``MessageManager``.
///
/// ```swift
/// let keyring = try Keyring(keys: ["k1": SymmetricKey(size: .bits256)], current: "k1")
/// let broker = EncryptedBroker(wrapping: try BrokerRegistry.makeBroker(url: "amqp://..."), keyring: keyring)
/// let manager = MessageManager(broker: broker)
/// ```
public final class EncryptedBroker: BrokerWrapper {
    public let inner: any MessageBroker
    /// The transform used both ways.
    public let encryption: PayloadEncryption

    /// Wraps a broker.
    public init(wrapping inner: any MessageBroker, keyring: Keyring) {
        self.inner = inner
        self.encryption = PayloadEncryption(keyring: keyring)
    }

    public func publish(_ message: Message, options: PublishOptions) async throws {
        // A message sent back from a dead-letter queue is sealed already; sealing twice would hide it.
        let sealed = message.metadata.headers[PayloadEncryption.algorithmHeader] == nil ? try encryption.seal(message) : message
        try await inner.publish(sealed, options: options)
    }

    public func consume(queue: String, options: ConsumeOptions) async throws -> DeliveryStream {
        wrap(try await inner.consume(queue: queue, options: options))
    }

    public func subscribe(_ pattern: String, options: SubscribeOptions) async throws -> DeliveryStream {
        wrap(try await inner.subscribe(pattern, options: options))
    }

    public func get(queue: String) async throws -> Delivery? {
        while let delivery = try await inner.get(queue: queue) {
            do {
                return delivery.replacing(try encryption.open(delivery.message))
            } catch {
                try await delivery.reject(reason: "integrity", error: String(describing: error))
            }
        }
        return nil
    }

    private func wrap(_ stream: DeliveryStream) -> DeliveryStream {
        let encryption = self.encryption
        return DeliveryStream(queue: stream.queue, source: TransformingSource(stream) { delivery in
            delivery.replacing(try encryption.open(delivery.message))
        })
    }
}
