import Foundation
import Jadugar
import JadugarPublisher
import Logging
import Synchronization

/// Everything a connected ``RabbitMQBroker`` runs: the control loop (its thread and connection)
/// and the publisher (a batcher whose I/O thread owns the publisher connection).
///
/// Also carries out settlements that need both: delayed retries and dead letters with a custom
/// reason are republished through the publisher, then the original is acknowledged on the control
/// connection.
final class RabbitMQRuntime: DeliverySettlement {
    let configuration: RabbitMQConfiguration
    let loop: ConnectionLoop
    let publisher: Batcher<PublisherCommand>
    let events: EventBroadcaster
    private let consumerIDs = Atomic<UInt64>(0)

    private init(configuration: RabbitMQConfiguration, loop: ConnectionLoop, publisher: Batcher<PublisherCommand>, events: EventBroadcaster) {
        self.configuration = configuration
        self.loop = loop
        self.publisher = publisher
        self.events = events
    }

    /// Connects both connections and declares the default exchange.
    static func start(configuration: RabbitMQConfiguration, events: EventBroadcaster, logger: Logger) async throws -> RabbitMQRuntime {
        try configuration.validate()
        let brokerKey = configuration.endpoints.map { "\($0.host):\($0.port)" }.joined(separator: ",") + "/" + configuration.virtualHost
        let loop = try ConnectionLoop(
            settings: AMQPConnectionSettings(configuration, role: "control"), reconnect: configuration.reconnect,
            brokerKey: brokerKey, events: events, logger: logger
        )
        loop.start()
        do {
            try await loop.connect()
        } catch {
            await loop.stop()
            throw error
        }
        let sink = PublisherSink(
            settings: AMQPConnectionSettings(configuration, role: "publisher"), confirms: configuration.confirms,
            reconnect: configuration.reconnect, shutdownTimeout: configuration.shutdownTimeout, events: events, logger: logger
        )
        let publisher = Batcher<PublisherCommand>(
            configuration: BatcherConfiguration(
                capacity: configuration.publishBufferCapacity, maxBatch: configuration.publishMaxBatch,
                maxDelay: configuration.publishLinger, backpressure: .suspend, threadName: "jadugar-amqp-pub"
            ),
            sink: sink
        )
        publisher.start()
        let runtime = RabbitMQRuntime(configuration: configuration, loop: loop, publisher: publisher, events: events)
        do {
            try await publisher.submit(.connect)
            let exchange = ExchangeDeclaration(name: configuration.defaultExchange, type: "topic", durable: true, autoDelete: false, arguments: [])
            try await loop.perform { loop in try loop.declareExchange(exchange) }
        } catch {
            await runtime.stop()
            throw error
        }
        return runtime
    }

    /// Drains the publisher (waiting for confirms up to the shutdown timeout) and closes both connections.
    func stop() async {
        await publisher.shutdown(drain: true)
        await loop.stop()
    }

    func nextConsumerID() -> UInt64 {
        consumerIDs.wrappingAdd(1, ordering: .relaxed).newValue
    }

    // MARK: Publishing

    /// Submits a message and waits for the broker's confirm.
    func publish(_ message: OutgoingMessage) async throws {
        do {
            try await publisher.submit(.publish(message))
        } catch let error as PublisherError {
            throw Self.translate(error)
        }
    }

    /// Buffers a message without waiting for it to be written or confirmed.
    func publishWithoutWaiting(_ message: OutgoingMessage) throws {
        do {
            try publisher.submitNoWait(.publish(message))
        } catch let error as PublisherError {
            throw Self.translate(error)
        }
    }

    static func translate(_ error: PublisherError) -> MessagingError {
        switch error.code {
        case .bufferFull:
            return MessagingError(.queueFull, "the publish buffer is full: \(error.message)", isRetriable: true)
        case .shutdown:
            return MessagingError(.closed, "the RabbitMQ client disconnected before the message was written", isRetriable: true)
        default:
            return MessagingError(.notConnected, "the RabbitMQ client is disconnected; call connect() first")
        }
    }

    // MARK: DeliverySettlement

