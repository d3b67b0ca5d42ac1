import Foundation
import Jadugar
import JadugarPublisher
import Logging
import Synchronization

/// The Redis key names of the documented layout (see `docs/redis.md`).
struct RedisKeys: Sendable, Hashable {
    let prefix: String

    /// The stream of a queue's priority level (level 0 is the queue's only stream without priorities).
    func stream(_ queue: String, level: Int) -> String {
        level == 0 ? "\(prefix)q:\(queue)" : "\(prefix)q\(level):\(queue)"
    }

    /// The sorted set of a level's requeued entry ids.
    func requeue(_ queue: String, level: Int) -> String {
        level == 0 ? "\(prefix)rq:\(queue)" : "\(prefix)rq\(level):\(queue)"
    }

    /// The stream keys of a queue, highest priority first.
    func streams(_ queue: String, maxPriority: Int) -> [String] {
        (0...max(0, maxPriority)).reversed().map { stream(queue, level: $0) }
    }

    /// The channel of a topic for ephemeral (pub/sub) messages.
    func channel(_ topic: String) -> String { "\(prefix)ps:\(topic)" }
}

/// Everything one connected ``RedisBroker`` shares with its consumers and its janitor: the
/// executors (I/O threads) for publishing and for control commands, names, and the local
/// consumers to heartbeat and wake. Created by `connect()`, ended by `disconnect()`.
final class RedisSession: Sendable {
    let link: RedisLink
    let configuration: RedisBroker.Configuration
    let keys: RedisKeys
    /// This client's id: the owner of its exclusive queues, and part of its consumer names.
    let clientID: String
    let control: RedisExecutor
    let publisher: RedisPublisher
    let janitor: RedisJanitor
    /// Identifies the server and key space, for waking consumers of other clients in this process.
    let space: String
    private let local = Mutex<[ObjectIdentifier: RedisConsumer]>([:])
    private let consumerIDs = Atomic<UInt64>(0)

    init(link: RedisLink, configuration: RedisBroker.Configuration, clientID: String) {
        self.link = link
        self.configuration = configuration
        self.keys = RedisKeys(prefix: configuration.keyPrefix)
        self.clientID = clientID
        self.space = "\(link.endpoint.host):\(link.endpoint.port)/\(link.endpoint.database)/\(configuration.keyPrefix)"
        var control = configuration.publisher
        control.threadName = "jdg-redis-ctl"
        control.maxDelay = .zero
        control.maxBatch = min(control.maxBatch, 64)
        self.control = RedisExecutor(link: link, role: "jadugar-control", configuration: control)
        var publish = configuration.publisher
        publish.threadName = "jdg-redis-pub"
        self.publisher = RedisPublisher(link: link, prefix: configuration.keyPrefix, trim: configuration.streamMaxLength, messagesPerCall: configuration.messagesPerCall, configuration: publish)
        self.janitor = RedisJanitor(link: link, configuration: configuration, keys: keys, clientID: clientID)
    }

    /// `FCALL` of the adapter's function library with this session's prefix and trim setting.
    func script(_ operation: String, _ arguments: [String] = []) -> RedisCommand {
        var command = RedisScript.command(operation, prefix: keys.prefix, trim: configuration.streamMaxLength)
        for argument in arguments { command.append(argument) }
        return command
    }

    /// A consumer name unique in the group: `<client id>.<n>`.
    func nextConsumerName(_ kind: String) -> String {
        "\(clientID).\(kind)\(consumerIDs.wrappingAdd(1, ordering: .relaxed).newValue)"
    }

    // MARK: Local consumers

    func add(_ consumer: RedisConsumer) {
        local.withLock { $0[ObjectIdentifier(consumer)] = consumer }
        RedisLocalConsumers.shared.add(consumer, space: space)
    }

    func remove(_ consumer: RedisConsumer) {
        _ = local.withLock { $0.removeValue(forKey: ObjectIdentifier(consumer)) }
        RedisLocalConsumers.shared.remove(consumer, space: space)
    }

    var consumers: [RedisConsumer] {
        local.withLock { Array($0.values) }
    }

    /// Wakes this process's consumers of a queue that are blocked in `XREADGROUP`, so that they
    /// pick up entries that were requeued (which a blocked read does not see) at once.
    func wake(queue: String, except: RedisConsumer? = nil) async {
        for consumer in RedisLocalConsumers.shared.consumers(space: space, queue: queue) where consumer !== except {
            guard let (client, generation) = consumer.requestWake() else { continue }
            // CLIENT UNBLOCK may reach Redis just before the consumer's XREADGROUP does; retry
            // while the consumer is still in that same blocking read.
            for _ in 0..<5 {
                let reply = try? await control.run(RedisCommand("CLIENT", "UNBLOCK", String(client)))
                if reply?.int == 1 || !consumer.isBlocked(generation: generation) { break }
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
    }

    /// ``wake(queue:except:)`` for threads: one try, not awaited.
    func wakeNoWait(queue: String, except: RedisConsumer? = nil) {
        for consumer in RedisLocalConsumers.shared.consumers(space: space, queue: queue) where consumer !== except {
            if let (client, _) = consumer.requestWake() {
                control.sendNoWait(RedisCommand("CLIENT", "UNBLOCK", String(client)))
            }
        }
    }
}

/// The consumers of this process by server, key space and queue, so that a settlement or a close
/// in one client can wake blocked readers of another client of the same Redis.
final class RedisLocalConsumers: Sendable {
    static let shared = RedisLocalConsumers()
    private let table = Mutex<[String: [ObjectIdentifier: RedisConsumer]]>([:])

    func add(_ consumer: RedisConsumer, space: String) {
        table.withLock { $0[space + "\n" + consumer.queue, default: [:]][ObjectIdentifier(consumer)] = consumer }
    }

    func remove(_ consumer: RedisConsumer, space: String) {
        table.withLock { table in
            let key = space + "\n" + consumer.queue
            table[key]?.removeValue(forKey: ObjectIdentifier(consumer))
            if table[key]?.isEmpty == true { table.removeValue(forKey: key) }
        }
    }

    func consumers(space: String, queue: String) -> [RedisConsumer] {
        table.withLock { Array(($0[space + "\n" + queue] ?? [:]).values) }
    }
}
