import Dispatch
import Foundation
import Testing

/// Runs `body(index)` on `count` real threads at once and returns when all have finished.
///
/// Waits without blocking a thread of the cooperative pool, so tests running in parallel keep going.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
    let finished = Counter()
    for index in 0..<count {
        let thread = Thread {
            body(index)
            finished.increment()
        }
        thread.start()
    }
    await finished.wait(for: count)
}

/// Starts `body` on a real thread; the returned task completes when it has finished.
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) -> Task<T, Never> {
    let box = ResultBox<T>()
    let thread = Thread {
        box.set(body())
    }
    thread.start()
    return Task { await box.value() }
}

/// A value that one thread sets and any task awaits.
final class ResultBox<T: Sendable>: Sendable {
    private let state = Locked<(value: T?, waiters: [CheckedContinuation<T, Never>])>((nil, []))

    func set(_ value: T) {
        let waiters = self.state.withLock { state in
            state.value = value
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    func value() async -> T {
        await withCheckedContinuation { continuation in
            let value = self.state.withLock { state -> T? in
                if let value = state.value { return value }
                state.waiters.append(continuation)
                return nil
            }
            if let value { continuation.resume(returning: value) }
        }
    }
}

/// A count that threads increment and tasks wait on.
final class Counter: Sendable {
    private let state = Locked<(value: Int, waiters: [(Int, CheckedContinuation<Void, Never>)])>((0, []))

    var value: Int { self.state.withLock { $0.value } }

    func increment(by amount: Int = 1) {
        let ready = self.state.withLock { state in
            state.value += amount
            let value = state.value
            let ready = state.waiters.filter { $0.0 <= value }.map(\.1)
            state.waiters.removeAll { $0.0 <= value }
            return ready
        }
        for waiter in ready { waiter.resume() }
    }

    /// Waits until the count reaches `target`.
    func wait(for target: Int) async {
        await withCheckedContinuation { continuation in
            let reached = self.state.withLock { state -> Bool in
                if state.value >= target { return true }
                state.waiters.append((target, continuation))
                return false
            }
            if reached { continuation.resume() }
        }
    }
}

/// A gate that blocks threads (not tasks) until opened; for holding a sink inside `write`.
final class ThreadGate: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let waiting = Counter()

    /// Blocks the calling thread until `open()`.
    func pass() {
        self.waiting.increment()
        self.semaphore.wait()
        self.semaphore.signal()
    }

    /// Waits until `count` threads are blocked at the gate (or have passed it).
    func waitForArrivals(_ count: Int) async {
        await self.waiting.wait(for: count)
    }

    func open() {
        self.semaphore.signal()
    }
}

/// Polls `condition` until it holds, for at most `timeout`; records a failure if it never does.
func eventually(
    timeout: Duration = .seconds(10),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () -> Bool
) async {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now >= deadline {
            Issue.record("condition not met within \(timeout)", sourceLocation: sourceLocation)
            return
        }
        await Task.yield()
        try? await Task.sleep(for: .microseconds(200))
    }
}

/// A thread-safe list.
final class Recorder<T: Sendable>: Sendable {
    private let storage = Locked<[T]>([])

    func append(_ value: T) { self.storage.withLock { $0.append(value) } }
    func append(contentsOf values: some Sequence<T>) { self.storage.withLock { $0.append(contentsOf: values) } }
    var values: [T] { self.storage.withLock { $0 } }
    var count: Int { self.storage.withLock { $0.count } }
}

/// Checks that `received` holds, for every producer, exactly `perProducer` items in order.
///
/// Items are encoded as `producer << 32 | sequence`.
func expectPerProducerFIFO(
    _ received: [Int],
    producers: Int,
    perProducer: Int,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    var next = Array(repeating: 0, count: producers)
    var errors = 0
    for value in received {
        let producer = value >> 32
        let sequence = value & 0xFFFF_FFFF
        guard producer < producers else {
            Issue.record("unknown producer \(producer)", sourceLocation: sourceLocation)
            return
        }
        if sequence != next[producer] {
            errors += 1
            if errors < 5 {
                Issue.record(
                    "producer \(producer): expected item \(next[producer]), got \(sequence) (lost, duplicated or reordered)",
                    sourceLocation: sourceLocation
                )
            }
        }
        next[producer] = sequence + 1
    }
    #expect(received.count == producers * perProducer, sourceLocation: sourceLocation)
    #expect(next == Array(repeating: perProducer, count: producers), sourceLocation: sourceLocation)
}

func encode(producer: Int, sequence: Int) -> Int { producer << 32 | sequence }

/// A class instance whose deinit is counted, to check that rings destroy what they hold.
final class Tracked: Sendable {
    let value: Int
    let deinits: Counter

    init(_ value: Int, deinits: Counter) {
        self.value = value
        self.deinits = deinits
    }

    deinit { self.deinits.increment() }
}

struct TestError: Error, Equatable {
    var id: Int
}

/// A value behind an `NSLock`.
///
/// Not Synchronization's `Mutex`: ThreadSanitizer on Linux cannot see `Mutex`'s synchronisation
/// and would report every access as a race (see `LockedValueBox` in the library).
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        self.lock.lock()
        defer { self.lock.unlock() }
        return try body(&self.value)
    }
}
