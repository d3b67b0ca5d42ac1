import CRdKafka
import Foundation
import Jadugar
import Logging
import Synchronization

/// A record as the poll thread takes it from librdkafka: where it is and, when the queue delivers
/// it, what it decodes to.
private struct Fetched {
    var position: RecordPosition
    var decoded: DecodedRecord?
}

extension KafkaQueueConsumer {
    /// The longest `rd_kafka_consumer_poll` waits: bounds how late a commit, a delayed retry or a
    /// command is handled (`wake()` cuts it short).
    private static let pollInterval = Duration.milliseconds(50)
    /// How often done offsets are committed while records flow.
    private static let commitInterval = Duration.milliseconds(100)

    /// The poll thread's body: read, hand out, commit, until the consumer closes.
    func pollLoop(_ rk: OpaquePointer) {
        var spec = state.withLock { $0.spec }
        startReading(rk, spec)
        var batch: [Fetched] = []
        var ends: [(TopicPartition, Int64)] = []
        var lastCommit = ContinuousClock.now
        var reportedErrors = Set<String>()
        var names = TopicNames()
        let startupDeadline = ContinuousClock.now + environment.configuration.operationTimeout
        while true {
            if spec.isPrivate, ContinuousClock.now >= startupDeadline || state.withLock({ $0.assigned || $0.failure != nil }) {
                // A private consumer is ready once it is assigned (or gives up waiting).
                finishStartup(.success(()))
            }
            let (commands, phase) = state.withLock { state in
                defer { state.commands.removeAll() }
                return (state.commands, state.phase)
            }
            var commitWaiters: [CheckedContinuation<Void, Never>] = []
            for command in commands {
                switch command {
                case .respecify:
                    let updated = state.withLock { $0.spec }
                    reread(rk, from: spec, to: updated)
                    spec = updated
                    names = TopicNames()
                case .commit(let continuation):
                    commitWaiters.append(continuation)
                }
            }
            if !commitWaiters.isEmpty {
                commit(rk, sync: true)
                for waiter in commitWaiters { waiter.resume() }
            }
            if phase != .running {
                if !joinInProgress() { break }
            } else if lingerExpired(), environment.retire(self) {
                break
            }

            // Flow control: while the local buffer is full, take nothing more from librdkafka (which
            // stops fetching once its own queue is full) but still poll now and then, so that
            // rebalance callbacks are served and the group keeps this member.
            let full = waitWhileFull()
            if let message = rd_kafka_consumer_poll(rk, full ? 0 : Int32(pollTimeout().wholeMilliseconds)) {
                ingest(message, spec: spec, names: &names, into: &batch, ends: &ends, errors: &reportedErrors)
                rd_kafka_message_destroy(message)
                var count = 1
                while !full, count < 1000, let more = rd_kafka_consumer_poll(rk, 0) {
                    ingest(more, spec: spec, names: &names, into: &batch, ends: &ends, errors: &reportedErrors)
                    rd_kafka_message_destroy(more)
                    count += 1
                }
            }
            apply(&batch, &ends)
            releaseDue()
            if ContinuousClock.now - lastCommit >= Self.commitInterval {
                commit(rk, sync: false)
                lastCommit = .now
            }
            finishPurge(rk)
        }
        close(rk)
    }

    // MARK: Subscribing

    private func startReading(_ rk: OpaquePointer, _ spec: ConsumerSpec) {
        if spec.usesGroup {
            subscribe(rk, spec)
        } else {
            assign(rk, topics: spec.literalTopics, spec: spec)
        }
    }

    /// Whether to keep polling before closing because a join is under way; gives up after twice
    /// the session timeout plus ten seconds.
    private func joinInProgress() -> Bool {
        let limit = environment.configuration.sessionTimeout * 2 + .seconds(10)
        return state.withLock { $0.joining && ContinuousClock.now - $0.joiningSince < limit }
    }

