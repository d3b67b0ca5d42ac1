import Jadugar
import Synchronization

/// One AMQP consumer (`basic.consume` on a channel of its own) as a ``DeliverySource``, and the
/// settler of its deliveries.
///
/// The control loop's thread pushes what the broker delivers into a buffer, bounded by the
/// consumer's prefetch (`basic.qos`); tasks take from it with ``next()``. The buffer holds raw
/// frames; decoding happens on the task that takes them, off the connection's thread. When the
/// connection is lost the buffer is dropped (the broker redelivers those messages) and the
/// consumer waits, to be started again on the new connection.
final class ConsumerSource: DeliverySource, DeliverySettler {
    private typealias Waiter = CheckedContinuation<RawDelivery?, any Error>

    private struct State {
        var buffer: [RawDelivery] = []
        var head = 0
        var waiters: [(id: UInt64, continuation: Waiter)] = []
        /// Delivered to the application and not settled: packed tag → exchange it came through.
        var outstanding: [UInt64: String] = [:]
        var channel: UInt16?
        var generation: UInt64 = 0
        var closed = false
        /// Set when the broker ended the consumer (queue deleted) or it cannot be recovered.
        var ended = false
        var failure: MessagingError?

        var buffered: Int { buffer.count - head }

        mutating func pop() -> RawDelivery? {
            guard head < buffer.count else { return nil }
            let raw = buffer[head]
            head += 1
            if head == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 1024, head * 2 >= buffer.count {
                buffer.removeFirst(head)
                head = 0
            }
            return raw
        }
    }

    let id: UInt64
    let queue: String
    let prefetch: Int
    let autoAck: Bool
    /// The consumer tag, `jadugar.<id>`.
    let tag: String
    private let loop: ConnectionLoop
    private let settlement: any DeliverySettlement
    private let state = Mutex(State())
    private let waiterIDs = Atomic<UInt64>(0)

    init(id: UInt64, queue: String, prefetch: Int, autoAck: Bool, loop: ConnectionLoop, settlement: any DeliverySettlement) {
        self.id = id
        self.queue = queue
        self.prefetch = prefetch
        self.autoAck = autoAck
        self.tag = "jadugar.\(id)"
        self.loop = loop
        self.settlement = settlement
    }

    // MARK: DeliverySource

