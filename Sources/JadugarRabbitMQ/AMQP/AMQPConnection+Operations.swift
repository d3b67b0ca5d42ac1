import CRabbitMQ

/// The AMQP methods the adapter uses, one blocking round trip each (except the `send…` ones).
/// Run on the connection's own thread only.
extension AMQPConnection {
    struct QueueDeclareOK: Sendable {
        var queue: String
        var messageCount: Int
        var consumerCount: Int
    }

    func declareExchange(channel: UInt16, name: String, type: String, passive: Bool, durable: Bool, autoDelete: Bool, isInternal: Bool = false, arguments: [AMQPTableEntry]) throws(AMQPFailure) {
        let arena = CArena()
        let nameBytes = arena.bytes(name), typeBytes = arena.bytes(type), table = arena.table(arguments)
        try rpc(channel: channel, {
            amqp_exchange_declare($0, channel, nameBytes, typeBytes, passive ? 1 : 0, durable ? 1 : 0, autoDelete ? 1 : 0, isInternal ? 1 : 0, table)
        }, copy: { _ in () })
    }

    func deleteExchange(channel: UInt16, name: String, ifUnused: Bool = false) throws(AMQPFailure) {
        let arena = CArena()
        let nameBytes = arena.bytes(name)
        try rpc(channel: channel, { amqp_exchange_delete($0, channel, nameBytes, ifUnused ? 1 : 0) }, copy: { _ in () })
    }

    func declareQueue(channel: UInt16, name: String, passive: Bool, durable: Bool, exclusive: Bool, autoDelete: Bool, arguments: [AMQPTableEntry]) throws(AMQPFailure) -> QueueDeclareOK {
        let arena = CArena()
        let nameBytes = arena.bytes(name), table = arena.table(arguments)
        return try rpc(channel: channel, {
            amqp_queue_declare($0, channel, nameBytes, passive ? 1 : 0, durable ? 1 : 0, exclusive ? 1 : 0, autoDelete ? 1 : 0, table)
        }, copy: { ok in
            QueueDeclareOK(queue: String(amqpBytes: ok.queue), messageCount: Int(ok.message_count), consumerCount: Int(ok.consumer_count))
        })
    }

    func deleteQueue(channel: UInt16, name: String, ifUnused: Bool = false, ifEmpty: Bool = false) throws(AMQPFailure) -> Int {
        let arena = CArena()
        let nameBytes = arena.bytes(name)
        return try rpc(channel: channel, { amqp_queue_delete($0, channel, nameBytes, ifUnused ? 1 : 0, ifEmpty ? 1 : 0) }, copy: { Int($0.message_count) })
    }

    func purgeQueue(channel: UInt16, name: String) throws(AMQPFailure) -> Int {
        let arena = CArena()
        let nameBytes = arena.bytes(name)
        return try rpc(channel: channel, { amqp_queue_purge($0, channel, nameBytes) }, copy: { Int($0.message_count) })
    }

    func bindQueue(channel: UInt16, queue: String, exchange: String, routingKey: String, arguments: [AMQPTableEntry]) throws(AMQPFailure) {
        let arena = CArena()
        let q = arena.bytes(queue), e = arena.bytes(exchange), k = arena.bytes(routingKey), table = arena.table(arguments)
        try rpc(channel: channel, { amqp_queue_bind($0, channel, q, e, k, table) }, copy: { _ in () })
    }

    func unbindQueue(channel: UInt16, queue: String, exchange: String, routingKey: String, arguments: [AMQPTableEntry]) throws(AMQPFailure) {
        let arena = CArena()
        let q = arena.bytes(queue), e = arena.bytes(exchange), k = arena.bytes(routingKey), table = arena.table(arguments)
        try rpc(channel: channel, { amqp_queue_unbind($0, channel, q, e, k, table) }, copy: { _ in () })
    }

    func qos(channel: UInt16, prefetch: Int) throws(AMQPFailure) {
        let count = UInt16(clamping: prefetch)
        try rpc(channel: channel, { amqp_basic_qos($0, channel, 0, count, 0) }, copy: { _ in () })
    }

    /// Starts a consumer; returns the consumer tag the broker confirmed.
    func consume(channel: UInt16, queue: String, tag: String, noAck: Bool, exclusive: Bool = false, arguments: [AMQPTableEntry] = []) throws(AMQPFailure) -> String {
        let arena = CArena()
        let q = arena.bytes(queue), t = arena.bytes(tag), table = arena.table(arguments)
        return try rpc(channel: channel, { amqp_basic_consume($0, channel, q, t, 0, noAck ? 1 : 0, exclusive ? 1 : 0, table) }, copy: { String(amqpBytes: $0.consumer_tag) })
    }

    func confirmSelect(channel: UInt16) throws(AMQPFailure) {
        try rpc(channel: channel, { amqp_confirm_select($0, channel) }, copy: { _ in () })
    }

    /// What `basic.get` returned: nothing, or a message with its delivery fields.
    struct GetResult {
        var deliveryTag: UInt64
        var redelivered: Bool
        var exchange: String
        var routingKey: String
        var properties: AMQPProperties
        var body: [UInt8]
    }

    func get(channel: UInt16, queue: String, noAck: Bool) throws(AMQPFailure) -> GetResult? {
        guard isOpen else { throw AMQPFailure(scope: .connection, code: 0, text: "the connection is closed") }
        let arena = CArena()
        let q = arena.bytes(queue)
        uncork()
        let reply = amqp_basic_get(state, channel, q, noAck ? 1 : 0)
        if let failure = failure(of: reply, channel: channel) { throw failure }
        guard reply.reply.id == AMQPMethod.basicGetOK, let decoded = reply.reply.decoded else { return nil }
        let ok = decoded.assumingMemoryBound(to: amqp_basic_get_ok_t.self).pointee
        let tag = ok.delivery_tag, redelivered = ok.redelivered != 0
        let exchange = String(amqpBytes: ok.exchange), routingKey = String(amqpBytes: ok.routing_key)
        let (properties, body) = try readContent(channel: channel)
        return GetResult(deliveryTag: tag, redelivered: redelivered, exchange: exchange, routingKey: routingKey, properties: properties, body: body)
    }

    // MARK: Writes without a reply

    func ack(channel: UInt16, tag: UInt64, multiple: Bool = false) throws(AMQPFailure) {
        guard isOpen else { throw AMQPFailure(scope: .connection, code: 0, text: "the connection is closed") }
        try checkSend(amqp_basic_ack(state, channel, tag, multiple ? 1 : 0))
    }

    func nack(channel: UInt16, tag: UInt64, requeue: Bool, multiple: Bool = false) throws(AMQPFailure) {
        guard isOpen else { throw AMQPFailure(scope: .connection, code: 0, text: "the connection is closed") }
        try checkSend(amqp_basic_nack(state, channel, tag, multiple ? 1 : 0, requeue ? 1 : 0))
    }

    func reject(channel: UInt16, tag: UInt64, requeue: Bool) throws(AMQPFailure) {
        guard isOpen else { throw AMQPFailure(scope: .connection, code: 0, text: "the connection is closed") }
        try checkSend(amqp_basic_reject(state, channel, tag, requeue ? 1 : 0))
    }
}
