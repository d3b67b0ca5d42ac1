import Foundation
import Jadugar
import Logging

/// The timer thread of one connected broker, with its own connection. It
///
/// - promotes delayed retries whose time has come back into their queues and dead-letters unread
///   messages whose expiration passed (the library's `maintain`), at the next due time or every
///   ``RedisBroker/Configuration/maintenanceInterval``, whichever is sooner;
/// - every third of the visibility timeout, restarts the idle clock of the entries its local
///   consumers hold (`touch`) and refreshes this client's liveness key;
/// - every half visibility timeout, requeues entries that dead consumers of its queues left
///   pending longer than the visibility timeout (`reclaim`), and deletes exclusive queues whose
///   owning client is gone (`gc`).
///
/// Every client runs one, so the work goes on as long as any client of the key space is alive;
/// the library makes concurrent runs harmless.
///
/// `@unchecked Sendable`: the mutable state (`stopped`, `wakeAt`, `finished`, `stopWaiters`) is
/// only read or written with `condition` locked; the connection lives on the thread's stack.
final class RedisJanitor: @unchecked Sendable {
    private let link: RedisLink
    private let configuration: RedisBroker.Configuration
    private let keys: RedisKeys
    private let clientID: String
    private let condition = NSCondition()
    private var stopped = false
    private var finished = false
    private var wakeAt: ContinuousClock.Instant?
    private var stopWaiters: [CheckedContinuation<Void, Never>] = []
    /// The session's consumers; set once before ``start(session:)``.
    private weak var session: RedisSession?

    init(link: RedisLink, configuration: RedisBroker.Configuration, keys: RedisKeys, clientID: String) {
        self.link = link
        self.configuration = configuration
        self.keys = keys
        self.clientID = clientID
    }

    func start(session: RedisSession) {
        condition.lock()
        self.session = session
        condition.unlock()
        let thread = Thread { [self] in self.run() }
        thread.name = "jdg-redis-timer"
        thread.start()
    }

    /// Asks for a maintenance pass after `delay` (a delayed retry is due then).
    func wake(after delay: Duration) {
        let at = ContinuousClock.now + delay
        condition.lock()
        if wakeAt == nil || at < wakeAt! { wakeAt = at }
        condition.signal()
        condition.unlock()
    }

    /// Stops the thread and waits for it.
    func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            condition.lock()
            stopped = true
            if finished {
                condition.unlock()
                continuation.resume()
                return
            }
            stopWaiters.append(continuation)
            condition.signal()
            condition.unlock()
        }
    }

    private func script(_ operation: String, _ arguments: [String]) -> RedisCommand {
        var command = RedisScript.command(operation, prefix: keys.prefix, trim: configuration.streamMaxLength)
        for argument in arguments { command.append(argument) }
        return command
    }

    private var visibility: Duration { configuration.visibilityTimeout }

    private func run() {
        let clock = ContinuousClock()
        var connection: RedisConnection?
        var backoff = link.minimumBackoff
        var nextMaintain = clock.now
        var nextTouch = clock.now + visibility / 3
        var nextReclaim = clock.now + visibility / 2
        condition.lock()
        while !stopped {
            condition.unlock()
            var sleepUntil = clock.now + configuration.maintenanceInterval
            do {
                let current: RedisConnection
                if let existing = connection, !existing.isBroken {
                    current = existing
                } else {
                    current = try link.open(role: "jadugar-timer")
                    connection = current
                    backoff = link.minimumBackoff
                }
                let now = clock.now
                let due = takeWake(now: now)
                if now >= nextMaintain || due {
                    let reply = try current.script(script("maintain", []))
                    if case .error(let text) = reply { throw RedisErrors.reply(text, while: "timer (maintain)") }
                    var next = configuration.maintenanceInterval
                    for element in reply.elements {
                        if let ms = element.int, ms >= 0 { next = min(next, .milliseconds(max(ms, 1))) }
                    }
                    nextMaintain = now + next
                }
                if now >= nextTouch {
                    try touch(current)
                    nextTouch = now + max(visibility / 3, .milliseconds(50))
                }
                if now >= nextReclaim {
                    try reclaim(current)
                    nextReclaim = now + max(visibility / 2, .milliseconds(50))
                }
                sleepUntil = min(nextMaintain, nextTouch, nextReclaim)
            } catch {
                if connection?.isBroken == true { connection = nil }
                if connection == nil {
                    sleepUntil = clock.now + backoff
                    backoff = min(backoff * 2, link.maximumBackoff)
                } else {
                    link.events.emit(BrokerEvent(kind: .error, broker: "redis", detail: "timer: \(error)"))
                }
            }
            condition.lock()
            while !stopped {
                let now = clock.now
                if let wakeAt, wakeAt <= now { break }
                let target = wakeAt.map { min($0, sleepUntil) } ?? sleepUntil
                if target <= now { break }
                _ = condition.wait(until: Date(timeIntervalSinceNow: (now.duration(to: target)).seconds))
            }
        }
        finished = true
        let waiters = stopWaiters
        stopWaiters.removeAll()
        condition.unlock()
        connection = nil
        for waiter in waiters { waiter.resume() }
    }

    /// Whether a requested wake-up is due; clears it.
    private func takeWake(now: ContinuousClock.Instant) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if let wakeAt, wakeAt <= now {
            self.wakeAt = nil
            return true
        }
        return false
    }

    private func touch(_ connection: RedisConnection) throws {
        let ttl = max(visibility * 3, .seconds(3))
        _ = try connection.command(RedisCommand("SET", "\(keys.prefix)client:\(clientID)", "1", "PX", String(ttl.milliseconds)))
        guard let session else { return }
        for consumer in session.consumers where !consumer.isFinished {
            _ = try connection.script(script("touch", [consumer.queue, consumer.name, consumer.mode == .stream ? "1" : "0"]))
            if consumer.mode == .getter { consumer.giveBackOrphans(connection) }
        }
    }

    private func reclaim(_ connection: RedisConnection) throws {
        guard let session else { return }
        let queues = Set(session.consumers.map(\.queue))
        for queue in queues {
            let reply = try connection.script(script("reclaim", [queue, String(visibility.milliseconds)]))
            if let count = reply.int, count > 0 {
                link.logger.notice(
                    "requeued messages that a consumer left unacknowledged past the visibility timeout",
                    metadata: [RedisLogKey.queue: "\(queue)", RedisLogKey.reclaimed: "\(count)", RedisLogKey.visibilityTimeout: "\(visibility)"]
                )
                session.wakeNoWait(queue: queue)
            }
        }
        _ = try connection.script(script("gc", []))
    }
}
