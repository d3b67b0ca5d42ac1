import Dispatch
import Foundation
import Jadugar
import Synchronization

/// One consumer of a queue in the queue's consumer group: the source of its deliveries and the
/// settler of them.
///
/// A streaming consumer has a reader thread of its own with its own connection. The thread
/// fetches through the adapter's function library (requeued entries first, then new ones, highest priority
/// first, expired ones dead-lettered on the way), and when there is nothing, blocks in
/// `XREADGROUP ... BLOCK` for at most ``RedisBroker/Configuration/blockTimeout``. It reads only
/// while a `next()` call waits (up to `prefetch` entries at a time, the rest buffered), and never
/// holds more than `prefetch` unsettled deliveries. A getter (for ``RedisBroker/get(queue:)``) has no
/// thread: it fetches one entry at a time through the broker's control connection.
///
/// Settling goes through the broker's control connection and checks, inside Redis, that this
/// consumer still holds the entry (a consumer that stalled past the visibility timeout lost it).
/// Closing moves every entry the consumer holds to the head of the queue for others, then removes
/// the consumer from the group. When the reader's connection breaks, the consumer reconnects with
/// backoff and gives back what it held, so those messages are redelivered marked as such.
final class RedisConsumer: DeliverySource, DeliverySettler {
    enum Mode: Sendable { case stream, getter }

    struct Held: Sendable {
        var stream: String
        var level: Int
        var entryID: String
        var epoch: UInt64
    }

    struct RawEntry {
        var stream: String
        var entryID: String
        var count: Int
        var fields: [RedisValue]
    }

