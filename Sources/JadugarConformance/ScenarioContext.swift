import Foundation
import Jadugar
import Synchronization

/// What a scenario works with: a connected broker, more connections on demand, unique names,
/// counters and bounded waits.
public final class ScenarioContext: Sendable {
    /// The connected broker under test.
    public let broker: any MessageBroker
    /// The suite's configuration.
    public let configuration: ConformanceConfiguration
    private let factory: BrokerFactory
    private let prefix: String
    private let counterState = Mutex(ConformanceCounters())
    private let extra = Mutex<[any MessageBroker]>([])

    init(broker: any MessageBroker, factory: @escaping BrokerFactory, configuration: ConformanceConfiguration, scenario: String) {
        self.broker = broker
        self.factory = factory
        self.configuration = configuration
        // The id's first half is random per process, its second a counter: both, so that names do
        // not repeat across runs and pick up what an earlier run left in a durable queue.
        let id = Message.makeID()
        self.prefix = "cf.\(scenario.replacingOccurrences(of: ".", with: "-")).\(id.prefix(8))\(id.suffix(8))"
    }

    /// A name no other scenario or run uses: `cf.<scenario>.<id>.<label>`.
    public func unique(_ label: String) -> String {
        "\(prefix).\(label)"
    }

    /// The broker's capabilities.
    public var capabilities: BrokerCapabilities { broker.capabilities }

    /// A manager over the broker under test.
    public func manager(_ options: MessageOptions = MessageOptions()) -> MessageManager {
        MessageManager(broker: broker, options: options)
    }

    /// Another connected client of the same broker; disconnected when the scenario ends.
    public func connectAnother() async throws -> any MessageBroker {
        let other = try await factory()
        try await other.connect()
        extra.withLock { $0.append(other) }
        return other
    }

    func closeExtras() async {
        for other in extra.withLock({ state in defer { state.removeAll() }; return state }) {
            try? await other.disconnect()
        }
    }

    /// The counters so far.
    public var counters: ConformanceCounters { counterState.withLock { $0 } }

    /// Changes the counters.
    public func count(_ change: (inout ConformanceCounters) -> Void) {
        counterState.withLock { change(&$0) }
    }

    /// Fails the scenario unless `condition` holds.
    public func require(_ condition: Bool, _ reason: @autoclosure () -> String) throws {
        if !condition { throw ScenarioFailure(description: reason()) }
    }

    /// Fails the scenario with a reason.
    public func fail(_ reason: String) -> any Error {
        ScenarioFailure(description: reason)
    }

    /// Runs `body`, failing with `what` if it takes longer than `limit`.
    public func within<T: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw ScenarioFailure(description: "\(what) did not happen within \(limit)")
            }
            return value
        }
    }

    /// The next delivery from a stream, or `nil` if none comes within `limit`.
    public func next(_ stream: DeliveryStream, within limit: Duration) async throws -> Delivery? {
        try await withThrowingTaskGroup(of: Delivery?.self) { group in
            group.addTask { try await stream.next() }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    /// A message whose payload and headers encode its index, so that delivery can be checked byte for byte.
    public func message(_ index: Int, size: Int = 32, key: String? = nil) -> Message {
        var metadata = MessageMetadata(correlationId: "corr-\(index)", contentType: "application/octet-stream")
        metadata.headers = ["x-seq": String(index), "x-origin": prefix]
        if let key { metadata.headers["x-key"] = key }
        return Message(payload: Self.payload(index, size: size), metadata: metadata)
    }

    /// The payload ``message(_:size:key:)`` puts in message `index`.
    public static func payload(_ index: Int, size: Int) -> [UInt8] {
        var bytes = Array("m\(index):".utf8)
        var state = UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15 | 1
        while bytes.count < size {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            bytes.append(UInt8(truncatingIfNeeded: state))
        }
        return Array(bytes.prefix(max(size, 0)))
    }

    /// Checks that a delivered message is the one ``message(_:size:key:)`` made for its index.
    public func verify(_ message: Message, size: Int = 32) throws -> Int {
        guard let index = message.metadata.headers["x-seq"].flatMap(Int.init) else {
            throw ScenarioFailure(description: "message \(message.id) lost its x-seq header; headers: \(message.metadata.headers.keys.sorted())")
        }
        try require(message.payload == Self.payload(index, size: size), "message \(index) arrived with a different payload (\(message.payload.count) bytes, expected \(size))")
        try require(message.metadata.correlationId == "corr-\(index)", "message \(index) lost its correlation id (got \(message.metadata.correlationId ?? "nil"))")
        try require(message.metadata.headers["x-origin"] == prefix, "message \(index) lost its x-origin header")
        return index
    }
}

/// Counts deliveries by message id and lets a scenario wait until every expected id arrived.
public final class DeliveryTracker: Sendable {
    private struct State {
        var seen: [String: Int] = [:]
        var waiters: [(target: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }
    private let state = Mutex(State())

    /// Creates an empty tracker.
    public init() {}

    /// Records one delivery.
    public func record(_ id: String) {
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.seen[id, default: 0] += 1
            let distinct = state.seen.count
            let (done, rest) = state.waiters.reduce(into: ([CheckedContinuation<Void, Never>](), [(target: Int, continuation: CheckedContinuation<Void, Never>)]())) { acc, waiter in
                if waiter.target <= distinct { acc.0.append(waiter.continuation) } else { acc.1.append(waiter) }
            }
            state.waiters = rest
            return done
        }
        for continuation in ready { continuation.resume() }
    }

    /// Distinct ids delivered.
    public var distinct: Int { state.withLock { $0.seen.count } }
    /// Deliveries beyond the first of each id.
    public var duplicates: Int { state.withLock { $0.seen.values.reduce(0) { $0 + $1 - 1 } } }
    /// Whether an id was delivered.
    public func contains(_ id: String) -> Bool { state.withLock { $0.seen[id] != nil } }

    /// Waits until `count` distinct ids arrived or `limit` passes; returns whether they did.
    public func wait(for count: Int, within limit: Duration) async -> Bool {
        let waiter = Task {
            await withCheckedContinuation { continuation in
                let done = state.withLock { state -> Bool in
                    if state.seen.count >= count { return true }
                    state.waiters.append((count, continuation))
                    return false
                }
                if done { continuation.resume() }
            }
        }
        let timer = Task {
            try await Task.sleep(for: limit)
            // Wake every waiter so the wait ends; the caller reads the count.
            let all = self.state.withLock { state in
                defer { state.waiters.removeAll() }
                return state.waiters.map(\.continuation)
            }
            for continuation in all { continuation.resume() }
        }
        await waiter.value
        timer.cancel()
        return distinct >= count
    }
}

/// A value behind a lock, shareable between tasks.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
    var value: Value { mutex.withLock { $0 } }
}