    private func subscribe(_ rk: OpaquePointer, _ spec: ConsumerSpec) {
        state.withLock { state in
            state.joining = true
            state.joiningSince = .now
        }
        let topics = spec.literalTopics + spec.regexes
        guard let list = rd_kafka_topic_partition_list_new(Int32(topics.count)) else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, jadugar_rd_kafka_partition_ua()) }
        let err = rd_kafka_subscribe(rk, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            state.withLock { $0.joining = false }
            fail(RdKafkaError.make(err, "subscribing group '\(spec.groupID)' to \(topics) failed"))
        } else {
            environment.logger.debug("kafka consumer subscribed", metadata: ["jadugar.queue": "\(queue)", "jadugar.topic": "\(topics)"])
        }
    }

    /// Assigns every partition of `topics` that is not assigned yet: the queue's own topic from its
    /// beginning, bound topics from their end.
    private func assign(_ rk: OpaquePointer, topics: [String], spec: ConsumerSpec) {
        var counts: [String: Int32] = [:]
        let timeout = Int32(clamping: environment.configuration.operationTimeout.wholeMilliseconds)
        do {
            for topic in topics {
                if let count = try KafkaAdmin.partitions(rk, topic: topic, timeout: timeout) { counts[topic] = Int32(count) }
            }
        } catch let error as MessagingError {
            fail(error)
            return
        } catch {
            fail(MessagingError(.brokerError, "reading the partitions of \(topics) for queue '\(queue)' failed: \(error)"))
            return
        }
        let known = state.withLock { Set($0.partitions.keys) }
        var added: [TopicPartition] = []
        guard let list = rd_kafka_topic_partition_list_new(8) else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics {
            guard let count = counts[topic] else {
                environment.logger.warning("kafka topic missing; queue will not read it", metadata: ["jadugar.queue": "\(queue)", "jadugar.topic": "\(topic)"])
                continue
            }
            for partition in 0..<count {
                let key = TopicPartition(topic: topic, partition: partition)
                guard !known.contains(key) else { continue }
                let element = rd_kafka_topic_partition_list_add(list, topic, partition)
                element?.pointee.offset = topic == spec.ownKafkaTopic ? jadugar_rd_kafka_offset_beginning() : endOffset(rk, key)
                added.append(key)
            }
        }
        state.withLock { state in
            for key in added { state.partitions[key] = PartitionTracker() }
            state.assigned = true
        }
        guard !added.isEmpty else { return }
        if let error = rd_kafka_incremental_assign(rk, list) {
            fail(RdKafkaError.consume(error, "assigning \(added) to queue '\(queue)' failed"))
        }
    }

    /// The current end of a partition, asked now, so that a private consumer misses nothing
    /// published after it started (librdkafka would resolve `OFFSET_END` later, at its first
    /// fetch). Brokers that report a stale end (Tansu after batched produce) make it start early;
    /// the consumer's timestamp filter drops what is older than its start.
    private func endOffset(_ rk: OpaquePointer, _ partition: TopicPartition) -> Int64 {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(rk, partition.topic, partition.partition, &low, &high, Int32(clamping: environment.configuration.operationTimeout.wholeMilliseconds))
        return err == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : jadugar_rd_kafka_offset_end()
    }

    /// Applies changed bindings.
    private func reread(_ rk: OpaquePointer, from old: ConsumerSpec, to new: ConsumerSpec) {
        if old.usesGroup != new.usesGroup {
            environment.logger.error("a private queue cannot switch between literal and wildcard bindings while consumed; close and consume it again", metadata: ["jadugar.queue": "\(queue)"])
            return
        }
        if new.usesGroup {
            if old.literalTopics != new.literalTopics || old.regexes != new.regexes { subscribe(rk, new) }
        } else {
            assign(rk, topics: new.literalTopics, spec: new)
        }
    }

    // MARK: Rebalances

    /// The rebalance callback's work, on the poll thread inside `rd_kafka_consumer_poll` or `rd_kafka_consumer_close`.
    func rebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        let partitions = list.map(Self.partitions(of:)) ?? []
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            let spec = state.withLock { $0.spec }
            if spec.isPrivate, let list {
                // A private group never commits: its own topic is read from the start, bound topics from now.
                for index in 0..<Int(list.pointee.cnt) {
                    let element = list.pointee.elems[index]
                    let topic = String(cString: element.topic)
                    list.pointee.elems[index].offset = topic == spec.ownKafkaTopic
                        ? jadugar_rd_kafka_offset_beginning() : endOffset(rk, TopicPartition(topic: topic, partition: element.partition))
                }
            }
            state.withLock { state in
                for partition in partitions where state.partitions[partition] == nil {
                    state.partitions[partition] = PartitionTracker()
                }
                state.assigned = true
                state.joining = false
            }
            environment.logger.debug("kafka partitions assigned", metadata: ["jadugar.queue": "\(queue)", "jadugar.partitions": "\(partitions)"])
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, list) { environment.logger.warning("incremental assign failed: \(RdKafkaError.consume(error, "assign"))") }
            } else {
                rd_kafka_assign(rk, list)
            }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let revoked = Set(partitions)
            // Let handlers of revoked partitions finish, so their offsets are committed once, by us,
            // rather than fetched again by the new owner.
            let deadline = ContinuousClock.now + environment.configuration.revokeGracePeriod
            while ContinuousClock.now < deadline, state.withLock({ $0.busy(revoked) }) {
                Thread.sleep(forTimeInterval: 0.005)
            }
            commit(rk, sync: true, only: revoked)
            let attempts = state.withLock { state -> [RecordPosition: Int] in
                let attempts = state.unfinishedAttempts(in: revoked)
                state.revoke(revoked)
                if state.partitions.isEmpty { state.assigned = false }
                if !cooperative, state.phase == .running {
                    // An eager revocation is followed by a rejoin.
                    state.joining = true
                    state.joiningSince = .now
                }
                return attempts
            }
            environment.topology.rememberAttempts(queue: queue, attempts)
            environment.logger.debug("kafka partitions revoked", metadata: ["jadugar.queue": "\(queue)", "jadugar.partitions": "\(partitions)"])
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, list) { environment.logger.warning("incremental unassign failed: \(RdKafkaError.consume(error, "unassign"))") }
            } else {
                rd_kafka_assign(rk, nil)
            }
        default:
            environment.events.emit(BrokerEvent(kind: .error, broker: "kafka", detail: "rebalance of group '\(queue)' failed: \(RdKafkaError.name(err))"))
            rd_kafka_assign(rk, nil)
        }
    }

    static func partitions(of list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition] {
        (0..<Int(list.pointee.cnt)).map { index in
            let element = list.pointee.elems[index]
            return TopicPartition(topic: String(cString: element.topic), partition: element.partition)
        }
    }

    // MARK: Reading

    private func ingest(_ message: UnsafeMutablePointer<rd_kafka_message_t>, spec: ConsumerSpec, names: inout TopicNames, into batch: inout [Fetched], ends: inout [(TopicPartition, Int64)], errors: inout Set<String>) {
        let m = message.pointee
        let topic = m.rkt.map { names.name(of: $0) } ?? ""
        let partition = TopicPartition(topic: topic, partition: m.partition)
        guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                ends.append((partition, m.offset))
                return
            }
            let text = m.payload.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? String(cString: rd_kafka_err2str(m.err))
            switch m.err {
            case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
                fail(RdKafkaError.make(m.err, "queue '\(queue)' may not read \(topic.isEmpty ? "its topics" : "'\(topic)'")", detail: text))
            default:
                // Reported once per kind and topic; librdkafka keeps retrying on its own.
                if errors.insert("\(m.err.rawValue):\(topic)").inserted {
                    environment.events.emit(BrokerEvent(kind: .error, broker: "kafka", detail: "consumer of '\(queue)': \(RdKafkaError.name(m.err)) \(text)"))
                }
            }
            return
        }
        var headers: [(name: String, value: String)] = []
        var list: OpaquePointer?
        if rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                if let name {
                    let text = value.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: size), as: UTF8.self) } ?? ""
                    headers.append((String(cString: name), text))
                }
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &timestampType)
        guard let name = names.jadugarName(of: topic, spec: spec) else {
            batch.append(Fetched(position: RecordPosition(partition: partition, offset: m.offset), decoded: nil))
            return
        }
        let record = FetchedRecord(
            topic: name, partition: m.partition, offset: m.offset,
            timestamp: timestamp >= 0 ? timestamp : nil,
            key: m.key.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: m.key_len)) },
            payload: m.payload.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? [],
            headers: headers
        )
        let decoded = KafkaEnvelope.decode(record)
        batch.append(Fetched(position: RecordPosition(partition: partition, offset: m.offset), decoded: names.accepts(decoded, topic: name, spec: spec) ? decoded : nil))
    }

    /// Hands a polled batch to the state in one critical section.
    private func apply(_ batch: inout [Fetched], _ ends: inout [(TopicPartition, Int64)]) {
        guard !batch.isEmpty || !ends.isEmpty else { return }
        let now = ContinuousClock.now
        let nowDate = Date()
        let nowMilliseconds = KafkaEnvelope.milliseconds(nowDate)
        var expired: [(ConsumerRecord, UInt64)] = []
        let resumes = state.withLock { state -> [ConsumerState.Resume] in
            for item in batch {
                let partition = item.position.partition
                guard state.partitions[partition] != nil else { continue }
                state.partitions[partition]!.fetched(item.position.offset)
                guard let decoded = item.decoded else {
                    state.partitions[partition]!.markDone(item.position.offset)
                    continue
                }
                let known = state.knownAttempts.isEmpty ? nil : state.knownAttempts.removeValue(forKey: item.position)
                var record = ConsumerRecord(
                    position: item.position, message: decoded.message, exchange: decoded.exchange,
                    attempts: max(known ?? 0, decoded.retryAttempts), sequence: state.nextSequence
                )
                state.nextSequence += 1
                if let retryAt = decoded.retryAt, retryAt > nowMilliseconds {
                    record.due = now + .milliseconds(retryAt - nowMilliseconds)
                    state.delayed.append(record)
                    continue
                }
                if var purge = state.purge, let last = purge.until[partition], item.position.offset <= last {
                    state.partitions[partition]!.markDone(item.position.offset)
                    purge.count += 1
                    state.purge = purge
                    continue
                }
                if let expiration = decoded.message.metadata.expiration, decoded.message.timestamp.addingTimeInterval(Double(expiration.wholeMilliseconds) / 1000) < nowDate {
                    let tag = state.nextTag
                    state.nextTag += 1
                    state.settling[tag] = record
                    expired.append((record, tag))
                    continue
                }
                state.ready.append(record)
            }
            for (partition, offset) in ends { state.partitions[partition]?.reachedEnd(at: offset) }
            return state.dispatch(queue: queue, settler: self)
        }
        batch.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        Self.resume(resumes)
        for (record, tag) in expired { expire(record, tag: tag) }
    }

    /// Moves retried records whose time has come to the ready queue.
    private func releaseDue() {
        let resumes = state.withLock { state -> [ConsumerState.Resume] in
            guard !state.delayed.isEmpty else { return [] }
            let now = ContinuousClock.now
            let due = state.delayed.filter { ($0.due ?? now) <= now }.sorted { ($0.due ?? now) < ($1.due ?? now) }
            guard !due.isEmpty else { return [] }
            state.delayed.removeAll { ($0.due ?? now) <= now }
            for var record in due {
                record.due = nil
                state.ready.append(record)
            }
            return state.dispatch(queue: queue, settler: self)
        }
        Self.resume(resumes)
    }

    private func pollTimeout() -> Duration {
        state.withLock { state in
            var timeout = Self.pollInterval
            if state.purge != nil { timeout = .milliseconds(10) }
            let now = ContinuousClock.now
            for record in state.delayed {
                if let due = record.due { timeout = min(timeout, max(.zero, due - now)) }
            }
            return timeout
        }
    }

    /// How long the getter of `get(queue:)` stays without a call before it is dropped (its
    /// unsettled deliveries go back to the queue).
    private static let getterIdle = Duration.seconds(30)

    /// Drops an unused getter; then whether the consumer has been without streams for its linger.
    private func lingerExpired() -> Bool {
        let (expired, resumes) = state.withLock { state -> (Bool, [ConsumerState.Resume]) in
            let now = ContinuousClock.now
            var resumes: [ConsumerState.Resume] = []
            if let getter = state.getter, state.sources.count == 1, now - state.getterUsed >= Self.getterIdle {
                resumes = state.removeSource(getter, now: now)
                resumes += state.dispatch(queue: queue, settler: self)
            }
            guard state.phase == .running, !state.hasStreams, !state.joining, let since = state.idleSince else { return (false, resumes) }
            return (now - since >= environment.configuration.consumerLinger, resumes)
        }
        Self.resume(resumes)
        return expired
    }

    // MARK: Committing and flow control

    /// Commits each partition's contiguous done prefix (private consumers only advance their trackers).
    func commit(_ rk: OpaquePointer, sync: Bool, only: Set<TopicPartition>? = nil) {
        let (points, isPrivate) = state.withLock { ($0.commitPoints(only: only), $0.spec.isPrivate) }
        guard !points.isEmpty, !isPrivate, let list = rd_kafka_topic_partition_list_new(Int32(points.count)) else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in points {
            rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)?.pointee.offset = offset
        }
        let err = rd_kafka_commit(rk, list, sync ? 0 : 1)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            commitFailed(err, "")
        }
    }

    func commitFailed(_ err: rd_kafka_resp_err_t, _ detail: String) {
        environment.logger.warning("kafka offset commit failed", metadata: ["jadugar.queue": "\(queue)", "jadugar.error": "\(RdKafkaError.name(err)) \(detail)"])
        environment.events.emit(BrokerEvent(kind: .error, broker: "kafka", detail: "offset commit of group '\(queue)' failed: \(RdKafkaError.name(err)) \(detail); the messages will be redelivered"))
    }

    /// When the local buffer holds ``KafkaConfiguration/maxBufferedMessages``, waits (up to 200 ms)
    /// for the streams to drain it to half; returns whether it is still full.
    ///
    /// Partition pause/resume is not used: librdkafka discards what it prefetched for a paused
    /// partition and fetches it again on resume, which cost ten times the throughput on the test broker.
    private func waitWhileFull() -> Bool {
        let limit = environment.configuration.maxBufferedMessages
        let full = state.withLock { state -> Bool in
            state.waitingForSpace = state.ready.count + state.delayed.count >= limit && state.purge == nil && state.phase == .running
            return state.waitingForSpace
        }
        guard full else { return false }
        _ = space.wait(timeout: .now() + .milliseconds(200))
        return state.withLock { state in
            let stillFull = state.ready.count + state.delayed.count >= limit && state.purge == nil && state.phase == .running
            state.waitingForSpace = false
            return stillFull
        }
    }

    /// Completes a purge once every purged partition was fetched past its last record.
    private func finishPurge(_ rk: OpaquePointer) {
        let finished = state.withLock { state -> (CheckedContinuation<Int, Never>, Int)? in
            guard let purge = state.purge else { return nil }
            let complete = purge.until.allSatisfy { partition, last in
                guard let tracker = state.partitions[partition] else { return true }
                return (tracker.position ?? 0) > last
            }
            guard complete || ContinuousClock.now >= purge.deadline else { return nil }
            state.purge = nil
            return (purge.continuation, purge.count)
        }
        guard let (continuation, count) = finished else { return }
        commit(rk, sync: true)
        continuation.resume(returning: count)
    }

    // MARK: Failing and closing

    /// The consumer cannot go on: streams get the error.
    func fail(_ error: MessagingError) {
        environment.logger.error("kafka consumer failed", metadata: ["jadugar.queue": "\(queue)", "jadugar.error": "\(error)"])
        environment.events.emit(BrokerEvent(kind: .error, broker: "kafka", detail: "consumer of '\(queue)' failed: \(error)"))
        let resumes = state.withLock { state -> [ConsumerState.Resume] in
            state.failure = error
            return state.endAllWaiters()
        }
        Self.resume(resumes)
    }

    /// Commits what is done, leaves the group and releases the handle's queue; unsettled records
    /// stay uncommitted, so Kafka hands them to the next member.
    private func close(_ rk: OpaquePointer) {
        commit(rk, sync: true)
        let (resumes, attempts, purge) = state.withLock { state in
            let attempts = state.unfinishedAttempts()
            state.revoke(Set(state.partitions.keys))
            state.ready.removeAll()
            state.delayed.removeAll()
            state.phase = .closed
            let purge = state.purge
            state.purge = nil
            return (state.endAllWaiters(), attempts, purge)
        }
        environment.topology.rememberAttempts(queue: queue, attempts)
        Self.resume(resumes)
        purge?.continuation.resume(returning: purge?.count ?? 0)
        releaseWakeQueue()
        rd_kafka_consumer_close(rk)
        environment.closed(self)
        let waiters = state.withLock { state in
            defer { state.closeWaiters.removeAll() }
            return state.closeWaiters
        }
        for waiter in waiters { waiter.resume() }
        environment.logger.debug("kafka consumer closed", metadata: ["jadugar.queue": "\(queue)"])
    }
}

