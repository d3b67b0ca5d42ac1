import Foundation
import HeapModule

/// Runs timed actions (delayed redeliveries, expiry sweeps) for one memory broker on a thread of
/// its own, so that timers never occupy Swift's cooperative pool.
///
/// `@unchecked Sendable`: every stored property is guarded by `condition`.
final class MemoryScheduler: @unchecked Sendable {
    private struct Timer: Comparable {
        var deadline: ContinuousClock.Instant
        var sequence: UInt64
        var action: @Sendable () -> Void
        static func < (lhs: Timer, rhs: Timer) -> Bool {
            (lhs.deadline, lhs.sequence) < (rhs.deadline, rhs.sequence)
        }
        static func == (lhs: Timer, rhs: Timer) -> Bool { lhs.sequence == rhs.sequence }
    }

    private let condition = NSCondition()
    private var timers = Heap<Timer>()
    private var sequence: UInt64 = 0
    private var started = false
    private var stopped = false
    private let name: String

    init(name: String) {
        self.name = name
    }

    /// Runs `action` on the scheduler thread at `deadline` (at once if it has passed).
    func schedule(at deadline: ContinuousClock.Instant, _ action: @escaping @Sendable () -> Void) {
        condition.lock()
        defer { condition.unlock() }
        if stopped { return }
        sequence += 1
        timers.insert(Timer(deadline: deadline, sequence: sequence, action: action))
        if !started {
            started = true
            let thread = Thread { [self] in self.loop() }
            thread.name = "jadugar.memory.scheduler.\(name)"
            thread.start()
        }
        condition.signal()
    }

    /// Stops the thread; pending timers are dropped (their broker is going away).
    func stop() {
        condition.lock()
        stopped = true
        timers = Heap()
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        let clock = ContinuousClock()
        condition.lock()
        while !stopped {
            guard let first = timers.min else {
                condition.wait()
                continue
            }
            let now = clock.now
            if first.deadline <= now {
                let timer = timers.removeMin()
                condition.unlock()
                timer.action()
                condition.lock()
            } else {
                let wait = now.duration(to: first.deadline)
                let seconds = Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18
                _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
            }
        }
        condition.unlock()
    }
}
