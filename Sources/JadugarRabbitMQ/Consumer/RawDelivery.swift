import Jadugar

/// A delivery as read off the wire by the control loop, decoded into a ``Delivery`` by the task that takes it.
struct RawDelivery: Sendable {
    /// The connection generation it arrived on.
    var generation: UInt64
    var brokerTag: UInt64
    var redelivered: Bool
    var exchange: String
    var routingKey: String
    var properties: AMQPProperties
    var body: [UInt8]
}

/// Where a delivery is settled: its channel in one connection generation, and what the dead-letter
/// and delayed-retry paths need to know about it.
struct SettleRoute: Sendable {
    var channel: UInt16
    var generation: UInt64
    var brokerTag: UInt64
    var queue: String
    var exchange: String
}

/// Packs a connection generation and a broker delivery tag into ``Delivery/tag``, so that a tag
/// from before a reconnect can never settle a delivery of the new connection.
enum DeliveryTag {
    private static let tagBits: UInt64 = 44
    private static let tagMask: UInt64 = (1 << tagBits) - 1

    static func pack(generation: UInt64, brokerTag: UInt64) -> UInt64 {
        (generation << tagBits) | (brokerTag & tagMask)
    }

    static func unpack(_ tag: UInt64) -> (generation: UInt64, brokerTag: UInt64) {
        (tag >> tagBits, tag & tagMask)
    }
}

/// Carries out settlements; the runtime implements it over the control loop and the publisher.
protocol DeliverySettlement: Sendable {
    func settle(_ delivery: Delivery, _ outcome: SettleOutcome, route: SettleRoute) async throws
}
