import Foundation
import Synchronization

/// Something that happened to a broker connection or a message, for monitoring.
///
/// ```swift
/// Task {
///     for await event in broker.events() where event.kind == .disconnected {
///         logger.warning("broker went away: \(event.detail)")
///     }
/// }
/// ```
public struct BrokerEvent: Sendable, Hashable, CustomStringConvertible {
    /// What kind of event.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        /// The kind's name.
        public let name: String
        private init(_ name: String) { self.name = name }
        /// The connection is up.
        public static let connected = Kind("connected")
        /// The connection is down (closed or lost).
        public static let disconnected = Kind("disconnected")
        /// A lost connection is being re-established.
        public static let reconnecting = Kind("reconnecting")
        /// An error that no caller was waiting for.
        public static let error = Kind("error")
        /// The broker stopped accepting publishes (resource alarm, full queue).
        public static let blocked = Kind("blocked")
        /// The broker accepts publishes again.
        public static let unblocked = Kind("unblocked")
        /// A message went to a dead-letter queue.
        public static let deadLettered = Kind("dead-lettered")
        /// A message was discarded (rejected or expired with no dead-letter target).
        public static let dropped = Kind("dropped")
        public var description: String { name }
    }

    /// What kind of event.
    public var kind: Kind
    /// The broker's name.
    public var broker: String
    /// Details: the reason, the queue, the message id.
    public var detail: String
    /// When it happened.
    public var date: Date

    /// Creates an event.
    public init(kind: Kind, broker: String, detail: String = "", date: Date = Date()) {
        self.kind = kind
        self.broker = broker
        self.detail = detail
        self.date = date
    }

    public var description: String { "[\(broker)] \(kind)\(detail.isEmpty ? "" : ": \(detail)")" }
}

/// Fans events out to every registered stream. Adapters own one each.
///
/// ```swift
/// let broadcaster = EventBroadcaster()
/// let events = broadcaster.stream()
/// broadcaster.emit(BrokerEvent(kind: .connected, broker: "redis"))
/// ```
public final class EventBroadcaster: Sendable {
    private let continuations = Mutex<(next: Int, all: [Int: AsyncStream<BrokerEvent>.Continuation])>((0, [:]))

    /// Creates a broadcaster with no listeners.
    public init() {}

    /// A new stream of events; it unregisters when its consumer stops iterating. Buffers the newest 1,000 events.
    public func stream() -> AsyncStream<BrokerEvent> {
        let (stream, continuation) = AsyncStream<BrokerEvent>.makeStream(bufferingPolicy: .bufferingNewest(1000))
        let id = register(continuation)
        continuation.onTermination = { [weak self] _ in self?.unregister(id) }
        return stream
    }

    /// Adds a continuation that receives every event; returns a token for ``unregister(_:)``.
    /// Lets one stream listen to several broadcasters.
    public func register(_ continuation: AsyncStream<BrokerEvent>.Continuation) -> Int {
        continuations.withLock { state in
            let id = state.next
            state.next += 1
            state.all[id] = continuation
            return id
        }
    }

    /// Removes a continuation added with ``register(_:)``.
    public func unregister(_ token: Int) {
        _ = continuations.withLock { $0.all.removeValue(forKey: token) }
    }

    /// Sends an event to every listener.
    public func emit(_ event: BrokerEvent) {
        let targets = continuations.withLock { Array($0.all.values) }
        for continuation in targets { continuation.yield(event) }
    }

    /// Ends every stream.
    public func finish() {
        let targets = continuations.withLock { state in
            defer { state.all.removeAll() }
            return Array(state.all.values)
        }
        for continuation in targets { continuation.finish() }
    }
}
