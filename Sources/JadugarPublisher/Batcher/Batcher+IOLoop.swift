import Atomics
import DequeModule
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Batcher {
    /// How many times the idle I/O thread looks for work before it sleeps. Kept short: on a 2-core
    /// machine a spinning I/O thread takes the core a producer needs.
    private static var idleSpins: Int { 64 }

    /// The I/O thread's body: collect a batch, write it, repeat; settle the rest at shutdown.
    func runIOLoop() {
        let maxBatch = self.configuration.maxBatch
        let lingerNanoseconds = self.configuration.maxDelay.clampedNanoseconds
        var batch = Batch<Item>(capacity: maxBatch)
        var closing = false
        var drain = true

        while true {
            if !closing, self.ring.isClosed {
                closing = true
                drain = self.lifecycle.withLock { $0.drainOnShutdown }
                if !drain { break }
            }
            if !closing { self.moveOverflowToRing() }
            self.collect(into: &batch, max: maxBatch)

            if batch.count == 0 {
                if self.ring.hasClaimedElements {
                    // A producer claimed a slot and is still writing it: microseconds at most.
                    sched_yield()
                    continue
                }
                if closing {
                    // The ring is closed and empty; what is left are submitters that queued for
                    // room, and they come after everything that was in the ring.
                    self.collectOverflow(into: &batch, max: maxBatch)
                    if batch.count == 0 { break }
                } else {
                    self.waitForWork()
                    continue
                }
            } else if lingerNanoseconds > 0, batch.count < maxBatch, !closing {
                self.linger(batch: &batch, max: maxBatch, nanoseconds: lingerNanoseconds)
            }
            self.write(&batch)
        }

        if !drain {
            self.failEverythingBuffered(batch: &batch, max: maxBatch)
        }
        self.sinkBox.sink.close()
    }

    private func collect(into batch: inout Batch<Item>, max: Int) {
        let room = max - batch.count
        if room > 0 {
            _ = self.ring.consume(max: room) { batch.append($0) }
        }
    }

    private func collectOverflow(into batch: inout Batch<Item>, max: Int) {
        self.overflow.withLock { overflow in
            while batch.count < max, let waiter = overflow.waiters.popFirst() {
                batch.append(waiter.entry)
            }
            self.overflowCount.store(overflow.waiters.count, ordering: .sequentiallyConsistent)
        }
    }

    /// Lets submitters that queued for room into the ring, oldest first.
    private func moveOverflowToRing() {
        guard self.overflowCount.load(ordering: .acquiring) > 0 else { return }
        self.overflow.withLock { overflow in
            overflow.moveToRing(self.ring)
            self.overflowCount.store(overflow.waiters.count, ordering: .sequentiallyConsistent)
        }
    }

    /// Whether a submitter has made work visible; sequentially consistent, for the parking protocol.
    private func hasWork() -> Bool {
        self.ring.hasClaimedElements || self.ring.isClosed
            || self.overflowCount.load(ordering: .sequentiallyConsistent) > 0
    }

    /// Spins briefly, then lets the sink poll, then sleeps until a submit (or the sink's deadline).
    private func waitForWork() {
        for _ in 0..<Self.idleSpins {
            if self.hasWork() { return }
        }
        let pollInterval = self.sinkBox.sink.idle()
        if self.hasWork() { return }
        let deadline = pollInterval.map { DispatchTime.now() + .nanoseconds(Int(clamping: $0.clampedNanoseconds)) }
        self.parker.park(until: deadline) { self.hasWork() }
    }

    /// Waits up to `nanoseconds` from now for the batch to fill to `max`.
    private func linger(batch: inout Batch<Item>, max: Int, nanoseconds: UInt64) {
        let deadline = DispatchTime.now() + .nanoseconds(Int(clamping: nanoseconds))
        while batch.count < max, !self.ring.isClosed {
            self.moveOverflowToRing()
            self.collect(into: &batch, max: max)
            if batch.count >= max || DispatchTime.now() >= deadline { return }
            self.parker.park(until: deadline) { self.hasWork() }
        }
    }

    private func write(_ batch: inout Batch<Item>) {
        do {
            try self.sinkBox.sink.write(&batch)
            batch.resolveRemaining(with: .success(()))
        } catch {
            batch.resolveRemaining(with: .failure(error))
        }
        batch.removeAll()
    }

    /// Shutdown without draining: fails every item still in the ring or the overflow queue.
    private func failEverythingBuffered(batch: inout Batch<Item>, max: Int) {
        let error = PublisherError.shutdown()
        while true {
            self.collect(into: &batch, max: max)
            if batch.count == 0 {
                guard self.ring.hasClaimedElements else { break }
                sched_yield()
                continue
            }
            batch.resolveRemaining(with: .failure(error))
            batch.removeAll()
        }
        let waiters = self.overflow.withLock { overflow in
            let waiters = overflow.takeAll()
            self.overflowCount.store(0, ordering: .sequentiallyConsistent)
            return waiters
        }
        for waiter in waiters {
            waiter.entry.continuation?.resume(throwing: error)
        }
    }
}
