import DequeModule
import Foundation
import Synchronization

/// One queue of the memory broker: ready messages (by priority), unacknowledged deliveries per
/// consumer, and consumers waiting for messages.
///
/// All state sits in one `Mutex`; methods compute what must happen under the lock and return it,
/// and continuations are resumed and dead letters routed only after the lock is released.
final class MemoryQueue: Sendable {
    struct Entry: Sendable {
        var message: Message
        var deliveryCount: Int
        var sequence: UInt64
        var deadline: ContinuousClock.Instant?
        var exchange: String
    }

    /// A dead letter on its way out of this queue.
    struct DeadLetter: Sendable {
        var entry: Entry
        var reason: String
        var error: String?
    }

    typealias Waiter = CheckedContinuation<Delivery?, any Error>

    struct Consumer {
        var prefetch: Int
        var autoAck: Bool
        var unacked = 0
        var settler: any DeliverySettler
        var isGetter: Bool
    }

    struct State {
        var buckets: [Deque<Entry>]
        var readyCount = 0
        var readyBytes = 0
        var withDeadline = 0
        var unacked: [UInt64: (entry: Entry, consumer: UInt64)] = [:]
        var consumers: [UInt64: Consumer] = [:]
        /// Pending `next()` calls in arrival order: (consumer, waiter id, continuation).
        var waiters = Deque<(consumer: UInt64, id: UInt64, continuation: Waiter)>()
        var nextTag: UInt64 = 1
        var nextSequence: UInt64 = 1
        var delayed = 0
        var deleted = false
        var hadConsumer = false
        var sweepAt: ContinuousClock.Instant?
        var published = 0
    }

    /// Side effects computed under the lock.
    struct Effects {
        var resume: [(Waiter, Result<Delivery?, any Error>)] = []
        var deadLetters: [DeadLetter] = []
        var sweepAt: ContinuousClock.Instant?
        var becameUnused = false

        mutating func merge(_ other: Effects) {
            resume += other.resume
            deadLetters += other.deadLetters
            if let at = other.sweepAt { sweepAt = min(sweepAt ?? at, at) }
            becameUnused = becameUnused || other.becameUnused
        }
    }

    let name: String
    let options: QueueOptions
    let maxLength: Int
    /// The client that declared an exclusive queue.
    let owner: ObjectIdentifier?
    let state: Mutex<State>

    init(name: String, options: QueueOptions, defaultMaxLength: Int, owner: ObjectIdentifier?) {
        self.name = name
        self.options = options
        self.maxLength = options.maxLength ?? defaultMaxLength
        self.owner = owner
        self.state = Mutex(State(buckets: Array(repeating: Deque(), count: Int(options.maxPriority) + 1)))
    }

    // MARK: Enqueue

    enum EnqueueResult {
        case accepted(Effects)
        case full
        case deleted
    }

    /// Adds a message at the tail (or, for requeues, puts entries back at the head).
    func enqueue(_ message: Message, exchange: String, now: ContinuousClock.Instant) -> EnqueueResult {
        var ttl = options.messageTTL
        if let expiration = message.metadata.expiration { ttl = min(ttl ?? expiration, expiration) }
        let deadline = ttl.map { now.advanced(by: $0) }
        return state.withLock { state in
            if state.deleted { return .deleted }
            var effects = Effects()
            if state.readyCount >= maxLength {
                if options.overflow == .dropHead, let head = Self.popHead(&state) {
                    effects.deadLetters.append(DeadLetter(entry: head, reason: "maxlen", error: nil))
                } else {
                    return .full
                }
            }
            let entry = Entry(message: message, deliveryCount: 0, sequence: state.nextSequence, deadline: deadline, exchange: exchange)
            state.nextSequence += 1
            state.published += 1
            Self.push(entry, &state, atHead: false)
            effects.merge(dispatch(&state, now: now))
            return .accepted(effects)
        }
    }

    /// Puts a delayed redelivery back at the tail.
    func redeliver(_ entry: Entry, now: ContinuousClock.Instant) -> Effects {
        state.withLock { state in
            guard !state.deleted else { return Effects() }
            state.delayed -= 1
            Self.push(entry, &state, atHead: false)
            return dispatch(&state, now: now)
        }
    }

    private static func bucketIndex(_ entry: Entry, _ state: State) -> Int {
        min(Int(entry.message.metadata.priority ?? 0), state.buckets.count - 1)
    }