/// What the poll thread remembers per topic so that routing a record costs a dictionary lookup:
/// the topic's name (from librdkafka's topic handle), its Jadugar name, and whether the queue
/// delivers plain default-exchange records from it. Reset when the bindings change.
struct TopicNames {
    private var byHandle: [OpaquePointer: String] = [:]
    private var jadugar: [String: String?] = [:]
    private var plainAccepted: [String: Bool] = [:]

    /// The topic of a librdkafka topic handle; checked against librdkafka's name, because a freed
    /// handle's address can be reused for another topic.
    mutating func name(of handle: OpaquePointer) -> String {
        let current = rd_kafka_topic_name(handle)!
        if let known = byHandle[handle], known.withCString({ strcmp($0, current) == 0 }) { return known }
        let name = String(cString: current)
        byHandle[handle] = name
        return name
    }

    mutating func jadugarName(of topic: String, spec: ConsumerSpec) -> String? {
        if let known = jadugar[topic] { return known }
        let name = spec.jadugarTopic(topic)
        jadugar[topic] = name
        return name
    }

    /// ``ConsumerSpec/accepts(_:topic:)``, cached for the common case: a record of the default
    /// exchange, not a retry, on a durable queue (private queues also filter by timestamp).
    mutating func accepts(_ record: DecodedRecord, topic: String, spec: ConsumerSpec) -> Bool {
        guard record.exchange == nil, record.retryFor == nil, !spec.isPrivate else { return spec.accepts(record, topic: topic) }
        if let known = plainAccepted[topic] { return known }
        let accepted = spec.accepts(record, topic: topic)
        plainAccepted[topic] = accepted
        return accepted
    }
}

