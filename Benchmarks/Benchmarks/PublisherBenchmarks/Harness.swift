import Dispatch
import Foundation
import JadugarPublisher
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Waits for something another thread will do soon: spins a little, then yields the core.
///
/// On a 2-core machine every benchmark thread that spins takes the core another one needs, so
/// the wait yields after a short spin rather than burning its time slice.
@inline(__always)
func backOff(_ spins: inout Int) {
    spins &+= 1
    if spins > 64 {
        sched_yield()
        spins = 0
    }
}

/// A ring with a consumer thread that takes everything pushed into it, and optional helper
/// producer threads, all created outside the measured region and stopped in teardown.
///
/// `@unchecked Sendable`: every field is either immutable, an atomic, or the ring (`Sendable`);
/// the helper's work description is published through the semaphore.
final class RingTransfer<Ring: AnyObject & Sendable>: @unchecked Sendable {
    let ring: Ring
    let push: (Ring, Int) -> Bool
    let consumed = Atomic<Int>(0)
    let running = Atomic<Bool>(true)
    let helpers: Int
    let helperWork = Atomic<Int>(0)
    let helpersDone = Atomic<Int>(0)
    let helperGo = DispatchSemaphore(value: 0)
    let stopped = DispatchSemaphore(value: 0)

    init(
        ring: Ring,
        helpers: Int,
        push: @escaping (Ring, Int) -> Bool,
        drain: @escaping @Sendable (Ring, inout [Int]) -> Int
    ) {
        self.ring = ring
        self.push = push
        self.helpers = helpers
        let consumer = Thread { [self] in
            var buffer: [Int] = []
            buffer.reserveCapacity(1024)
            var spins = 0
            while self.running.load(ordering: .relaxed) {
                let taken = drain(self.ring, &buffer)
                if taken > 0 {
                    // Touch the items so the compiler cannot drop the transfer.
                    if buffer[taken - 1] == -1 { print("impossible") }
                    buffer.removeAll(keepingCapacity: true)
                    self.consumed.add(taken, ordering: .releasing)
                } else {
                    backOff(&spins)
                }
            }
            self.stopped.signal()
        }
        consumer.start()
        for _ in 0..<helpers {
            let helper = Thread { [self] in
                var spins = 0
                while true {
                    self.helperGo.wait()
                    let count = self.helperWork.load(ordering: .acquiring)
                    if count < 0 { break }
                    for value in 0..<count {
                        while !self.push(self.ring, value) { backOff(&spins) }
                    }
                    self.helpersDone.add(1, ordering: .releasing)
                }
                self.stopped.signal()
            }
            helper.start()
        }
    }

    /// Transfers `count` items: this thread and each helper push an equal share, then waits until
    /// the consumer has taken them all.
    func transfer(_ count: Int) {
        let target = self.consumed.load(ordering: .acquiring) + count
        let share = count / (self.helpers + 1)
        if self.helpers > 0 {
            self.helperWork.store(share, ordering: .releasing)
            self.helpersDone.store(0, ordering: .releasing)
            for _ in 0..<self.helpers { self.helperGo.signal() }
        }
        var spins = 0
        for value in 0..<(count - share * self.helpers) {
            while !self.push(self.ring, value) { backOff(&spins) }
        }
        while self.consumed.load(ordering: .acquiring) < target { backOff(&spins) }
    }

    func stop() {
        self.helperWork.store(-1, ordering: .releasing)
        for _ in 0..<self.helpers { self.helperGo.signal() }
        self.running.store(false, ordering: .relaxed)
        for _ in 0...self.helpers { self.stopped.wait() }
    }
}

/// Two rings and an echo thread that sends every item straight back: a round trip per item.
final class PingPong: @unchecked Sendable {
    let there = MPSCRingBuffer<Int>(minimumCapacity: 64)
    let back = MPSCRingBuffer<Int>(minimumCapacity: 64)
    let running = Atomic<Bool>(true)
    let stopped = DispatchSemaphore(value: 0)

    init() {
        let echo = Thread { [self] in
            var spins = 0
            while self.running.load(ordering: .relaxed) {
                if let value = self.there.tryPop() {
                    while !self.back.tryPush(value) { backOff(&spins) }
                } else {
                    backOff(&spins)
                }
            }
            self.stopped.signal()
        }
        echo.start()
    }

    func roundTrip(_ value: Int) -> Int {
        var spins = 0
        while !self.there.tryPush(value) { backOff(&spins) }
        while true {
            if let echoed = self.back.tryPop() { return echoed }
            backOff(&spins)
        }
    }

    func stop() {
        self.running.store(false, ordering: .relaxed)
        self.stopped.wait()
    }
}

/// Counts what a batcher's sink receives, so a benchmark can wait for its items to arrive.
final class SinkCounter: Sendable {
    let written = Atomic<Int>(0)

    func waitFor(_ target: Int) {
        var spins = 0
        while self.written.load(ordering: .acquiring) < target { backOff(&spins) }
    }
}

/// Holds what a benchmark's setup creates, so that its teardown can stop it.
///
/// `@unchecked Sendable`: package-benchmark runs setup, the measured closure and teardown one
/// after another, never at once.
final class Fixture<Value>: @unchecked Sendable {
    private var stored: Value?

    var value: Value {
        guard let stored else { fatalError("benchmark fixture used outside setup/teardown") }
        return stored
    }

    func set(_ value: Value) { self.stored = value }

    func take() -> Value? {
        defer { self.stored = nil }
        return self.stored
    }
}