    private static func push(_ entry: Entry, _ state: inout State, atHead: Bool) {
        let index = bucketIndex(entry, state)
        if atHead { state.buckets[index].prepend(entry) } else { state.buckets[index].append(entry) }
        state.readyCount += 1
        state.readyBytes += entry.message.payload.count
        if entry.deadline != nil { state.withDeadline += 1 }
    }

    private static func popHead(_ state: inout State) -> Entry? {
        guard state.readyCount > 0 else { return nil }
        for index in state.buckets.indices.reversed() where !state.buckets[index].isEmpty {
            let entry = state.buckets[index].removeFirst()
            state.readyCount -= 1
            state.readyBytes -= entry.message.payload.count
            if entry.deadline != nil { state.withDeadline -= 1 }
            return entry
        }
        return nil
    }

    // MARK: Dispatch

    /// Hands ready messages to waiting consumers that have credit, expiring dead ones on the way.
    private func dispatch(_ state: inout State, now: ContinuousClock.Instant) -> Effects {
        var effects = Effects()
        var skipped = Deque<(consumer: UInt64, id: UInt64, continuation: Waiter)>()
        while state.readyCount > 0, let waiter = state.waiters.popFirst() {
            guard var consumer = state.consumers[waiter.consumer] else {
                effects.resume.append((waiter.continuation, .success(nil)))
                continue
            }
            guard consumer.autoAck || consumer.unacked < consumer.prefetch else {
                skipped.append(waiter)
                continue
            }
            guard let delivery = takeNext(&state, consumer: waiter.consumer, &consumer, now: now, effects: &effects) else {
                skipped.append(waiter)
                break
            }
            state.consumers[waiter.consumer] = consumer
            effects.resume.append((waiter.continuation, .success(delivery)))
        }
        if !skipped.isEmpty {
            // Waiters without credit keep their place ahead of later arrivals.
            state.waiters = skipped + state.waiters
        }
        if state.withDeadline > 0 {
            effects.sweepAt = scheduleSweep(&state)
        }
        return effects
    }

    /// Pops the next live message for a consumer and records the delivery.
    private func takeNext(_ state: inout State, consumer id: UInt64, _ consumer: inout Consumer, now: ContinuousClock.Instant, effects: inout Effects) -> Delivery? {
        while var entry = Self.popHead(&state) {
            if let deadline = entry.deadline, deadline <= now {
                effects.deadLetters.append(DeadLetter(entry: entry, reason: "expired", error: nil))
                continue
            }
            entry.deliveryCount += 1
            let tag = state.nextTag
            state.nextTag += 1
            if !consumer.autoAck {
                state.unacked[tag] = (entry, id)
                consumer.unacked += 1
            }
            return Delivery(message: entry.message, deliveryCount: entry.deliveryCount, queue: name, tag: tag, settler: consumer.settler)
        }
        return nil
    }

    private func scheduleSweep(_ state: inout State) -> ContinuousClock.Instant? {
        var earliest: ContinuousClock.Instant?
        for bucket in state.buckets {
            if let deadline = bucket.first?.deadline { earliest = min(earliest ?? deadline, deadline) }
        }
        guard let earliest else { return nil }
        if let current = state.sweepAt, current <= earliest { return nil }
        state.sweepAt = earliest
        return earliest
    }

    /// Dead-letters expired messages at the head of each priority level (as RabbitMQ does).
    func sweep(now: ContinuousClock.Instant) -> Effects {
        state.withLock { state in
            state.sweepAt = nil
            var effects = Effects()
            for index in state.buckets.indices {
                while let deadline = state.buckets[index].first?.deadline, deadline <= now {
                    let entry = state.buckets[index].removeFirst()
                    state.readyCount -= 1
                    state.readyBytes -= entry.message.payload.count
                    state.withDeadline -= 1
                    effects.deadLetters.append(DeadLetter(entry: entry, reason: "expired", error: nil))
                }
            }
            effects.merge(dispatch(&state, now: now))
            return effects
        }
    }

    // MARK: Consumers

    func addConsumer(_ id: UInt64, prefetch: Int, autoAck: Bool, settler: any DeliverySettler, isGetter: Bool = false) throws {
        try state.withLock { state in
            if state.deleted {
                throw MessagingError(.notFound, "queue '\(name)' was deleted", brokerCode: "NOT_FOUND")
            }
            state.consumers[id] = Consumer(prefetch: prefetch, autoAck: autoAck, settler: settler, isGetter: isGetter)
            if !isGetter { state.hadConsumer = true }
        }
    }

