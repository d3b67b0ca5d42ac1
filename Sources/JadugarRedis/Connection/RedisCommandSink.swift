import Foundation
import Jadugar
import JadugarPublisher
import Logging
import Synchronization

/// One command submitted to a ``RedisExecutor``, with where to put its reply.
struct RedisRequest: Sendable {
    var command: RedisCommand
    /// `nil` when nobody reads the reply (a publish: success or the error is all that matters).
    var reply: RedisReplySlot?
}

/// Carries a reply from the I/O thread to the task that awaits it. The batcher resumes the task
/// only after the sink returns, so the value is always stored before it is read.
final class RedisReplySlot: Sendable {
    private let value = Mutex<RedisValue?>(nil)

    func store(_ reply: RedisValue) {
        value.withLock { $0 = reply }
    }

    func take() -> RedisValue {
        value.withLock { $0 ?? .null }
    }
}

/// What the sinks, readers and the janitor of one broker share: where Redis is, the timeouts,
/// and where to report connection changes.
struct RedisLink: Sendable {
    var endpoint: RedisEndpoint
    var connectTimeout: Duration
    var commandTimeout: Duration
    var minimumBackoff: Duration
    var maximumBackoff: Duration
    var events: EventBroadcaster
    var logger: Logger

    func open(role: String) throws -> RedisConnection {
        try RedisConnection.open(endpoint, role: role, connectTimeout: connectTimeout, commandTimeout: commandTimeout)
    }
}

/// Writes batches of commands to Redis as pipelines: `redisAppendCommandArgv` for each, then
/// `redisGetReply` for each. Runs only on its batcher's I/O thread, which owns the connection.
///
/// When the connection breaks, the commands whose replies did not come back fail with
/// ``MessagingError/Code/connectionFailed`` (retriable: Redis may or may not have run them), and
/// the next batch reconnects, waiting out an exponential backoff first. When Redis does not know
/// the adapter's function library (`FUNCTION FLUSH`), the sink loads it and sends those commands again.
struct RedisCommandSink: BatchSink {
    typealias Item = RedisRequest

    private var link: RedisReconnector

    init(link: RedisLink, role: String) {
        self.link = RedisReconnector(link: link, role: role)
    }

    mutating func write(_ batch: inout Batch<RedisRequest>) throws {
        let connection = try link.connected()
        do {
            for index in 0..<batch.count { try connection.append(batch[index].command) }
        } catch {
            link.drop(error)
            throw error
        }
        var reload: [Int] = []
        for index in 0..<batch.count {
            let reply: RedisValue
            do {
                reply = try connection.readReply()
            } catch {
                link.drop(error)
                for rest in index..<batch.count where !batch.isResolved(at: rest) { batch.fail(at: rest, with: error) }
                for retry in reload where !batch.isResolved(at: retry) { batch.fail(at: retry, with: error) }
                return
            }
            if case .error(let text) = reply, RedisScript.isMissing(text) {
                reload.append(index)
                continue
            }
            settle(&batch, at: index, reply)
        }
        guard !reload.isEmpty else { return }
        do {
            try connection.loadScript()
            for index in reload { try connection.append(batch[index].command) }
            for index in reload { settle(&batch, at: index, try connection.readReply()) }
        } catch {
            link.drop(error)
            for index in reload where !batch.isResolved(at: index) { batch.fail(at: index, with: error) }
        }
    }

    private func settle(_ batch: inout Batch<RedisRequest>, at index: Int, _ reply: RedisValue) {
        if case .error(let text) = reply {
            batch.fail(at: index, with: RedisErrors.reply(text, while: Self.describe(batch[index].command)))
        } else {
            batch[index].reply?.store(reply)
        }
    }

    static func describe(_ command: RedisCommand) -> String {
        let parts = command.summary.split(separator: " ")
        if parts.first == "FCALL" { return "Redis (\(parts.count > 3 ? String(parts[3]) : "function"))" }
        return "Redis \(parts.first.map(String.init) ?? "")"
    }

    mutating func close() {
        link.close()
    }
}

/// The connection of a sink, reopened after a failure once an exponential backoff has passed, with
/// the connection events reported. Used only on the sink's I/O thread.
struct RedisReconnector {
    let link: RedisLink
    let role: String
    private var connection: RedisConnection?
    private var backoff: Duration
    private var lastFailure: ContinuousClock.Instant?
    private var wasConnected = false

    init(link: RedisLink, role: String) {
        self.link = link
        self.role = role
        self.backoff = link.minimumBackoff
    }

    /// The connection, opened (after the backoff) if there is none.
    mutating func connected() throws -> RedisConnection {
        if let connection, !connection.isBroken { return connection }
        if let lastFailure {
            let wait = backoff - (ContinuousClock.now - lastFailure)
            if wait > .zero { Thread.sleep(forTimeInterval: wait.seconds) }
        }
        if wasConnected {
            link.events.emit(BrokerEvent(kind: .reconnecting, broker: "redis", detail: "\(role) connection to \(link.endpoint.address)"))
        }
        do {
            let connection = try link.open(role: role)
            self.connection = connection
            lastFailure = nil
            backoff = link.minimumBackoff
            if wasConnected {
                link.events.emit(BrokerEvent(kind: .connected, broker: "redis", detail: "\(role) connection to \(link.endpoint.address) restored"))
            }
            wasConnected = true
            return connection
        } catch {
            lastFailure = .now
            backoff = min(backoff * 2, link.maximumBackoff)
            throw error
        }
    }

    /// Forgets a connection that failed.
    mutating func drop(_ error: any Error) {
        guard connection != nil else { return }
        connection = nil
        lastFailure = .now
        link.logger.warning("redis connection lost", metadata: [RedisLogKey.broker: "redis", RedisLogKey.role: "\(role)", RedisLogKey.error: "\(error)"])
        link.events.emit(BrokerEvent(kind: .disconnected, broker: "redis", detail: "\(role) connection to \(link.endpoint.address): \(error)"))
    }

    mutating func close() {
        connection = nil
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// Whole milliseconds, at least 1 for any positive duration.
    var milliseconds: Int {
        Int(RedisEnvelope.milliseconds(self))
    }
}