    func settle(_ delivery: Delivery, _ outcome: SettleOutcome, route: SettleRoute) async throws {
        switch outcome {
        case .ack:
            try answer(.ack, route: route)
        case .requeue(let delay):
            guard let delay, delay > .zero else {
                try answer(.requeue, route: route)
                return
            }
            try await requeueLater(delivery, after: delay, route: route)
        case .deadLetter(let reason, let error):
            let target = DeadLetterRegistry.lookup(broker: loop.brokerKey, queue: route.queue)
            // RabbitMQ's own dead-lettering when it says all there is to say (reason `rejected`, no
            // error) or when the target is unknown; otherwise the adapter writes the dead letter.
            guard (reason != "rejected" || error != nil), case .some(.some(let deadLetterTarget)) = target else {
                try answer(.reject, route: route)
                return
            }
            try await deadLetter(delivery, to: deadLetterTarget, reason: reason, error: error, route: route)
        }
    }

    /// Sends an answer on the delivery's channel without waiting for the loop (AMQP acks have no
    /// reply); fails at once only when the connection is known to be gone.
    private func answer(_ answer: ConnectionLoop.Answer, route: SettleRoute) throws {
        guard loop.isLinkUp else {
            throw MessagingError(.connectionFailed, "the connection of delivery \(route.brokerTag) on queue '\(route.queue)' is lost; the broker redelivers the message", isRetriable: true)
        }
        let accepted = loop.send { loop in
            do {
                try loop.answer(answer, route: route)
            } catch {
                // The delivery's channel or connection went away first; the broker redelivers it.
            }
        }
        if !accepted {
            throw MessagingError(.notConnected, "the RabbitMQ client is disconnected; the broker redelivers the message")
        }
    }

    /// Republishes the message into a queue that holds it for `delay` and then dead-letters it back
    /// into the origin queue, then acknowledges the original.
    private func requeueLater(_ delivery: Delivery, after delay: Duration, route: SettleRoute) async throws {
        let milliseconds = max(1, AMQPEnvelope.milliseconds(rounding: delay))
        do {
            let origin = route.queue
            let delayQueue = try await loop.perform { loop in try loop.ensureDelayQueue(origin: origin, milliseconds: milliseconds) }
            var message = delivery.message
            message.metadata.headers[AMQPEnvelope.deliveriesHeader] = String(delivery.deliveryCount)
            message.metadata.headers[AMQPEnvelope.retryTopicHeader] = message.topic
            message.metadata.headers[AMQPEnvelope.retryExchangeHeader] = route.exchange
            // The expiration would otherwise start over in the delay queue and again in the origin.
            message.metadata.expiration = nil
            try await publish(AMQPEnvelope.encode(message, exchange: "", routingKey: delayQueue, persistent: true, mandatory: true))
        } catch {
            try? answer(.requeue, route: route)
            throw error
        }
        try answer(.ack, route: route)
    }

    /// Publishes a dead letter with the Jadugar headers to the queue's dead-letter target, then
    /// acknowledges the original.
    private func deadLetter(_ delivery: Delivery, to target: DeadLetterTarget, reason: String, error: String?, route: SettleRoute) async throws {
        var message = delivery.message
        var headers = message.metadata.headers
        headers[JadugarHeader.deadLetterReason] = reason
        headers[JadugarHeader.attempts] = String(delivery.deliveryCount)
        headers[JadugarHeader.originalQueue] = route.queue
        if headers[JadugarHeader.originalTopic] == nil { headers[JadugarHeader.originalTopic] = message.topic }
        if headers[JadugarHeader.originalExchange] == nil { headers[JadugarHeader.originalExchange] = route.exchange }
        headers[JadugarHeader.deadLetteredAt] = ISO8601DateFormatter().string(from: Date())
        if let error { headers[JadugarHeader.lastError] = error } else { headers.removeValue(forKey: JadugarHeader.lastError) }
        message.metadata.headers = headers
        message.metadata.expiration = nil
        let outgoing = AMQPEnvelope.encode(message, exchange: target.exchange, routingKey: target.routingKey ?? message.topic, persistent: true, mandatory: false)
        do {
            try await publish(outgoing)
        } catch {
            try? answer(.requeue, route: route)
            throw error
        }
        events.emit(BrokerEvent(kind: .deadLettered, broker: "rabbitmq", detail: "message \(message.id) from '\(route.queue)': \(reason)"))
        try answer(.ack, route: route)
    }
}
