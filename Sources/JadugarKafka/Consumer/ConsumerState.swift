import DequeModule
import Jadugar

/// One fetched record on its way through a queue consumer.
struct ConsumerRecord: Sendable {
    var position: RecordPosition
    var message: Message
    /// The exchange header; `nil` means the default topic exchange.
    var exchange: String?
    /// Deliveries so far.
    var attempts: Int
    /// Fetch order, so that records given back keep their order.
    var sequence: UInt64
    /// When a retried record is due.
    var due: ContinuousClock.Instant?
}

/// The state of one queue consumer, guarded by its mutex.
///
/// Its methods only compute: deliveries to hand out are returned as ``Resume`` values, which the
/// caller resumes after releasing the lock.
struct ConsumerState: Sendable {
    enum Phase: Sendable, CustomStringConvertible {
        case running, closing, closed
        var description: String {
            switch self {
            case .running: "running"
            case .closing: "closing"
            case .closed: "closed"
            }
        }
    }

    struct Source: Sendable {
        var prefetch: Int
        var autoAck: Bool
        var isGetter: Bool
        var unacked = 0
    }

    struct Waiter: Sendable {
        var source: UInt64
        var id: UInt64
        var continuation: CheckedContinuation<Delivery?, any Error>
    }

    struct InFlight: Sendable {
        var record: ConsumerRecord
        var source: UInt64
    }

    enum Command: Sendable {
        /// The bindings changed: subscribe again (or assign the new topics).
        case respecify
        /// Commit now, synchronously, and resume.
        case commit(CheckedContinuation<Void, Never>)
    }

    struct Purge: Sendable {
        var until: [TopicPartition: Int64]
        var count = 0
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<Int, Never>
    }

    typealias Resume = (continuation: CheckedContinuation<Delivery?, any Error>, result: Result<Delivery?, any Error>)

    var spec: ConsumerSpec
    var phase = Phase.running
    var failure: MessagingError?
    var ready = Deque<ConsumerRecord>()
    var delayed: [ConsumerRecord] = []
    var inFlight: [UInt64: InFlight] = [:]
    /// Records whose retry or dead-letter produce is under way.
    var settling: [UInt64: ConsumerRecord] = [:]
    /// Deliveries given up before they were settled, by tag: their stream closed (the record went
    /// back to the ready queue) or their partition was revoked (the next owner delivers it again).
    /// A late ack still removes the record if it has not been handed out again; any other late
    /// settlement does nothing.
    var abandoned: [UInt64: RecordPosition] = [:]
    var partitions: [TopicPartition: PartitionTracker] = [:]
    var sources: [UInt64: Source] = [:]
    var waiters = Deque<Waiter>()
    /// The consumer received an assignment (possibly empty), so end-of-partition flags mean something.
    var assigned = false
    /// A group join (or rejoin after a revocation) is under way: from subscribing until partitions
    /// are assigned. The consumer does not leave its group meanwhile, because a member that leaves
    /// mid-join can keep Kafka-compatible brokers (Tansu) from ever completing the next join.
    var joining = false
    var joiningSince = ContinuousClock.now
    /// The poll thread waits for the streams to drain a full buffer.
    var waitingForSpace = false
    var commands: [Command] = []
    var purge: Purge?
    var idleSince: ContinuousClock.Instant?
    /// The source `get(queue:)` uses, made on first use.
    var getter: UInt64?
    var getterUsed = ContinuousClock.now
    var nextTag: UInt64 = 1
    var nextSequence: UInt64 = 1
    var nextSource: UInt64 = 1
    /// Attempts of records delivered by an earlier consumer of this queue in this process.
    var knownAttempts: [RecordPosition: Int] = [:]
    var closeWaiters: [CheckedContinuation<Void, Never>] = []

    init(spec: ConsumerSpec) {
        self.spec = spec
    }

    var hasStreams: Bool { !sources.isEmpty }

    // MARK: Handing out

    /// Gives ready records to waiting sources that have credit, in arrival order.
    mutating func dispatch(queue: String, settler: any DeliverySettler) -> [Resume] {
        guard !ready.isEmpty, !waiters.isEmpty else { return [] }
        var resumes: [Resume] = []
        var skipped = Deque<Waiter>()
        while !ready.isEmpty, let waiter = waiters.popFirst() {
            guard let source = sources[waiter.source] else {
                resumes.append((waiter.continuation, .success(nil)))
                continue
            }
            guard source.autoAck || source.isGetter || source.unacked < source.prefetch else {
                skipped.append(waiter)
                continue
            }
            let record = ready.removeFirst()
            resumes.append((waiter.continuation, .success(deliver(record, to: waiter.source, queue: queue, settler: settler))))
        }
        if !skipped.isEmpty { waiters = skipped + waiters }
        return resumes
    }

    /// Whether the poll thread waits for room and the buffer drained to half: then the caller
    /// signals it (once).
    mutating func shouldSignalSpace(limit: Int) -> Bool {
        guard waitingForSpace, ready.count + delayed.count <= limit / 2 else { return false }
        waitingForSpace = false
        return true
    }

    /// Takes the next ready record for a source if it has credit.
    mutating func take(for sourceID: UInt64, queue: String, settler: any DeliverySettler) -> Delivery? {
        guard let source = sources[sourceID], !ready.isEmpty else { return nil }
        guard source.autoAck || source.isGetter || source.unacked < source.prefetch else { return nil }
        return deliver(ready.removeFirst(), to: sourceID, queue: queue, settler: settler)
    }