    func next() async throws -> Delivery? {
        // Fast path: a buffered delivery needs no continuation.
        let buffered: RawDelivery? = state.withLock { state in
            guard !state.closed, !Task.isCancelled, let raw = state.pop() else { return nil }
            if !autoAck { state.outstanding[DeliveryTag.pack(generation: raw.generation, brokerTag: raw.brokerTag)] = raw.exchange }
            return raw
        }
        if let buffered { return makeDelivery(buffered) }
        let waiterID = waiterIDs.wrappingAdd(1, ordering: .relaxed).newValue
        let raw: RawDelivery? = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: Waiter) in
                let outcome: Result<RawDelivery?, any Error>? = state.withLock { state in
                    if state.closed || Task.isCancelled { return .success(nil) }
                    if let raw = state.pop() {
                        if !autoAck { state.outstanding[DeliveryTag.pack(generation: raw.generation, brokerTag: raw.brokerTag)] = raw.exchange }
                        return .success(raw)
                    }
                    if let failure = state.failure { return .failure(failure) }
                    if state.ended { return .success(nil) }
                    state.waiters.append((waiterID, continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let waiter: Waiter? = state.withLock { state in
                guard let index = state.waiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(returning: nil)
        }
        guard let raw else { return nil }
        return makeDelivery(raw)
    }

    private func makeDelivery(_ raw: RawDelivery) -> Delivery {
        let decoded = AMQPEnvelope.decode(properties: raw.properties, body: raw.body, exchange: raw.exchange, routingKey: raw.routingKey, redelivered: raw.redelivered)
        return Delivery(
            message: decoded.message, deliveryCount: decoded.deliveryCount, queue: queue,
            tag: DeliveryTag.pack(generation: raw.generation, brokerTag: raw.brokerTag), settler: self
        )
    }

    func close() async {
        let waiters: [Waiter]? = state.withLock { state in
            guard !state.closed else { return nil }
            state.closed = true
            state.buffer.removeAll()
            state.head = 0
            state.outstanding.removeAll()
            defer { state.waiters.removeAll() }
            return state.waiters.map(\.continuation)
        }
        guard let waiters else { return }
        for waiter in waiters { waiter.resume(returning: nil) }
        // Closing the channel hands every unsettled delivery back to the queue.
        await loop.stopConsumer(id)
    }

    // MARK: DeliverySettler

    func settle(_ delivery: Delivery, _ outcome: SettleOutcome) async throws {
        let (generation, brokerTag) = DeliveryTag.unpack(delivery.tag)
        let route: SettleRoute = try state.withLock { state in
            if autoAck {
                throw MessagingError(.invalidArgument, "delivery \(brokerTag) on queue '\(queue)' was acknowledged automatically (autoAck); it cannot be settled")
            }
            guard let exchange = state.outstanding.removeValue(forKey: delivery.tag) else {
                if state.closed {
                    throw MessagingError(.closed, "the consumer of queue '\(queue)' is closed; its unsettled deliveries went back to the queue")
                }
                if generation != state.generation {
                    throw MessagingError(.connectionFailed, "delivery \(brokerTag) on queue '\(queue)' came on a connection that was lost; the broker redelivers it", isRetriable: true)
                }
                throw MessagingError(
                    .brokerError,
                    "delivery \(brokerTag) on queue '\(queue)' is not outstanding: it was settled already",
                    brokerCode: "PRECONDITION_FAILED", brokerReason: "unknown delivery tag \(brokerTag)"
                )
            }
            guard let channel = state.channel, generation == state.generation else {
                throw MessagingError(.connectionFailed, "delivery \(brokerTag) on queue '\(queue)' came on a connection that was lost; the broker redelivers it", isRetriable: true)
            }
            return SettleRoute(channel: channel, generation: generation, brokerTag: brokerTag, queue: queue, exchange: exchange)
        }
        try await settlement.settle(delivery, outcome, route: route)
    }

    // MARK: Called by the control loop

    /// Whether the application closed the consumer.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Deliveries the broker counts as unacknowledged for this consumer: buffered plus handed out.
    var unacknowledged: Int {
        state.withLock { autoAck ? 0 : $0.buffered + $0.outstanding.count }
    }

    /// The consumer runs on `channel` of connection `generation`.
    func attach(channel: UInt16, generation: UInt64) {
        state.withLock {
            $0.channel = channel
            $0.generation = generation
        }
    }

    /// The connection is gone: what was buffered or handed out will be redelivered by the broker.
    func detach() {
        state.withLock { state in
            state.channel = nil
            state.buffer.removeAll()
            state.head = 0
            state.outstanding.removeAll()
        }
    }

    /// Takes the deliveries that arrived but were not handed out yet (for a purge, which counts them as removed).
    func takeBuffered() -> [RawDelivery] {
        state.withLock { state in
            guard !autoAck, state.head < state.buffer.count else { return [] }
            defer {
                state.buffer.removeAll(keepingCapacity: true)
                state.head = 0
            }
            return Array(state.buffer[state.head...])
        }
    }

    /// A message arrived. Hands it to a waiting task or buffers it.
    func deliver(_ raw: RawDelivery) {
        let waiter: Waiter? = state.withLock { state in
            guard !state.closed else { return nil }
            if !state.waiters.isEmpty {
                if !autoAck { state.outstanding[DeliveryTag.pack(generation: raw.generation, brokerTag: raw.brokerTag)] = raw.exchange }
                return state.waiters.removeFirst().continuation
            }
            state.buffer.append(raw)
            return nil
        }
        waiter?.resume(returning: raw)
    }

    /// The broker ended the consumer, or it could not be restarted: tasks get what is buffered, then `nil` (or `failure`).
    func end(failure: MessagingError?) {
        let waiters: [Waiter] = state.withLock { state in
            state.ended = true
            if state.failure == nil { state.failure = failure }
            defer { state.waiters.removeAll() }
            return state.waiters.map(\.continuation)
        }
        for waiter in waiters {
            if let failure { waiter.resume(throwing: failure) } else { waiter.resume(returning: nil) }
        }
    }
}
