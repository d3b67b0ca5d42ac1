import CRabbitMQ
import Foundation
import Jadugar

/// The operations jobs run on the control connection. Every method runs on the loop's thread.
extension ConnectionLoop {
    // MARK: Exchanges

    func declareExchange(_ exchange: ExchangeDeclaration) throws(MessagingError) {
        try withControl("declaring exchange '\(exchange.name)'", declaring: true) { connection, channel throws(AMQPFailure) in
            try connection.declareExchange(channel: channel, name: exchange.name, type: exchange.type, passive: false, durable: exchange.durable, autoDelete: exchange.autoDelete, arguments: exchange.arguments)
        }
        topology.record(exchange)
    }

    /// Deletes an exchange; a missing one fails with ``MessagingError/Code/notFound``.
    func deleteExchange(_ name: String, ifUnused: Bool) throws(MessagingError) {
        try withControl("checking exchange '\(name)'") { connection, channel throws(AMQPFailure) in
            try connection.declareExchange(channel: channel, name: name, type: "topic", passive: true, durable: false, autoDelete: false, arguments: [])
        }
        try withControl("deleting exchange '\(name)'") { connection, channel throws(AMQPFailure) in
            try connection.deleteExchange(channel: channel, name: name, ifUnused: ifUnused)
        }
        topology.forget(exchange: name)
    }

    // MARK: Queues

    func declareQueue(_ queue: QueueDeclaration) throws(MessagingError) -> AMQPConnection.QueueDeclareOK {
        let ok = try withControl("declaring queue '\(queue.name)'", declaring: true) { connection, channel throws(AMQPFailure) in
            try connection.declareQueue(channel: channel, name: queue.name, passive: false, durable: queue.durable, exclusive: queue.exclusive, autoDelete: queue.autoDelete, arguments: queue.arguments)
        }
        var recorded = queue
        recorded.name = ok.queue
        topology.record(recorded)
        DeadLetterRegistry.record(broker: brokerKey, queue: ok.queue, target: queue.deadLetter)
        return ok
    }

    /// Counts of an existing queue (`queue.declare` with `passive`).
    func inspectQueue(_ name: String) throws(MessagingError) -> AMQPConnection.QueueDeclareOK {
        try withControl("reading queue '\(name)'") { connection, channel throws(AMQPFailure) in
            try connection.declareQueue(channel: channel, name: name, passive: true, durable: false, exclusive: false, autoDelete: false, arguments: [])
        }
    }

    /// Deletes a queue; a missing one fails with ``MessagingError/Code/notFound``. Returns how many messages it held.
    func deleteQueue(_ name: String, ifUnused: Bool, ifEmpty: Bool) throws(MessagingError) -> Int {
        _ = try inspectQueue(name)
        let count = try withControl("deleting queue '\(name)'") { connection, channel throws(AMQPFailure) in
            try connection.deleteQueue(channel: channel, name: name, ifUnused: ifUnused, ifEmpty: ifEmpty)
        }
        topology.forget(queue: name)
        DeadLetterRegistry.forget(broker: brokerKey, queue: name)
        if let getter = getters.removeValue(forKey: name) {
            getter.invalidate()
            closeChannel(getter.channel)
        }
        return count
    }

    /// Removes the queue's ready messages, and the messages this client's consumers have received
    /// (prefetched) but not yet handed to the application: with AMQP's push model those are still
    /// waiting from the application's point of view, so they are acknowledged and counted as removed.
    func purgeQueue(_ name: String) throws(MessagingError) -> Int {
        var count = try withControl("purging queue '\(name)'") { connection, channel throws(AMQPFailure) in
            try connection.purgeQueue(channel: channel, name: name)
        }
        for (id, consumer) in consumers where consumer.queue == name {
            guard let channel = consumerChannels[id] else { continue }
            for raw in consumer.takeBuffered() where raw.generation == generation {
                let route = SettleRoute(channel: channel, generation: generation, brokerTag: raw.brokerTag, queue: name, exchange: raw.exchange)
                do {
                    try answer(.ack, route: route)
                    count += 1
                } catch {
                    break
                }
            }
        }
        return count
    }

