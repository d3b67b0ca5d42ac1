import CRdKafka
import DequeModule
import Foundation
import Jadugar
import Logging
import Synchronization

/// What a queue consumer needs from its broker client.
struct ConsumerEnvironment: Sendable {
    let configuration: KafkaConfiguration
    let producer: KafkaProducer
    let events: EventBroadcaster
    let topology: KafkaTopology
    let logger: Logger
    /// Creates a topic if it is missing (dead-letter targets).
    let ensureTopic: @Sendable (String) async throws -> Void
    /// Removes the consumer from its broker's registry if it is still idle; returns whether it did
    /// (the consumer is then closing).
    let retire: @Sendable (KafkaQueueConsumer) -> Bool
    /// Called on the consumer's thread once it has closed.
    let closed: @Sendable (KafkaQueueConsumer) -> Void
}

/// One queue's Kafka consumer in one broker client: a librdkafka consumer (a group member for
/// durable queues, a self-assigning reader for exclusive ones) polled on its own thread, shared by
/// every stream of that queue in the client.
///
/// Streams of the same queue compete for its records locally, with a prefetch bound each, so that
/// more subscribers in a process cost no group rebalance. A delivery is settled here: an ack marks
/// its offset done, and the poll thread commits each partition's contiguous done prefix; a requeue
/// puts the record back at the head of the local queue; a delayed requeue produces it to the
/// queue's retry topic; a dead letter produces it to the dead-letter target. Unsettled records are
/// never committed, so they are fetched again after a crash, a close or a rebalance.
///
/// - Important: The librdkafka client is made, used and destroyed only on the poll thread, except
///   for `rd_kafka_queue_yield`, which wakes that thread and which librdkafka allows from any thread.
final class KafkaQueueConsumer: DeliverySettler, Sendable {
    let queue: String
    let environment: ConsumerEnvironment
    let state: Mutex<ConsumerState>
    /// The consumer queue, to wake the poll thread; set by the poll thread once the client exists,
    /// cleared before it is closed.
    private let wakeQueue = Mutex<OpaquePointer?>(nil)
    /// Signalled when the streams drain a full buffer to half, or a command needs the poll thread.
    let space = DispatchSemaphore(value: 0)
    /// Whether the poll thread made its librdkafka client, and who waits to know.
    private let startup = Mutex<(result: Result<Void, MessagingError>?, waiters: [CheckedContinuation<Void, any Error>])>((nil, []))
    let id = Message.makeID()

    private init(queue: String, spec: ConsumerSpec, environment: ConsumerEnvironment) {
        self.queue = queue
        self.environment = environment
        var initial = ConsumerState(spec: spec)
        initial.knownAttempts = environment.topology.takeAttempts(queue: queue)
        self.state = Mutex(initial)
    }

    /// Starts the consumer's poll thread, which makes the librdkafka client; see ``started()``.
    static func start(queue: String, spec: ConsumerSpec, environment: ConsumerEnvironment) -> KafkaQueueConsumer {
        let consumer = KafkaQueueConsumer(queue: queue, spec: spec, environment: environment)
        KafkaThread.start(name: "jadugar-kafka-c") {
            consumer.run(spec: spec)
        }
        return consumer
    }

    /// The poll thread: makes the client (so that `rd_kafka_new` and `rd_kafka_destroy`, which
    /// block, never run on Swift's cooperative pool), polls until closed, destroys it.
    private func run(spec: ConsumerSpec) {
        let box = CallbackBox(logger: environment.logger)
        let group = spec.usesGroup ? spec.groupID : "jadugar-private-\(Message.makeID())"
        let handle: RdKafkaHandle
        do {
            handle = try RdKafkaHandle.make(type: RD_KAFKA_CONSUMER, properties: environment.configuration.consumerClientProperties(group: group), opaque: box) { conf in
                rd_kafka_conf_set_rebalance_cb(conf, kafkaRebalance)
                rd_kafka_conf_set_offset_commit_cb(conf, kafkaOffsetCommit)
                rd_kafka_conf_set_error_cb(conf, kafkaConsumerError)
            }
        } catch {
            let failure = error as? MessagingError ?? MessagingError(.brokerError, "\(error)")
            // A shutdown() that came while the client was being made waits for the close too.
            let (resumes, closeWaiters) = state.withLock { state -> ([ConsumerState.Resume], [CheckedContinuation<Void, Never>]) in
                state.failure = failure
                state.phase = .closed
                defer { state.closeWaiters.removeAll() }
                return (state.endAllWaiters(), state.closeWaiters)
            }
            Self.resume(resumes)
            finishStartup(.failure(failure))
            environment.closed(self)
            for waiter in closeWaiters { waiter.resume() }
            return
        }
        // Callbacks reach the consumer through the box only while this thread runs.
        box.consumer = self
        wakeQueue.withLock { $0 = rd_kafka_queue_get_consumer(handle.pointer) }
        // A durable queue reads from its group's offsets, so it is ready at once; a private one
        // starts at the end of its topics, so it is ready once that end is fixed (see pollLoop).
        if !spec.isPrivate { finishStartup(.success(())) }
        pollLoop(handle.pointer)
        finishStartup(.failure(MessagingError(.closed, "the consumer of queue '\(queue)' closed before it was assigned its partitions")))
        box.consumer = nil
        handle.destroy()
    }

