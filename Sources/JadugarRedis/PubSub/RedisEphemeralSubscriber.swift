import Dispatch
import Foundation
import Jadugar
import Synchronization

/// A `PSUBSCRIBE` on a reader thread with its own connection: at-most-once deliveries of the
/// ephemeral fan-out. The read has no timeout (pub/sub pushes); ``close()`` shuts the socket down
/// to end it. After a lost connection it resubscribes with backoff; what was published meanwhile
/// is lost, as pub/sub promises.
final class RedisEphemeralSubscriber: DeliverySource, DeliverySettler {
    private struct State {
        var buffer = FIFO<Delivery>()
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Delivery?, any Error>)] = []
        var nextWaiterID: UInt64 = 0
        var nextTag: UInt64 = 1
        var closing = false
        var finished = false
        var socket: RedisSocket?
        var subscribed: CheckedContinuation<Void, any Error>?
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let pattern: TopicPattern
    let glob: String
    let bufferLimit: Int
    let session: RedisSession
    private let onFinish: @Sendable (RedisEphemeralSubscriber) -> Void
    private let state = Mutex(State())
    private let backoffSignal = DispatchSemaphore(value: 0)

    init(pattern: TopicPattern, glob: String, bufferLimit: Int, session: RedisSession, onFinish: @escaping @Sendable (RedisEphemeralSubscriber) -> Void) {
        self.pattern = pattern
        self.glob = glob
        self.bufferLimit = bufferLimit
        self.session = session
        self.onFinish = onFinish
    }

    /// Starts the thread; returns once Redis confirmed the first subscription.
    func start() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            state.withLock { $0.subscribed = continuation }
            let thread = Thread { [self] in self.readLoop() }
            thread.name = "jdg-redis-psub"
            thread.start()
        }
    }

    func next() async throws -> Delivery? {
        let waiterID = state.withLock { state -> UInt64 in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Delivery?, any Error>) in
                let ready: Delivery?? = state.withLock { state in
                    if let delivery = state.buffer.popFirst() { return .some(delivery) }
                    if state.closing || state.finished || Task.isCancelled { return .some(nil) }
                    state.waiters.append((waiterID, continuation))
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Delivery?, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(returning: nil)
        }
    }

    func close() async {
        let socket: RedisSocket?? = state.withLock { state in
            if state.finished { return .none }
            state.closing = true
            return .some(state.socket)
        }
        guard let socket else { return }
        socket?.shutdown()
        backoffSignal.signal()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.finished { return true }
                state.closeWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    func settle(_ delivery: Delivery, _ outcome: SettleOutcome) async throws {
        guard outcome == .ack else {
            throw MessagingError(.unsupported, "ephemeral (pub/sub) deliveries are at-most-once; they cannot be requeued or dead-lettered")
        }
    }

    private var isClosing: Bool { state.withLock { $0.closing } }

    private func readLoop() {
        let link = session.link
        var backoff = link.minimumBackoff
        var everSubscribed = false
        while !isClosing {
            let connection: RedisConnection
            do {
                connection = try link.open(role: "jadugar-pubsub")
                connection.setTimeout(.zero)
                let reply = try connection.command(RedisCommand("PSUBSCRIBE", glob))
                if case .error(let text) = reply { throw RedisErrors.reply(text, while: "subscribing to \(glob)") }
            } catch {
                if !everSubscribed, let waiter = state.withLock({ state in defer { state.subscribed = nil }; return state.subscribed }) {
                    waiter.resume(throwing: error)
                    finish()
                    return
                }
                _ = backoffSignal.wait(timeout: .now() + .nanoseconds(Int(backoff.seconds * 1e9)))
                backoff = min(backoff * 2, link.maximumBackoff)
                continue
            }
            let registered = state.withLock { state -> Bool in
                if state.closing { return false }
                state.socket = connection.socket
                return true
            }
            if !registered { break }
            everSubscribed = true
            backoff = link.minimumBackoff
            if let waiter = state.withLock({ state in defer { state.subscribed = nil }; return state.subscribed }) {
                waiter.resume()
            }
            while !isClosing {
                guard let reply = try? connection.readReply() else { break }
                let parts = reply.elements
                guard parts.count == 4, parts[0].text == "pmessage", let channel = parts[2].text, let payload = parts[3].bytes else { continue }
                let topic = String(channel.dropFirst(session.keys.prefix.count + 3))
                guard pattern.matches(topic), var message = RedisEnvelope.unframe(payload, channelTopic: topic) else { continue }
                if message.topic.isEmpty { message.topic = topic }
                deliver(message, channel: channel)
            }
            state.withLock { $0.socket = nil }
            if !isClosing {
                link.events.emit(BrokerEvent(kind: .disconnected, broker: "redis", detail: "pub/sub subscription \(glob) lost its connection; messages published until it is back are lost (at-most-once)"))
            }
        }
        finish()
    }

    private func deliver(_ message: Message, channel: String) {
        var dropped = 0
        let resume: (CheckedContinuation<Delivery?, any Error>, Delivery)? = state.withLock { state in
            let delivery = Delivery(message: message, deliveryCount: 1, queue: channel, tag: state.nextTag, settler: self)
            state.nextTag += 1
            if !state.waiters.isEmpty { return (state.waiters.removeFirst().continuation, delivery) }
            state.buffer.append(delivery)
            while state.buffer.count > bufferLimit {
                state.buffer.removeFirst()
                dropped += 1
            }
            return nil
        }
        if let (continuation, delivery) = resume { continuation.resume(returning: delivery) }
        if dropped > 0 {
            session.link.events.emit(BrokerEvent(kind: .dropped, broker: "redis", detail: "\(dropped) ephemeral messages on \(channel) dropped: the subscriber's buffer of \(bufferLimit) is full"))
        }
    }

    private func finish() {
        let (waiters, closers) = state.withLock { state in
            state.finished = true
            state.closing = true
            defer {
                state.waiters.removeAll()
                state.closeWaiters.removeAll()
            }
            return (state.waiters.map(\.continuation), state.closeWaiters)
        }
        for waiter in waiters { waiter.resume(returning: nil) }
        for closer in closers { closer.resume() }
        onFinish(self)
    }
}