    /// The broker's counts (ready, consumers), this client's unacknowledged deliveries, and the
    /// messages waiting in the queue's delay queues.
    func queueInfo(_ name: String) throws(MessagingError) -> QueueInfo {
        let ok = try inspectQueue(name)
        var unacknowledged = getters[name]?.unacknowledged ?? 0
        for consumer in consumers.values where consumer.queue == name {
            unacknowledged += consumer.unacknowledged
        }
        var delayed = 0
        for delayQueue in delayQueuesByOrigin[name] ?? [] {
            if let info = try? inspectQueue(delayQueue) {
                delayed += info.messageCount
            } else if connection == nil {
                throw linkDownError("read queue '\(name)'")
            }
        }
        return QueueInfo(name: name, ready: ok.messageCount, unacknowledged: unacknowledged, delayed: delayed, consumers: ok.consumerCount)
    }

    // MARK: Bindings

    /// Binds a queue. For a headers exchange declared by this client, a routing key of the form
    /// `key=value[,key=value]` becomes the binding arguments (`x-match: all`).
    func bind(queue: String, exchange: String, routingKey: String, arguments: [AMQPTableEntry]) throws(MessagingError) {
        let binding = bindingDeclaration(queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments)
        try withControl("binding queue '\(queue)' to exchange '\(exchange)' with '\(routingKey)'") { connection, channel throws(AMQPFailure) in
            try connection.bindQueue(channel: channel, queue: binding.queue, exchange: binding.exchange, routingKey: binding.routingKey, arguments: binding.arguments)
        }
        topology.record(binding)
    }

    func unbind(queue: String, exchange: String, routingKey: String, arguments: [AMQPTableEntry]) throws(MessagingError) {
        let binding = bindingDeclaration(queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments)
        try withControl("unbinding queue '\(queue)' from exchange '\(exchange)'") { connection, channel throws(AMQPFailure) in
            try connection.unbindQueue(channel: channel, queue: binding.queue, exchange: binding.exchange, routingKey: binding.routingKey, arguments: binding.arguments)
        }
        topology.forget(binding: binding)
    }