// MARK: librdkafka callbacks (called on the poll thread)

func kafkaRebalance(_ rk: OpaquePointer?, _ err: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let rk, let opaque else { return }
    guard let consumer = Unmanaged<CallbackBox>.fromOpaque(opaque).takeUnretainedValue().consumer else {
        rd_kafka_assign(rk, nil)
        return
    }
    consumer.rebalance(rk, err, list)
}

func kafkaOffsetCommit(_ rk: OpaquePointer?, _ err: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let opaque, let consumer = Unmanaged<CallbackBox>.fromOpaque(opaque).takeUnretainedValue().consumer else { return }
    // _NO_OFFSET: nothing to commit, not a failure.
    if err != RD_KAFKA_RESP_ERR_NO_ERROR, err != RD_KAFKA_RESP_ERR__NO_OFFSET {
        consumer.commitFailed(err, "")
    }
}

func kafkaConsumerError(_ rk: OpaquePointer?, _ err: Int32, _ reason: UnsafePointer<CChar>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let opaque, let consumer = Unmanaged<CallbackBox>.fromOpaque(opaque).takeUnretainedValue().consumer else { return }
    let code = rd_kafka_resp_err_t(rawValue: err)
    let text = reason.map { String(cString: $0) } ?? ""
    switch code {
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        consumer.environment.events.emit(BrokerEvent(kind: .disconnected, broker: "kafka", detail: "consumer of '\(consumer.queue)': \(text)"))
    case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__RESOLVE:
        consumer.environment.events.emit(BrokerEvent(kind: .reconnecting, broker: "kafka", detail: "consumer of '\(consumer.queue)': \(text)"))
    case RD_KAFKA_RESP_ERR__FATAL:
        consumer.fail(RdKafkaError.make(code, "the consumer of queue '\(consumer.queue)' hit a fatal error", detail: text, retriable: false))
    default:
        consumer.environment.events.emit(BrokerEvent(kind: .error, broker: "kafka", detail: "consumer of '\(consumer.queue)': \(RdKafkaError.name(code)) \(text)"))
    }
}