    /// Waits for the next delivery for a consumer; `nil` once the consumer or queue is closed or the task is cancelled.
    func next(consumer id: UInt64, waiterID: UInt64, clock: ContinuousClock, apply: (Effects) -> Void) async throws -> Delivery? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: Waiter) in
                let effects: Effects = state.withLock { state in
                    var effects = Effects()
                    guard !state.deleted, !Task.isCancelled, state.consumers[id] != nil else {
                        effects.resume.append((continuation, .success(nil)))
                        return effects
                    }
                    state.waiters.append((id, waiterID, continuation))
                    effects.merge(dispatch(&state, now: clock.now))
                    return effects
                }
                apply(effects)
            }
        } onCancel: {
            let waiter: Waiter? = state.withLock { state in
                guard let index = state.waiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Takes one message for a getter consumer, without waiting.
    func get(consumer id: UInt64, clock: ContinuousClock) -> (Delivery?, Effects) {
        state.withLock { state in
            var effects = Effects()
            guard var consumer = state.consumers[id] else { return (nil, effects) }
            let delivery = takeNext(&state, consumer: id, &consumer, now: clock.now, effects: &effects)
            state.consumers[id] = consumer
            return (delivery, effects)
        }
    }

    /// Removes a consumer: its waiters end, its unacknowledged messages go back to the head in order.
    func removeConsumer(_ id: UInt64, now: ContinuousClock.Instant) -> Effects {
        state.withLock { state in
            var effects = Effects()
            guard let removed = state.consumers.removeValue(forKey: id) else { return effects }
            var remaining = Deque<(consumer: UInt64, id: UInt64, continuation: Waiter)>()
            for waiter in state.waiters {
                if waiter.consumer == id { effects.resume.append((waiter.continuation, .success(nil))) } else { remaining.append(waiter) }
            }
            state.waiters = remaining
            let returned = state.unacked.filter { $0.value.consumer == id }
            for (tag, _) in returned { state.unacked.removeValue(forKey: tag) }
            for entry in returned.values.map(\.entry).sorted(by: { $0.sequence > $1.sequence }) {
                Self.push(entry, &state, atHead: true)
            }
            effects.merge(dispatch(&state, now: now))
            let consumersLeft = state.consumers.values.contains { !$0.isGetter }
            if options.autoDelete, state.hadConsumer, !consumersLeft, !removed.isGetter {
                effects.becameUnused = true
            }
            return effects
        }
    }

    // MARK: Settlement

    enum SettleAction {
        case done(Effects)
        case delay(Entry, Duration, Effects)
    }

    func settle(tag: UInt64, consumer id: UInt64, outcome: SettleOutcome, now: ContinuousClock.Instant) throws -> SettleAction {
        try state.withLock { state in
            guard let (entry, owner) = state.unacked[tag], owner == id else {
                throw MessagingError(
                    .brokerError,
                    "delivery \(tag) on queue '\(name)' is not outstanding: it was settled already, or its consumer closed and the message was redelivered",
                    brokerCode: "PRECONDITION_FAILED", brokerReason: "unknown delivery tag \(tag)"
                )
            }
            state.unacked.removeValue(forKey: tag)
            state.consumers[id]?.unacked -= 1
            var effects = Effects()
            var action: SettleAction?
            switch outcome {
            case .ack:
                break
            case .requeue(let delay):
                if let delay, delay > .zero {
                    state.delayed += 1
                    action = .delay(entry, delay, effects)
                } else {
                    Self.push(entry, &state, atHead: true)
                }
            case .deadLetter(let reason, let error):
                effects.deadLetters.append(DeadLetter(entry: entry, reason: reason, error: error))
            }
            effects.merge(dispatch(&state, now: now))
            if case .delay(let entry, let delay, _) = action { return .delay(entry, delay, effects) }
            return .done(effects)
        }
    }

    // MARK: Management

    /// Marks the queue deleted; every waiter ends.
    func markDeleted() -> Effects {
        state.withLock { state in
            var effects = Effects()
            state.deleted = true
            for waiter in state.waiters { effects.resume.append((waiter.continuation, .success(nil))) }
            state.waiters.removeAll()
            state.consumers.removeAll()
            return effects
        }
    }

    func purge() -> Int {
        state.withLock { state in
            let count = state.readyCount
            for index in state.buckets.indices { state.buckets[index].removeAll() }
            state.readyCount = 0
            state.readyBytes = 0
            state.withDeadline = 0
            return count
        }
    }

    func info() -> QueueInfo {
        state.withLock { state in
            QueueInfo(
                name: name, ready: state.readyCount, unacknowledged: state.unacked.count,
                delayed: state.delayed, consumers: state.consumers.values.filter { !$0.isGetter }.count
            )
        }
    }
}