    private func bindingDeclaration(queue: String, exchange: String, routingKey: String, arguments: [AMQPTableEntry]) -> BindingDeclaration {
        guard arguments.isEmpty, topology.exchanges[exchange]?.type == "headers" else {
            return BindingDeclaration(queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments)
        }
        var headers: [AMQPTableEntry] = [AMQPTableEntry("x-match", .string("all"))]
        for pair in routingKey.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { headers.append(AMQPTableEntry(parts[0], .string(parts[1]))) }
        }
        return BindingDeclaration(queue: queue, exchange: exchange, routingKey: routingKey, arguments: headers)
    }

    // MARK: Fetching

    /// `basic.get` on the queue's getter channel.
    func get(queue: String, settlement: any DeliverySettlement) throws(MessagingError) -> Delivery? {
        guard let connection, connection.isOpen else { throw linkDownError("get from queue '\(queue)'") }
        var getter = getters[queue]
        var channel: UInt16 = 0
        do {
            if getter == nil {
                channel = try openChannel(connection, use: .getter(queue))
                let created = GetterLedger(queue: queue, channel: channel, generation: generation, settlement: settlement)
                getters[queue] = created
                getter = created
            }
            guard let getter else { return nil }
            channel = getter.channel
            guard let result = try connection.get(channel: channel, queue: queue, noAck: false) else { return nil }
            let raw = RawDelivery(generation: generation, brokerTag: result.deliveryTag, redelivered: result.redelivered, exchange: result.exchange, routingKey: result.routingKey, properties: result.properties, body: result.body)
            return getter.delivery(for: raw)
        } catch {
            if error.scope == .channel, let getter = getters.removeValue(forKey: queue) { getter.invalidate() }
            handle(error, on: channel)
            throw error.messagingError("getting a message from queue '\(queue)'")
        }
    }

    // MARK: Settling

    /// How a delivery is answered on its channel.
    enum Answer: Sendable {
        case ack
        case requeue
        case reject
    }

    /// Sends `basic.ack`, `basic.nack` with requeue, or `basic.reject` without requeue on the
    /// delivery's channel, if that channel still exists.
    func answer(_ answer: Answer, route: SettleRoute) throws(MessagingError) {
        guard route.generation == generation, let connection, connection.isOpen, use(of: route.channel) != nil else {
            throw MessagingError(.connectionFailed, "the channel of delivery \(route.brokerTag) on queue '\(route.queue)' is gone; the broker redelivers the message", isRetriable: true)
        }
        do {
            switch answer {
            case .ack: try connection.ack(channel: route.channel, tag: route.brokerTag)
            case .requeue: try connection.nack(channel: route.channel, tag: route.brokerTag, requeue: true)
            case .reject: try connection.reject(channel: route.channel, tag: route.brokerTag, requeue: false)
            }
        } catch {
            handle(error, on: route.channel)
            throw error.messagingError("settling delivery \(route.brokerTag) on queue '\(route.queue)'")
        }
    }

    // MARK: Delayed retries

    /// How long a delay queue lives unused after its last declaration (it is declared again well before).
    static let delayQueueExpiry: Int64 = 30 * 60 * 1000

    /// The queue that holds messages for `milliseconds` and then dead-letters them back into
    /// `origin`: `jadugar.delay.<ms>.<origin>`, declared (durable, `x-message-ttl`, `x-expires`)
    /// at most every ten minutes.
    func ensureDelayQueue(origin: String, milliseconds: Int64) throws(MessagingError) -> String {
        let name = Self.delayQueueName(origin: origin, milliseconds: milliseconds)
        if let declared = delayQueues[name], ContinuousClock.now - declared < .seconds(600) { return name }
        let arguments: [AMQPTableEntry] = [
            AMQPTableEntry("x-message-ttl", .int(milliseconds)),
            AMQPTableEntry("x-dead-letter-exchange", .string("")),
            AMQPTableEntry("x-dead-letter-routing-key", .string(origin)),
            AMQPTableEntry("x-expires", .int(milliseconds + Self.delayQueueExpiry)),
        ]
        _ = try withControl("declaring delay queue '\(name)'", declaring: true) { connection, channel throws(AMQPFailure) in
            try connection.declareQueue(channel: channel, name: name, passive: false, durable: true, exclusive: false, autoDelete: false, arguments: arguments)
        }
        delayQueues[name] = .now
        delayQueuesByOrigin[origin, default: []].insert(name)
        return name
    }

    static func delayQueueName(origin: String, milliseconds: Int64) -> String {
        let name = "\(AMQPEnvelope.delayQueuePrefix)\(milliseconds).\(origin)"
        if name.utf8.count <= 255 { return name }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in origin.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let prefix = String(decoding: Array(origin.utf8.prefix(180)), as: UTF8.self)
        return "\(AMQPEnvelope.delayQueuePrefix)\(milliseconds).\(prefix).\(String(hash, radix: 16))"
    }

    // MARK: Health

    /// One round trip on the control channel (a passive declare of `amq.direct`).
    func ping() throws(MessagingError) {
        try withControl("health check") { connection, channel throws(AMQPFailure) in
            try connection.declareExchange(channel: channel, name: "amq.direct", type: "direct", passive: true, durable: true, autoDelete: false, arguments: [])
        }
    }

    // MARK: Application channels

    /// Opens a channel for a ``RabbitMQChannel``; returns its number and the connection generation.
    func openUserChannel(id: UInt64) throws(MessagingError) -> (UInt16, UInt64) {
        guard let connection, connection.isOpen else { throw linkDownError("open a channel") }
        do {
            let channel = try openChannel(connection, use: .user(id))
            return (channel, generation)
        } catch {
            handle(error, on: 0)
            throw error.messagingError("opening a channel")
        }
    }

    /// What a failed operation on an application channel did to the channel.
    struct UserChannelFailure: Error {
        var error: MessagingError
        var channelClosed: Bool
    }

    /// Runs `body` on an application channel; a channel error closes that channel for good.
    func withUserChannel<T>(_ channel: UInt16, generation: UInt64, what: String, declaring: Bool = false, _ body: (AMQPConnection, UInt16) throws(AMQPFailure) -> T) throws(UserChannelFailure) -> T {
        guard generation == self.generation, let connection, connection.isOpen, case .user? = use(of: channel) else {
            throw UserChannelFailure(error: MessagingError(.closed, "cannot \(what): the channel is closed (its connection was lost or it was closed)"), channelClosed: true)
        }
        do {
            return try body(connection, channel)
        } catch {
            handle(error, on: channel)
            throw UserChannelFailure(error: error.messagingError(what, declaring: declaring), channelClosed: true)
        }
    }
}