    /// Reports whether the consumer is ready; only the first report counts.
    func finishStartup(_ result: Result<Void, MessagingError>) {
        let waiters = startup.withLock { startup -> [CheckedContinuation<Void, any Error>] in
            guard startup.result == nil else { return [] }
            startup.result = result
            defer { startup.waiters.removeAll() }
            return startup.waiters
        }
        for waiter in waiters { waiter.resume(with: result.mapError { $0 as any Error }) }
    }

    /// Returns once the librdkafka client exists, and for a private consumer once its partitions
    /// are assigned at the current end of its topics (at most the operation timeout).
    ///
    /// - Throws: Why it could not be made (a property librdkafka rejects, for example).
    func started() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let result = startup.withLock { startup -> Result<Void, MessagingError>? in
                if let result = startup.result { return result }
                startup.waiters.append(continuation)
                return nil
            }
            if let result { continuation.resume(with: result.mapError { $0 as any Error }) }
        }
    }

    /// Wakes the poll thread out of `rd_kafka_consumer_poll`.
    func wake() {
        wakeQueue.withLock { queue in
            if let queue { rd_kafka_queue_yield(queue) }
        }
        if state.withLock({ $0.waitingForSpace }) { space.signal() }
    }

    /// Called on the poll thread before the handle is closed: no more wake-ups.
    func releaseWakeQueue() {
        wakeQueue.withLock { queue in
            if let pointer = queue { rd_kafka_queue_destroy(pointer) }
            queue = nil
        }
    }

    static func resume(_ resumes: [ConsumerState.Resume]) {
        for (continuation, result) in resumes { continuation.resume(with: result) }
    }

    // MARK: Streams

    /// Adds a stream (or the getter) and returns its id, or `nil` when the consumer is closing.
    func attach(prefetch: Int, autoAck: Bool, isGetter: Bool = false) -> UInt64? {
        state.withLock { state in
            guard state.phase == .running else { return nil }
            let id = state.nextSource
            state.nextSource += 1
            state.sources[id] = ConsumerState.Source(prefetch: prefetch, autoAck: autoAck, isGetter: isGetter)
            state.idleSince = nil
            return id
        }
    }

    /// The next delivery for a stream; `nil` when the stream or consumer closed or the task was cancelled.
    func next(source: UInt64) async throws -> Delivery? {
        let waiterID = state.withLock { state -> UInt64 in
            defer { state.nextTag += 1 }
            return state.nextTag
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Delivery?, any Error>) in
                let limit = environment.configuration.maxBufferedMessages
                var signal = false
                let immediate: Result<Delivery?, any Error>? = state.withLock { state in
                    if let failure = state.failure { return .failure(failure) }
                    guard state.phase == .running, state.sources[source] != nil, !Task.isCancelled else { return .success(nil) }
                    if let delivery = state.take(for: source, queue: queue, settler: self) {
                        signal = state.shouldSignalSpace(limit: limit)
                        return .success(delivery)
                    }
                    state.waiters.append(ConsumerState.Waiter(source: source, id: waiterID, continuation: continuation))
                    return nil
                }
                if signal { space.signal() }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Delivery?, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Removes a stream; its unsettled deliveries go to the other streams, or back to Kafka when
    /// the consumer closes. A private consumer closes when its last stream does.
    func detach(source: UInt64) {
        let (resumes, idle, isPrivate) = state.withLock { state in
            var resumes = state.removeSource(source, now: .now)
            resumes += state.dispatch(queue: queue, settler: self)
            return (resumes, !state.hasStreams, state.spec.isPrivate)
        }
        Self.resume(resumes)
        if idle, isPrivate || environment.configuration.consumerLinger <= .zero {
            if environment.retire(self) { wake() }
        }
    }

    /// Marks the consumer closing if it has no stream; used by the broker's registry under its lock.
    func retireIfIdle(force: Bool) -> Bool {
        let resumes: [ConsumerState.Resume]? = state.withLock { state in
            guard state.phase == .running, force || !state.hasStreams else { return nil }
            state.phase = .closing
            return state.endAllWaiters()
        }
        guard let resumes else { return false }
        Self.resume(resumes)
        return true
    }

    /// Closes the consumer: its streams end, their unsettled deliveries are not committed (Kafka
    /// redelivers them), and the group is left. Returns when the poll thread has finished.
    func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (done, resumes) = state.withLock { state -> (Bool, [ConsumerState.Resume]) in
                if state.phase == .closed { return (true, []) }
                state.closeWaiters.append(continuation)
                guard state.phase == .running else { return (false, []) }
                state.phase = .closing
                return (false, state.endAllWaiters())
            }
            Self.resume(resumes)
            if done { continuation.resume() } else { wake() }
        }
    }

    // MARK: Settlement

    func settle(_ delivery: Delivery, _ outcome: SettleOutcome) async throws {
        switch outcome {
        case .ack:
            let resumes = try state.withLock { state -> [ConsumerState.Resume] in
                switch try state.takeInFlight(delivery.tag, queue: queue) {
                case .record(let record): state.markDone(record.position)
                case .abandoned(let position): state.acknowledgeAbandoned(position)
                }
                return state.dispatch(queue: queue, settler: self)
            }
            Self.resume(resumes)
        case .requeue(let delay):
            if let delay, delay > .zero {
                guard let record = try beginSettling(delivery.tag) else { return }
                do {
                    try await produceRetry(record, delay: delay)
                    finishSettling(delivery.tag, record)
                } catch {
                    // The retry topic refused it: wait here instead (not durable, still a delayed redelivery).
                    environment.logger.warning("retry topic refused a message; retrying locally", metadata: ["jadugar.queue": "\(queue)", "jadugar.error": "\(error)"])
                    state.withLock { state in
                        guard var pending = state.settling.removeValue(forKey: delivery.tag) else { return }
                        pending.due = .now + delay
                        state.delayed.append(pending)
                    }
                }
            } else {
                let resumes = try state.withLock { state -> [ConsumerState.Resume] in
                    guard case .record(let record) = try state.takeInFlight(delivery.tag, queue: queue) else { return [] }
                    state.ready.prepend(record)
                    return state.dispatch(queue: queue, settler: self)
                }
                Self.resume(resumes)
            }
        case .deadLetter(let reason, let error):
            guard let record = try beginSettling(delivery.tag) else { return }
            do {
                try await deadLetter(record, reason: reason, error: error)
                finishSettling(delivery.tag, record)
            } catch {
                let resumes = state.withLock { state -> [ConsumerState.Resume] in
                    guard let pending = state.settling.removeValue(forKey: delivery.tag) else { return [] }
                    state.ready.prepend(pending)
                    return state.dispatch(queue: queue, settler: self)
                }
                Self.resume(resumes)
                throw error
            }
        }
    }

    /// Moves a delivery from in-flight to settling (its produce is under way); its stream gets credit
    /// back. `nil` when the delivery was abandoned.
    private func beginSettling(_ tag: UInt64) throws -> ConsumerRecord? {
        let (record, resumes) = try state.withLock { state -> (ConsumerRecord?, [ConsumerState.Resume]) in
            guard case .record(let record) = try state.takeInFlight(tag, queue: queue) else { return (nil, []) }
            state.settling[tag] = record
            return (record, state.dispatch(queue: queue, settler: self))
        }
        Self.resume(resumes)
        return record
    }

    private func finishSettling(_ tag: UInt64, _ record: ConsumerRecord) {
        state.withLock { state in
            if state.settling.removeValue(forKey: tag) != nil { state.markDone(record.position) }
        }
    }

    /// Produces a copy to the retry topic, due after `delay`.
    private func produceRetry(_ record: ConsumerRecord, delay: Duration) async throws {
        let due = KafkaEnvelope.milliseconds(Date()) + Int64(delay.wholeMilliseconds)
        let retryTopic = ConsumerSpec.retryTopic(for: queue)
        let extra = [
            (KafkaHeader.retryFor, queue), (KafkaHeader.retryAt, String(due)),
            (KafkaHeader.retryAttempts, String(record.attempts)), (KafkaHeader.retryTopic, record.message.topic),
        ]
        let outgoing = KafkaEnvelope.encode(record.message, topic: environment.configuration.kafkaName(retryTopic), exchange: record.exchange, key: nil, extra: extra)
        try await environment.producer.send(outgoing)
    }

    /// Produces a dead letter to the queue's target with the reason and where it came from, or
    /// drops it when the queue has no target.
    func deadLetter(_ record: ConsumerRecord, reason: String, error: String?) async throws {
        let (target, defaultExchange) = state.withLock { ($0.spec.deadLetter, $0.spec.defaultExchange) }
        var message = record.message
        guard let target else {
            environment.events.emit(BrokerEvent(kind: .dropped, broker: "kafka", detail: "message \(message.id) from queue '\(queue)' discarded (\(reason)); the queue has no dead-letter target"))
            return
        }
        var headers = message.metadata.headers
        headers[JadugarHeader.deadLetterReason] = reason
        headers[JadugarHeader.attempts] = String(record.attempts)
        headers[JadugarHeader.originalQueue] = queue
        if headers[JadugarHeader.originalTopic] == nil { headers[JadugarHeader.originalTopic] = message.topic }
        if headers[JadugarHeader.originalExchange] == nil { headers[JadugarHeader.originalExchange] = record.exchange ?? defaultExchange }
        headers[JadugarHeader.deadLetteredAt] = ISO8601DateFormatter().string(from: Date())
        if let error { headers[JadugarHeader.lastError] = error } else { headers.removeValue(forKey: JadugarHeader.lastError) }
        headers[KafkaHeader.originalPartition] = String(record.position.partition.partition)
        headers[KafkaHeader.originalOffset] = String(record.position.offset)
        message.metadata.headers = headers
        message.metadata.expiration = nil
        let topic = target.routingKey ?? message.topic
        let exchange: String? = target.exchange == defaultExchange ? nil : target.exchange
        if target.exchange.isEmpty { try await environment.ensureTopic(topic) }
        try await environment.producer.send(KafkaEnvelope.encode(message, topic: environment.configuration.kafkaName(topic), exchange: exchange, key: nil))
        environment.events.emit(BrokerEvent(kind: .deadLettered, broker: "kafka", detail: "message \(message.id) from '\(queue)' to '\(topic)': \(reason)"))
    }

    /// Dead-letters a record that expired before it was delivered.
    func expire(_ record: ConsumerRecord, tag: UInt64) {
        Task {
            do {
                try await self.deadLetter(record, reason: "expired", error: nil)
                self.finishSettling(tag, record)
            } catch {
                // Not committed: it is fetched (and expired) again by the next consumer.
                self.environment.logger.warning("dead-lettering an expired message failed", metadata: ["jadugar.queue": "\(self.queue)", "jadugar.error": "\(error)"])
                self.state.withLock { _ = $0.settling.removeValue(forKey: tag) }
            }
        }
    }

    // MARK: Getting, purging, counting

    /// The consumer is closing; the broker retries with a new one.
    struct Closing: Error {}

    /// Takes one ready record without a stream, waiting (up to the operation timeout) until the
    /// consumer has an assignment and has read each assigned partition to its end.
    ///
    /// - Throws: ``Closing`` when the consumer is closing.
    func get() async throws -> Delivery? {
        let deadline = ContinuousClock.now + environment.configuration.operationTimeout
        var pause = Duration.milliseconds(1)
        while true {
            enum Step { case delivery(Delivery), empty, wait }
            let step: Step = try state.withLock { state in
                if let failure = state.failure { throw failure }
                guard state.phase == .running else { throw Closing() }
                let getter: UInt64
                if let existing = state.getter {
                    getter = existing
                } else {
                    getter = state.nextSource
                    state.nextSource += 1
                    state.sources[getter] = ConsumerState.Source(prefetch: .max, autoAck: false, isGetter: true)
                    state.getter = getter
                    state.idleSince = nil
                }
                state.getterUsed = .now
                if let delivery = state.take(for: getter, queue: queue, settler: self) { return .delivery(delivery) }
                return state.drained(now: .now) ? .empty : .wait
            }
            switch step {
            case .delivery(let delivery): return delivery
            case .empty: return nil
            case .wait:
                if ContinuousClock.now >= deadline { return nil }
                // Polling the consumer's state: Kafka reports "caught up" only as end-of-partition events.
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .milliseconds(20))
            }
        }
    }

    /// Removes every ready record up to `until` (inclusive, per partition) as it is fetched, and
    /// commits past them; returns how many were removed.
    func purge(until: [TopicPartition: Int64]) async -> Int {
        let deadline = ContinuousClock.now + environment.configuration.operationTimeout
        let count = await withCheckedContinuation { (continuation: CheckedContinuation<Int, Never>) in
            let busy = state.withLock { state -> Bool in
                guard state.phase == .running, state.purge == nil else { return true }
                var purge = ConsumerState.Purge(until: until, deadline: deadline, continuation: continuation)
                var purged: [RecordPosition] = []
                state.ready.removeAll { record in
                    guard let last = until[record.position.partition], record.position.offset <= last else { return false }
                    purged.append(record.position)
                    return true
                }
                for position in purged { state.markDone(position) }
                purge.count += purged.count
                state.purge = purge
                return false
            }
            if busy { continuation.resume(returning: 0) } else { wake() }
        }
        return count
    }

    /// What the consumer knows that the broker's committed offsets do not show yet.
    struct LocalView: Sendable {
        /// Records fetched here that are not ready (in flight, settling, delayed, done but uncommitted).
        var notReady: Set<RecordPosition>
        /// Per partition, the offset below which this consumer has committed or asked to commit.
        var floor: [TopicPartition: Int64]
        var unacknowledged: Int
        var delayed: Int
        var consumers: Int
    }

    func localView() -> LocalView {
        state.withLock { state in
            var notReady = Set<RecordPosition>()
            for entry in state.inFlight.values { notReady.insert(entry.record.position) }
            for record in state.settling.values { notReady.insert(record.position) }
            for record in state.delayed { notReady.insert(record.position) }
            var floor: [TopicPartition: Int64] = [:]
            for (partition, tracker) in state.partitions {
                for offset in tracker.pendingDone { notReady.insert(RecordPosition(partition: partition, offset: offset)) }
                if tracker.committed >= 0 { floor[partition] = tracker.committed }
            }
            return LocalView(
                notReady: notReady, floor: floor,
                unacknowledged: state.inFlight.count + state.settling.count,
                delayed: state.delayed.count,
                consumers: state.sources.values.filter { !$0.isGetter }.count
            )
        }
    }

    /// The bindings of the queue changed: the poll thread subscribes again.
    func respecify(_ spec: ConsumerSpec) {
        state.withLock { state in
            state.spec = spec
            state.commands.append(.respecify)
        }
        wake()
    }

    /// Commits what is done, synchronously, on the poll thread.
    func commitNow() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let accepted = state.withLock { state -> Bool in
                guard state.phase == .running else { return false }
                state.commands.append(.commit(continuation))
                return true
            }
            if accepted { wake() } else { continuation.resume() }
        }
    }
}

/// The opaque librdkafka hands to the consumer's callbacks.
///
/// `@unchecked Sendable`: `consumer` is written once before the poll thread starts and cleared by
/// that thread after its last librdkafka call; the rebalance, commit and error callbacks read it
/// only on that thread (the log callback, which runs anywhere, reads only the immutable logger).
final class CallbackBox: RdKafkaOpaque, @unchecked Sendable {
    var consumer: KafkaQueueConsumer?
}

/// A stream's handle on a queue consumer.
final class KafkaStreamSource: DeliverySource {
    let consumer: KafkaQueueConsumer
    let id: UInt64
    private let closed = Atomic<Bool>(false)

    init(consumer: KafkaQueueConsumer, id: UInt64) {
        self.consumer = consumer
        self.id = id
    }

    func next() async throws -> Delivery? {
        if closed.load(ordering: .acquiring) { return nil }
        return try await consumer.next(source: id)
    }

    func close() async {
        guard closed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        consumer.detach(source: id)
    }
}