    private mutating func deliver(_ record: ConsumerRecord, to sourceID: UInt64, queue: String, settler: any DeliverySettler) -> Delivery {
        var record = record
        record.attempts += 1
        let tag = nextTag
        nextTag += 1
        if sources[sourceID]?.autoAck == true {
            markDone(record.position)
        } else {
            inFlight[tag] = InFlight(record: record, source: sourceID)
            sources[sourceID]?.unacked += 1
        }
        return Delivery(message: record.message, deliveryCount: record.attempts, queue: queue, tag: tag, settler: settler)
    }

    mutating func markDone(_ position: RecordPosition) {
        partitions[position.partition]?.markDone(position.offset)
    }

    /// Puts records back at the head of the ready queue, in their fetch order.
    mutating func giveBack(_ records: [ConsumerRecord]) {
        for record in records.sorted(by: { $0.sequence > $1.sequence }) {
            ready.prepend(record)
        }
    }

    // MARK: Settlement

    enum Outstanding {
        case record(ConsumerRecord)
        case abandoned(RecordPosition)
    }

    /// Removes an outstanding delivery and returns its record, crediting its source, or where it was
    /// when it was abandoned.
    mutating func takeInFlight(_ tag: UInt64, queue: String) throws -> Outstanding {
        guard let entry = inFlight.removeValue(forKey: tag) else {
            if let position = abandoned.removeValue(forKey: tag) { return .abandoned(position) }
            throw MessagingError(
                .brokerError,
                "delivery \(tag) on queue '\(queue)' is not outstanding: it was settled already",
                brokerCode: "UNKNOWN_DELIVERY", isRetriable: false
            )
        }
        sources[entry.source]?.unacked -= 1
        return .record(entry.record)
    }

    /// A late ack of an abandoned delivery: the record is done if it is still waiting in the ready queue.
    mutating func acknowledgeAbandoned(_ position: RecordPosition) {
        guard let index = ready.firstIndex(where: { $0.position == position }) else { return }
        ready.remove(at: index)
        markDone(position)
    }

    private mutating func abandon(_ tag: UInt64, _ position: RecordPosition) {
        if abandoned.count >= 100_000 { abandoned.removeAll() }
        abandoned[tag] = position
    }

    // MARK: Streams

    /// Removes a source: its waiters end and its unsettled deliveries go back to the head of the queue.
    mutating func removeSource(_ id: UInt64, now: ContinuousClock.Instant) -> [Resume] {
        guard sources.removeValue(forKey: id) != nil else { return [] }
        if getter == id { getter = nil }
        var resumes: [Resume] = []
        var remaining = Deque<Waiter>()
        for waiter in waiters {
            if waiter.source == id { resumes.append((waiter.continuation, .success(nil))) } else { remaining.append(waiter) }
        }
        waiters = remaining
        let returned = inFlight.filter { $0.value.source == id }
        for (tag, entry) in returned {
            inFlight.removeValue(forKey: tag)
            abandon(tag, entry.record.position)
        }
        giveBack(returned.values.map(\.record))
        if sources.isEmpty { idleSince = now }
        return resumes
    }

    /// Ends every waiter (closing), with `nil` or the failure.
    mutating func endAllWaiters() -> [Resume] {
        let result: Result<Delivery?, any Error> = failure.map { .failure($0) } ?? .success(nil)
        defer { waiters.removeAll() }
        return waiters.map { ($0.continuation, result) }
    }

    // MARK: Partitions

    /// Attempts of records that were delivered and not finished, to remember for the next consumer.
    func unfinishedAttempts(in partitions: Set<TopicPartition>? = nil) -> [RecordPosition: Int] {
        var attempts: [RecordPosition: Int] = [:]
        func note(_ record: ConsumerRecord) {
            guard record.attempts > 0, partitions?.contains(record.position.partition) ?? true else { return }
            attempts[record.position] = record.attempts
        }
        for record in ready { note(record) }
        for record in delayed { note(record) }
        for entry in inFlight.values { note(entry.record) }
        for record in settling.values { note(record) }
        return attempts
    }

    /// Forgets revoked partitions: their buffered records go (the new owner fetches them again)
    /// and their outstanding deliveries can no longer be settled.
    mutating func revoke(_ revoked: Set<TopicPartition>) {
        for partition in revoked { partitions.removeValue(forKey: partition) }
        ready.removeAll { revoked.contains($0.position.partition) }
        delayed.removeAll { revoked.contains($0.position.partition) }
        for (tag, entry) in inFlight where revoked.contains(entry.record.position.partition) {
            inFlight.removeValue(forKey: tag)
            abandon(tag, entry.record.position)
            sources[entry.source]?.unacked -= 1
        }
        for (tag, record) in settling where revoked.contains(record.position.partition) {
            settling.removeValue(forKey: tag)
        }
    }

    /// Whether any delivery of these partitions is still being handled.
    func busy(_ partitions: Set<TopicPartition>) -> Bool {
        inFlight.values.contains { partitions.contains($0.record.position.partition) }
            || settling.values.contains { partitions.contains($0.position.partition) }
    }

    /// Offsets to commit: for each partition, the contiguous done prefix when it advanced.
    mutating func commitPoints(only: Set<TopicPartition>? = nil) -> [(TopicPartition, Int64)] {
        var points: [(TopicPartition, Int64)] = []
        for key in partitions.keys where only?.contains(key) ?? true {
            if let offset = partitions[key]?.nextCommit() { points.append((key, offset)) }
        }
        return points
    }

    /// Every assigned partition reached its end with nothing ready and nothing due.
    func drained(now: ContinuousClock.Instant) -> Bool {
        assigned && ready.isEmpty && partitions.values.allSatisfy(\.atEnd) && !delayed.contains { ($0.due ?? now) <= now }
    }
}
