import Jadugar
import Synchronization

/// The channel that serves `basic.get` for one queue, and the settler of what it fetched.
///
/// One channel per queue, so that a `basic.get` on a missing queue (which closes its channel)
/// cannot take other queues' unsettled messages with it.
final class GetterLedger: DeliverySettler {
    private struct State {
        /// Fetched and not settled: packed tag → exchange it came through.
        var outstanding: [UInt64: String] = [:]
        var valid = true
    }

    let queue: String
    let channel: UInt16
    let generation: UInt64
    private let settlement: any DeliverySettlement
    private let state = Mutex(State())

    init(queue: String, channel: UInt16, generation: UInt64, settlement: any DeliverySettlement) {
        self.queue = queue
        self.channel = channel
        self.generation = generation
        self.settlement = settlement
    }

    /// Records a fetched message and returns its delivery.
    func delivery(for raw: RawDelivery) -> Delivery {
        let tag = DeliveryTag.pack(generation: generation, brokerTag: raw.brokerTag)
        state.withLock { $0.outstanding[tag] = raw.exchange }
        let decoded = AMQPEnvelope.decode(properties: raw.properties, body: raw.body, exchange: raw.exchange, routingKey: raw.routingKey, redelivered: raw.redelivered)
        return Delivery(message: decoded.message, deliveryCount: decoded.deliveryCount, queue: queue, tag: tag, settler: self)
    }

    /// Messages fetched and not settled.
    var unacknowledged: Int { state.withLock { $0.valid ? $0.outstanding.count : 0 } }

    /// The channel is gone: the broker requeued what it held.
    func invalidate() {
        state.withLock { state in
            state.valid = false
            state.outstanding.removeAll()
        }
    }

    func settle(_ delivery: Delivery, _ outcome: SettleOutcome) async throws {
        let (generation, brokerTag) = DeliveryTag.unpack(delivery.tag)
        let exchange: String = try state.withLock { state in
            guard state.valid else {
                throw MessagingError(.connectionFailed, "message \(brokerTag) fetched from queue '\(queue)' came on a channel that is gone; the broker requeued it", isRetriable: true)
            }
            guard let exchange = state.outstanding.removeValue(forKey: delivery.tag) else {
                throw MessagingError(
                    .brokerError, "message \(brokerTag) fetched from queue '\(queue)' is not outstanding: it was settled already",
                    brokerCode: "PRECONDITION_FAILED", brokerReason: "unknown delivery tag \(brokerTag)"
                )
            }
            return exchange
        }
        try await settlement.settle(delivery, outcome, route: SettleRoute(channel: channel, generation: generation, brokerTag: brokerTag, queue: queue, exchange: exchange))
    }
}
