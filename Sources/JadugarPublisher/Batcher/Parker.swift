import Atomics
import Dispatch

/// Lets the I/O thread sleep when idle and the submitters wake it, without a syscall per submit.
///
/// The protocol is Dekker's: the consumer announces it is about to sleep (`sleeping = true`,
/// sequentially consistent), then looks for work once more (sequentially consistent loads) before
/// it waits on the semaphore. A producer makes its work visible with a sequentially consistent
/// read-modify-write (the ring's claim CAS, or the overflow counter's store) and then checks
/// `sleeping`. In the single total order of sequentially consistent operations, either the
/// producer's check comes after the consumer's announcement, and the producer signals, or the
/// consumer's second look comes after the producer's work, and it does not sleep. Only the producer
/// that flips `sleeping` back to `false` signals, so there is at most one signal per sleep, and a
/// consumer that times out while a producer is flipping the flag absorbs that producer's signal.
final class _Parker: Sendable {
    private let sleeping = ManagedAtomic<Bool>(false)
    private let semaphore = DispatchSemaphore(value: 0)

    /// Wakes the consumer if it is asleep or about to be. Cheap when it is not: one load.
    @inline(__always)
    func unpark() {
        if self.sleeping.load(ordering: .sequentiallyConsistent),
            self.sleeping.exchange(false, ordering: .sequentiallyConsistent)
        {
            self.semaphore.signal()
        }
    }

    /// Sleeps until `unpark()` or `deadline` (`nil`: no deadline), unless `hasWork` says there is
    /// work once the consumer has announced it is going to sleep. For the one consumer thread only.
    func park(until deadline: DispatchTime?, hasWork: () -> Bool) {
        self.sleeping.store(true, ordering: .sequentiallyConsistent)
        if hasWork() {
            self.cancelSleep()
            return
        }
        if let deadline {
            if self.semaphore.wait(timeout: deadline) == .timedOut {
                self.cancelSleep()
            }
        } else {
            self.semaphore.wait()
        }
    }

    private func cancelSleep() {
        if !self.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
            // A producer saw us asleep and flipped the flag: its signal is on its way. Take it now
            // so that it does not cut the next sleep short.
            self.semaphore.wait()
        }
    }
}