    private struct State {
        var buffer = FIFO<Delivery>()
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Delivery?, any Error>)] = []
        var nextWaiterID: UInt64 = 0
        var held: [UInt64: Held] = [:]
        var nextTag: UInt64 = 1
        /// Bumped when the reader reconnects: deliveries of an older epoch were given back.
        var epoch: UInt64 = 0
        var closing = false
        var finished = false
        /// Why the consumer ended on its own (Redis refused it for good); `next()` throws it.
        var failure: MessagingError?
        var started = false
        var blocked = false
        var blockGeneration: UInt64 = 0
        var wakeups = 0
        var clientID: Int64?
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
        /// Settlements that failed on a lost connection; the reader gives these entries back.
        var orphans: [Held] = []
        var maxPriority = 0
        /// Settlements on their way to Redis; a close gives entries back only after they land.
        var settling = 0
        /// The consumer is giving its entries back; settlements from now on fail.
        var releasing = false
    }

    let queue: String
    let name: String
    let prefetch: Int
    let autoAck: Bool
    let mode: Mode
    let session: RedisSession
    private let state = Mutex(State())
    /// Wakes the reader when credit frees up or the consumer closes.
    private let signal = DispatchSemaphore(value: 0)

    init(queue: String, name: String, prefetch: Int, autoAck: Bool, mode: Mode, maxPriority: Int, session: RedisSession) {
        self.queue = queue
        self.name = name
        self.prefetch = prefetch
        self.autoAck = autoAck
        self.mode = mode
        self.session = session
        state.withLock { $0.maxPriority = maxPriority }
    }

    private var keys: RedisKeys { session.keys }
    private var link: RedisLink { session.link }

    // MARK: Lifecycle

    /// Starts the reader thread of a streaming consumer.
    func start() {
        precondition(mode == .stream, "only a streaming consumer has a reader thread")
        let start = state.withLock { state -> Bool in
            defer { state.started = true }
            return !state.started
        }
        guard start else { return }
        session.add(self)
        let thread = Thread { [self] in self.readLoop() }
        thread.name = "jdg-redis-sub"
        thread.start()
    }

    func close() async {
        let (finished, unblock, generation) = state.withLock { state -> (Bool, Int64?, UInt64) in
            if state.finished { return (true, nil, 0) }
            state.closing = true
            return (false, state.blocked ? state.clientID : nil, state.blockGeneration)
        }
        if finished { return }
        signal.signal()
        switch mode {
        case .getter:
            await beginRelease()
            _ = try? await session.control.run(session.script("release", [queue, name, "1", "0"]))
            finish()
            await session.wake(queue: queue)
            return
        case .stream:
            if let unblock {
                for _ in 0..<5 {
                    let reply = try? await session.control.run(RedisCommand("CLIENT", "UNBLOCK", String(unblock)))
                    if reply?.int == 1 || !isBlocked(generation: generation) { break }
                    try? await Task.sleep(for: .milliseconds(2))
                }
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let done = state.withLock { state -> Bool in
                    if state.finished { return true }
                    state.closeWaiters.append(continuation)
                    return false
                }
                if done { continuation.resume() }
            }
        }
    }

    /// Waits (up to the command timeout) for settlements already on their way, then makes later
    /// ones fail, so that an acknowledgement racing a close is not undone by the close.
    private func beginRelease() async {
        let deadline = ContinuousClock.now + session.configuration.commandTimeout
        while state.withLock({ $0.settling > 0 }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(1))
        }
        state.withLock { $0.releasing = true }
    }

    /// ``beginRelease()`` for the reader thread.
    private func beginReleaseBlocking() {
        let deadline = ContinuousClock.now + session.configuration.commandTimeout
        while state.withLock({ $0.settling > 0 }), ContinuousClock.now < deadline {
            pause(.milliseconds(5))
        }
        state.withLock { $0.releasing = true }
    }

    /// Ends the consumer: pending `next()` calls return `nil` (or throw `failure`), `close()` calls return.
    private func finish(failure: MessagingError? = nil) {
        let (waiters, closers, failure) = state.withLock { state in
            if let failure, state.failure == nil, !state.closing { state.failure = failure }
            state.finished = true
            state.closing = true
            state.releasing = true
            state.buffer.removeAll()
            defer {
                state.waiters.removeAll()
                state.closeWaiters.removeAll()
            }
            return (state.waiters.map(\.continuation), state.closeWaiters, state.failure)
        }
        session.remove(self)
        for waiter in waiters {
            if let failure { waiter.resume(throwing: failure) } else { waiter.resume(returning: nil) }
        }
        for closer in closers { closer.resume() }
    }

    var isFinished: Bool { state.withLock { $0.finished } }

    // MARK: Receiving

    func next() async throws -> Delivery? {
        let waiterID = state.withLock { state -> UInt64 in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let delivery = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Delivery?, any Error>) in
                let ready: Delivery?? = state.withLock { state in
                    if let delivery = state.buffer.popFirst() { return .some(delivery) }
                    if state.closing || state.finished || Task.isCancelled { return .some(nil) }
                    state.waiters.append((waiterID, continuation))
                    return .none
                }
                if case .some(nil) = ready, let failure = state.withLock({ $0.failure }) {
                    continuation.resume(throwing: failure)
                } else if let ready {
                    continuation.resume(returning: ready)
                } else {
                    signal.signal()
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Delivery?, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(returning: nil)
        }
        if autoAck { signal.signal() }
        return delivery
    }

    /// Takes one entry for a getter, without waiting.
    func getOne() async throws -> Delivery? {
        if state.withLock({ $0.closing }) { return nil }
        let reply = try await session.control.run(session.script("fetch", [queue, name, "1", "0"]))
        let entries = Self.parseFetch(reply)
        return register(entries).first
    }

    /// Assigns tags, records what is held and builds the deliveries.
    private func register(_ entries: [RawEntry]) -> [Delivery] {
        guard !entries.isEmpty else { return [] }
        return state.withLock { state in
            entries.map { entry in
                let decoded = RedisEnvelope.decode(fields: entry.fields, entryID: entry.entryID, queue: queue)
                let tag = state.nextTag
                state.nextTag += 1
                if !autoAck {
                    state.held[tag] = Held(stream: entry.stream, level: level(of: entry.stream, state.maxPriority), entryID: entry.entryID, epoch: state.epoch)
                }
                return Delivery(message: decoded.message, deliveryCount: decoded.redeliveries + entry.count, queue: queue, tag: tag, settler: self)
            }
        }
    }

    private func level(of stream: String, _ maxPriority: Int) -> Int {
        if stream == keys.stream(queue, level: 0) { return 0 }
        for level in 1...max(1, maxPriority) where keys.stream(queue, level: level) == stream { return level }
        return 0
    }

    private func deliver(_ entries: [RawEntry]) {
        let deliveries = register(entries)
        var resumes: [(CheckedContinuation<Delivery?, any Error>, Delivery)] = []
        state.withLock { state in
            for delivery in deliveries {
                if !state.waiters.isEmpty {
                    resumes.append((state.waiters.removeFirst().continuation, delivery))
                } else {
                    state.buffer.append(delivery)
                }
            }
        }
        for (continuation, delivery) in resumes { continuation.resume(returning: delivery) }
    }

    // MARK: Settling

    func settle(_ delivery: Delivery, _ outcome: SettleOutcome) async throws {
        if autoAck {
            if outcome == .ack { return }
            throw MessagingError(.brokerError, "delivery \(delivery.tag) on queue '\(queue)' was acknowledged automatically (autoAck); it cannot be requeued or rejected", brokerCode: "NOT_OUTSTANDING")
        }
        // A settlement is late when the consumer gave its entries back since the delivery (it
        // closed, or reconnected): it still succeeds if the entry waits unclaimed in the queue.
        let claim = state.withLock { state -> (held: Held, late: Bool)? in
            guard let held = state.held.removeValue(forKey: delivery.tag) else { return nil }
            let late = held.epoch != state.epoch || state.releasing
            if !late { state.settling += 1 }
            return (held, late)
        }
        guard let (held, late) = claim else { throw notOutstanding(delivery.tag) }
        defer {
            if !late { state.withLock { $0.settling -= 1 } }
            signal.signal()
        }
        let requeueSet = keys.requeue(queue, level: held.level)
        let lateFlag = late ? "1" : "0"
        let command: RedisCommand
        var wakeAfter = false
        switch outcome {
        case .ack:
            command = session.script("ack", [held.stream, requeueSet, held.entryID, name, lateFlag])
        case .requeue(let delay):
            if let delay, delay > .zero {
                command = session.script("delay", [queue, held.stream, requeueSet, held.entryID, name, String(delay.milliseconds), String(delivery.deliveryCount), lateFlag])
            } else {
                command = session.script("requeue", [held.stream, requeueSet, held.entryID, name, lateFlag])
                wakeAfter = true
            }
        case .deadLetter(let reason, let error):
            command = session.script("reject", [queue, held.stream, requeueSet, held.entryID, name, reason, error == nil ? "0" : "1", error ?? "", String(delivery.deliveryCount), lateFlag])
        }
        let reply: RedisValue
        do {
            reply = try await session.control.run(command)
        } catch let error as MessagingError where error.code == .connectionFailed {
            // Redis may not have seen it; the reader gives the entry back once it can.
            state.withLock { $0.orphans.append(held) }
            throw error
        }
        guard reply.int != 0 else { throw notOutstanding(delivery.tag) }
        switch outcome {
        case .requeue(let delay?) where delay > .zero:
            session.janitor.wake(after: delay)
        case .deadLetter(let reason, _):
            session.link.events.emit(BrokerEvent(
                kind: reply.int == 2 ? .deadLettered : .dropped, broker: "redis",
                detail: "message \(delivery.message.id) from '\(queue)': \(reason)\(reply.int == 2 ? "" : "; the queue has no dead-letter target")"
            ))
        default:
            break
        }
        if wakeAfter { await session.wake(queue: queue) }
    }

    private func notOutstanding(_ tag: UInt64) -> MessagingError {
        MessagingError(
            .brokerError,
            "delivery \(tag) on queue '\(queue)' is not outstanding: it was settled already, or its consumer closed or lost its connection and the message was given back for redelivery, or it stayed unsettled past the visibility timeout and another consumer reclaimed it",
            brokerCode: "NOT_OUTSTANDING", brokerReason: "unknown delivery tag \(tag)"
        )
    }

    /// Gives back entries whose settlement failed on a lost connection.
    func giveBackOrphans(_ connection: RedisConnection) {
        let orphans = state.withLock { state in
            defer { state.orphans.removeAll() }
            return state.orphans
        }
        guard !orphans.isEmpty else { return }
        for (index, held) in orphans.enumerated() {
            let command = session.script("requeue", [held.stream, keys.requeue(queue, level: held.level), held.entryID, name, "0"])
            if (try? connection.script(command)) == nil {
                // Keep this one and the rest for the next try.
                state.withLock { $0.orphans.append(contentsOf: orphans[index...]) }
                return
            }
        }
        session.wakeNoWait(queue: queue)
    }

    // MARK: Waking

    /// Asks a blocked reader to look again; returns the connection to `CLIENT UNBLOCK` if it is
    /// blocked now, with the blocking read's generation.
    func requestWake() -> (Int64, UInt64)? {
        state.withLock { state in
            state.wakeups += 1
            guard state.blocked, let client = state.clientID else { return nil }
            return (client, state.blockGeneration)
        }
    }

    func isBlocked(generation: UInt64) -> Bool {
        state.withLock { $0.blocked && $0.blockGeneration == generation }
    }

    private func beginBlock() -> Bool {
        state.withLock { state in
            if state.closing || state.wakeups > 0 || !state.orphans.isEmpty {
                state.wakeups = 0
                return false
            }
            state.blocked = true
            state.blockGeneration += 1
            return true
        }
    }

    private func endBlock() {
        state.withLock { $0.blocked = false }
    }

    // MARK: Reader thread

    private var isClosing: Bool { state.withLock { $0.closing } }

    /// How many entries to read now: none unless a `next()` call is waiting (the memory broker's
    /// semantics: a consumer takes messages when asked, so a paused worker leaves them in the
    /// queue), and never more than `prefetch` unsettled.
    private var credit: Int {
        state.withLock { state in
            guard !state.waiters.isEmpty else { return 0 }
            if autoAck { return prefetch - state.buffer.count }
            var current = 0
            for held in state.held.values where held.epoch == state.epoch { current += 1 }
            return prefetch - current
        }
    }

    /// Sleeps until signalled or `duration` passes.
    private func pause(_ duration: Duration) {
        _ = signal.wait(timeout: .now() + .nanoseconds(Int(duration.seconds * 1e9)))
    }

    private func readLoop() {
        var connection: RedisConnection?
        var backoff = link.minimumBackoff
        var streams: [String] = []
        var giveBack = false
        var connectedOnce = false
        var gone = false
        var failure: MessagingError?
        let block = session.configuration.blockTimeout
        loop: while !isClosing {
            if connection == nil || connection?.isBroken == true {
                if connection != nil {
                    connection = nil
                    // What this consumer held is given back once it is connected again: the
                    // application's deliveries of the old connection can no longer be settled.
                    state.withLock { state in
                        state.epoch += 1
                        state.orphans.removeAll()
                        // Buffered deliveries were never handed out: they go back with the rest.
                        for delivery in state.buffer.elements { state.held.removeValue(forKey: delivery.tag) }
                        state.buffer.removeAll()
                        state.clientID = nil
                    }
                    giveBack = true
                    link.events.emit(BrokerEvent(kind: .disconnected, broker: "redis", detail: "consumer \(name) of '\(queue)' lost its connection"))
                }
                do {
                    if connectedOnce {
                        link.events.emit(BrokerEvent(kind: .reconnecting, broker: "redis", detail: "consumer \(name) of '\(queue)'"))
                    }
                    let fresh = try link.open(role: "jadugar-consumer")
                    fresh.setTimeout(block + session.configuration.commandTimeout)
                    let client = try fresh.command(RedisCommand("CLIENT", "ID")).int.map(Int64.init)
                    let registered = try scriptValue(fresh, session.script("register", [queue, name, session.clientID, "1"]))
                    let maxPriority = registered.int ?? 0
                    if giveBack {
                        _ = try scriptValue(fresh, session.script("release", [queue, name, "0", "0"]))
                        giveBack = false
                        session.wakeNoWait(queue: queue, except: self)
                    }
                    streams = keys.streams(queue, maxPriority: maxPriority)
                    state.withLock { state in
                        state.clientID = client
                        state.maxPriority = maxPriority
                    }
                    connection = fresh
                    backoff = link.minimumBackoff
                    if connectedOnce {
                        link.events.emit(BrokerEvent(kind: .connected, broker: "redis", detail: "consumer \(name) of '\(queue)' reconnected"))
                    }
                    connectedOnce = true
                } catch let error as MessagingError where error.code == .notFound || error.code == .accessDenied {
                    if error.code == .accessDenied { failure = error }
                    gone = true
                    break loop
                } catch {
                    pause(backoff)
                    backoff = min(backoff * 2, link.maximumBackoff)
                    continue
                }
            }
            guard let current = connection else { continue }
            giveBackOrphans(current)
            let credit = self.credit
            if credit <= 0 {
                pause(.seconds(1))
                continue
            }
            do {
                var entries = Self.parseFetch(try scriptValue(current, session.script("fetch", [queue, name, String(credit), autoAck ? "1" : "0"])))
                if entries.isEmpty {
                    guard beginBlock() else { continue }
                    defer { endBlock() }
                    var read = RedisCommand("XREADGROUP", "GROUP", RedisScript.group, name, "COUNT", String(credit), "BLOCK", String(block.milliseconds))
                    if autoAck { read.append("NOACK") }
                    read.append("STREAMS")
                    for stream in streams { read.append(stream) }
                    for _ in streams { read.append(">") }
                    let reply = try current.command(read)
                    if case .error(let text) = reply { throw RedisErrors.reply(text, while: "reading queue '\(queue)'") }
                    entries = Self.parseRead(reply)
                    entries = try dropExpired(entries, current)
                    if autoAck, !entries.isEmpty {
                        for (stream, group) in Dictionary(grouping: entries, by: \.stream) {
                            _ = try current.command(RedisCommand(["XDEL", stream] + group.map(\.entryID)))
                        }
                    }
                }
                if !entries.isEmpty { deliver(entries) }
            } catch let error as MessagingError where error.code == .notFound {
                gone = true
                break loop
            } catch let error as MessagingError where error.code == .accessDenied {
                // Retrying cannot help (an ACL refuses this user): end the stream with Redis's words.
                link.events.emit(BrokerEvent(kind: .error, broker: "redis", detail: "consumer \(name) of '\(queue)': \(error)"))
                failure = error
                break loop
            } catch {
                if connection?.isBroken != true {
                    link.events.emit(BrokerEvent(kind: .error, broker: "redis", detail: "consumer \(name) of '\(queue)': \(error)"))
                    pause(.milliseconds(100))
                }
            }
        }
        if let connection, !connection.isBroken, !gone {
            beginReleaseBlocking()
            giveBackOrphans(connection)
            _ = try? scriptValue(connection, session.script("release", [queue, name, "1", "1"]))
        }
        finish(failure: failure)
        if !gone { session.wakeNoWait(queue: queue) }
    }

    private func scriptValue(_ connection: RedisConnection, _ command: RedisCommand) throws -> RedisValue {
        let reply = try connection.script(command)
        if case .error(let text) = reply { throw RedisErrors.reply(text, while: "consumer \(name) of queue '\(queue)'") }
        return reply
    }

    /// Dead-letters entries of a blocking read whose deadline passed; returns the others.
    private func dropExpired(_ entries: [RawEntry], _ connection: RedisConnection) throws -> [RawEntry] {
        let now = RedisEnvelope.milliseconds(Date())
        var candidates: [RawEntry] = []
        for entry in entries {
            if let deadline = RedisEnvelope.deadline(in: entry.fields), deadline <= now { candidates.append(entry) }
        }
        guard !candidates.isEmpty else { return entries }
        var command = session.script("expire", [queue, name])
        for entry in candidates {
            command.append(entry.stream)
            command.append(entry.entryID)
        }
        let expired = Set(try scriptValue(connection, command).elements.compactMap(\.text))
        return entries.filter { !expired.contains($0.entryID) }
    }

    /// `[[stream, id, count, [fields]], ...]` from the library's `fetch`.
    static func parseFetch(_ reply: RedisValue) -> [RawEntry] {
        reply.elements.compactMap { item in
            let parts = item.elements
            guard parts.count == 4, let stream = parts[0].text, let id = parts[1].text else { return nil }
            return RawEntry(stream: stream, entryID: id, count: parts[2].int ?? 1, fields: parts[3].elements)
        }
    }

    /// `[[stream, [[id, [fields]], ...]], ...]` from `XREADGROUP`.
    static func parseRead(_ reply: RedisValue) -> [RawEntry] {
        var out: [RawEntry] = []
        for stream in reply.elements {
            let parts = stream.elements
            guard parts.count == 2, let key = parts[0].text else { continue }
            for entry in parts[1].elements {
                let pair = entry.elements
                guard pair.count == 2, let id = pair[0].text else { continue }
                out.append(RawEntry(stream: key, entryID: id, count: 1, fields: pair[1].elements))
            }
        }
        return out
    }
}

extension RedisEnvelope {
    /// The `deadline` field of raw entry fields, without decoding the rest.
    static func deadline(in fields: [RedisValue]) -> Int64? {
        var index = 0
        while index + 1 < fields.count {
            if fields[index].bytes == Array(Field.deadline.utf8) { return fields[index + 1].text.flatMap { Int64($0) } }
            index += 2
        }
        return nil
    }
}
