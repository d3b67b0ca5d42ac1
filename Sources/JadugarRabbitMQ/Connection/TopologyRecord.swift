import Jadugar
import Synchronization

/// An exchange as declared, to declare again after a reconnect.
struct ExchangeDeclaration: Sendable, Hashable {
    var name: String
    var type: String
    var durable: Bool
    var autoDelete: Bool
    var arguments: [AMQPTableEntry]
}

/// A queue as declared, to declare again after a reconnect and to know where its dead letters go.
struct QueueDeclaration: Sendable, Hashable {
    var name: String
    var durable: Bool
    var exclusive: Bool
    var autoDelete: Bool
    var arguments: [AMQPTableEntry]
    /// Where the queue dead-letters (`x-dead-letter-exchange` and `-routing-key`), when it does.
    var deadLetter: DeadLetterTarget?
}

/// A queue binding as made, to make again after a reconnect.
struct BindingDeclaration: Sendable, Hashable {
    var queue: String
    var exchange: String
    var routingKey: String
    var arguments: [AMQPTableEntry]
}

/// What one broker client declared, in order: the topology it recovers after a reconnect.
///
/// Owned by the control loop's thread.
struct TopologyRecord {
    private(set) var exchanges: [String: ExchangeDeclaration] = [:]
    private(set) var exchangeOrder: [String] = []
    private(set) var queues: [String: QueueDeclaration] = [:]
    private(set) var queueOrder: [String] = []
    private(set) var bindings: [BindingDeclaration] = []
    var topics: Set<String> = []

    mutating func record(_ exchange: ExchangeDeclaration) {
        if exchanges.updateValue(exchange, forKey: exchange.name) == nil { exchangeOrder.append(exchange.name) }
    }

    mutating func record(_ queue: QueueDeclaration) {
        if queues.updateValue(queue, forKey: queue.name) == nil { queueOrder.append(queue.name) }
    }

    mutating func record(_ binding: BindingDeclaration) {
        if !bindings.contains(binding) { bindings.append(binding) }
    }

    mutating func forget(binding: BindingDeclaration) {
        bindings.removeAll { $0.queue == binding.queue && $0.exchange == binding.exchange && $0.routingKey == binding.routingKey }
    }

    mutating func forget(queue name: String) {
        if queues.removeValue(forKey: name) != nil { queueOrder.removeAll { $0 == name } }
        bindings.removeAll { $0.queue == name }
    }

    mutating func forget(exchange name: String) {
        if exchanges.removeValue(forKey: name) != nil { exchangeOrder.removeAll { $0 == name } }
        bindings.removeAll { $0.exchange == name }
    }

    var orderedExchanges: [ExchangeDeclaration] { exchangeOrder.compactMap { exchanges[$0] } }
    var orderedQueues: [QueueDeclaration] { queueOrder.compactMap { queues[$0] } }
}

/// Where each known queue dead-letters, process-wide, keyed by broker and vhost.
///
/// AMQP cannot read a queue's arguments back, so the adapter remembers the dead-letter target of
/// every queue any client in this process declared. A ``Delivery/reject(reason:error:)`` with a
/// custom reason or error publishes the dead letter itself to that target (with the Jadugar
/// headers) and acknowledges the original; for queues declared elsewhere it falls back to the
/// broker's own dead-lettering (`basic.reject`), which keeps only RabbitMQ's `x-death` facts.
enum DeadLetterRegistry {
    private static let targets = Mutex<[String: DeadLetterTarget?]>([:])

    static func key(broker: String, queue: String) -> String { "\(broker)\u{0}\(queue)" }

    /// Records a queue's target (`nil`: the queue does not dead-letter).
    static func record(broker: String, queue: String, target: DeadLetterTarget?) {
        targets.withLock { $0[key(broker: broker, queue: queue)] = .some(target) }
    }

    static func forget(broker: String, queue: String) {
        _ = targets.withLock { $0.removeValue(forKey: key(broker: broker, queue: queue)) }
    }

    /// `.some(target)` when the queue is known (the target may be `nil`); `nil` when unknown.
    static func lookup(broker: String, queue: String) -> DeadLetterTarget?? {
        targets.withLock { $0[key(broker: broker, queue: queue)] }
    }
}
