import Dispatch
import Foundation
import JadugarPublisher
import Testing

/// A sink that records each batch and can be told to block, fail items, or count its hooks.
struct RecordingSink: BatchSink {
    typealias Item = Int

    let batches = Recorder<[Int]>()
    let awaited = Recorder<Bool>()
    let idleCalls = Counter()
    let closeCalls = Counter()
    /// If set, every write blocks here until the gate opens.
    var gate: ThreadGate?
    /// If set, items for which it returns an error fail with it.
    var failure: (@Sendable (Int) -> (any Error)?)?
    /// What `idle()` returns for its first `pollCount` calls (then `nil`).
    var pollInterval: Duration?
    var pollCount = 0

    mutating func write(_ batch: inout Batch<Int>) throws {
        self.batches.append(batch.items)
        self.gate?.pass()
        for index in 0..<batch.count {
            if let error = self.failure?(batch[index]) {
                batch.fail(at: index, with: error)
            }
        }
    }

    mutating func idle() -> Duration? {
        self.idleCalls.increment()
        if self.idleCalls.value <= self.pollCount { return self.pollInterval }
        return nil
    }

    mutating func close() {
        self.closeCalls.increment()
    }
}

/// Copies the recorders out of a sink before it is handed to the batcher.
struct SinkProbe: Sendable {
    let batches: Recorder<[Int]>
    let idleCalls: Counter
    let closeCalls: Counter

    init(_ sink: RecordingSink) {
        self.batches = sink.batches
        self.idleCalls = sink.idleCalls
        self.closeCalls = sink.closeCalls
    }

    var items: [Int] { self.batches.values.flatMap { $0 } }
}

func makeBatcher(
    _ configuration: BatcherConfiguration = .init(),
    configure: (inout RecordingSink) -> Void = { _ in }
) -> (Batcher<Int>, SinkProbe) {
    var sink = RecordingSink()
    configure(&sink)
    let probe = SinkProbe(sink)
    return (Batcher(configuration: configuration, sink: sink), probe)
}

/// The `PublisherError` code `body` throws, or `nil` if it throws something else or nothing.
func publisherErrorCode(_ body: () throws -> Void) -> PublisherError.Code? {
    do {
        try body()
        return nil
    } catch let error as PublisherError {
        return error.code
    } catch {
        return nil
    }
}

func publisherErrorCode(_ body: () async throws -> Void) async -> PublisherError.Code? {
    do {
        try await body()
        return nil
    } catch let error as PublisherError {
        return error.code
    } catch {
        return nil
    }
}

@Suite("Batcher: batching and completion", .timeLimit(.minutes(1)))
struct BatcherTests {
    @Test func submitReturnsOnceTheSinkHasWrittenTheItem() async throws {
        let (batcher, probe) = makeBatcher()
        batcher.start()
        for value in 0..<5 {
            try await batcher.submit(value)
            #expect(probe.items == Array(0...value), "submit returned before its item was written")
        }
        // Each submit waited for the previous one, so with no delay each was its own batch.
        #expect(probe.batches.values == (0..<5).map { [$0] })
        await batcher.shutdown()
        #expect(probe.closeCalls.value == 1)
    }

    @Test func batchesNeverExceedMaxBatch() async throws {
        let (batcher, probe) = makeBatcher(.init(maxBatch: 4))
        // Buffered before the thread starts, so the split is deterministic.
        for value in 0..<10 { try batcher.submitNoWait(value) }
        #expect(batcher.bufferedCount == 10)
        batcher.start()
        await batcher.shutdown(drain: true)
        #expect(probe.batches.values == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
    }

    @Test func maxDelayGathersItemsThatArriveWithinIt() async throws {
        let delay = Duration.milliseconds(300)
        let (batcher, probe) = makeBatcher(.init(maxBatch: 100, maxDelay: delay))
        batcher.start()
        let started = ContinuousClock.now
        try batcher.submitNoWait(1)
        try batcher.submitNoWait(2)
        try batcher.submitNoWait(3)
        try await batcher.submit(4)
        let elapsed = ContinuousClock.now - started
        #expect(probe.batches.values == [[1, 2, 3, 4]])
        #expect(elapsed >= delay * 0.8, "the batch was written after \(elapsed), before maxDelay \(delay)")
        await batcher.shutdown()
    }

    @Test func aFullBatchIsWrittenWithoutWaitingForMaxDelay() async throws {
        let (batcher, probe) = makeBatcher(.init(maxBatch: 4, maxDelay: .seconds(30)))
        batcher.start()
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for value in 0..<4 {
                group.addTask { try await batcher.submit(value) }
            }
            try await group.waitForAll()
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(probe.items.sorted() == [0, 1, 2, 3])
        await batcher.shutdown()
    }

    @Test func sinkResultsCompleteEachSubmitter() async throws {
        let (batcher, probe) = makeBatcher(.init(maxBatch: 8)) { sink in
            sink.failure = { $0.isMultiple(of: 2) ? TestError(id: $0) : nil }
        }
        for value in 0..<6 { try batcher.submitNoWait(value) }  // fire-and-forget failures are not reported
        batcher.start()
        try await withThrowingTaskGroup(of: (Int, TestError?).self) { group in
            for value in 10..<16 {
                group.addTask {
                    do {
                        try await batcher.submit(value)
                        return (value, nil)
                    } catch let error as TestError {
                        return (value, error)
                    }
                }
            }
            for try await (value, error) in group {
                #expect(error == (value.isMultiple(of: 2) ? TestError(id: value) : nil))
            }
        }
        #expect(probe.items.count == 12)
        await batcher.shutdown()
    }

    @Test func aThrowingSinkFailsTheWholeBatch() async throws {
        let batcher = Batcher<Int>(configuration: .init()) { items in
            if items.contains(13) { throw TestError(id: 13) }
        }
        batcher.start()
        try await batcher.submit(1)
        await #expect(throws: TestError(id: 13)) { try await batcher.submit(13) }
        try await batcher.submit(2)
        await batcher.shutdown()
    }

    @Test func theSinkCanConfirmItemsLaterFromAnotherThread() async throws {
        let pending = Locked<[BatchCompletion]>([])
        let taken = Counter()
        struct DeferringSink: BatchSink {
            let pending: @Sendable (BatchCompletion) -> Void
            mutating func write(_ batch: inout Batch<Int>) throws {
                for index in 0..<batch.count { self.pending(batch.takeCompletion(at: index)) }
            }
        }
        let batcher = Batcher(
            configuration: .init(),
            sink: DeferringSink { completion in
                pending.withLock { $0.append(completion) }
                taken.increment()
            }
        )
        batcher.start()
        let finished = Counter()
        let confirmed = Task {
            try await batcher.submit(1)
            finished.increment()
        }
        let refused = Task {
            try await batcher.submit(2)
            finished.increment()
        }
        await taken.wait(for: 2)
        #expect(finished.value == 0, "a submit returned before its deferred completion was resolved")
        let completions = pending.withLock { $0 }
        let allAwaited = completions.allSatisfy { $0.isAwaited }
        #expect(allAwaited)
        #expect(completions.count == 2)
        // Resolve from a plain thread, as a confirm reader would; the order of the two writes is
        // not known, so refuse whichever came second.
        await onThread {
            completions[0].succeed()
            completions[1].complete(with: .failure(TestError(id: 2)))
        }.value
        let outcomes = [await confirmed.result, await refused.result]
        #expect(outcomes.filter { (try? $0.get()) != nil }.count == 1)
        #expect(finished.value == 1)
        await batcher.shutdown()
    }

    @Test func aDeferredCompletionCanFail() async throws {
        let pending = Locked<BatchCompletion?>(nil)
        let taken = Counter()
        struct DeferringSink: BatchSink {
            let keep: @Sendable (BatchCompletion) -> Void
            mutating func write(_ batch: inout Batch<Int>) throws {
                self.keep(batch.takeCompletion(at: 0))
                throw TestError(id: -1)  // must not touch the completion it took
            }
        }
        let batcher = Batcher(
            configuration: .init(),
            sink: DeferringSink { completion in
                pending.withLock { $0 = completion }
                taken.increment()
            }
        )
        batcher.start()
        let submit = Task { try await batcher.submit(5) }
        await taken.wait(for: 1)
        pending.withLock { $0 }?.fail(TestError(id: 5))
        await #expect(throws: TestError(id: 5)) { try await submit.value }
        await batcher.shutdown()
    }

    @Test func theSinkSeesWhichItemsAreAwaited() async throws {
        let flags = Recorder<Bool>()
        struct FlagSink: BatchSink {
            let flags: Recorder<Bool>
            mutating func write(_ batch: inout Batch<Int>) throws {
                for index in 0..<batch.count {
                    let completion = batch.takeCompletion(at: index)
                    self.flags.append(completion.isAwaited)
                    completion.succeed()
                    let resolved = batch.isResolved(at: index)
                    #expect(resolved)
                }
            }
        }
        let batcher = Batcher(configuration: .init(maxBatch: 8), sink: FlagSink(flags: flags))
        try batcher.submitNoWait(1)
        let submit = Task { try await batcher.submit(2) }
        await eventually { batcher.bufferedCount == 2 }
        batcher.start()
        try await submit.value
        #expect(flags.values == [false, true])
        await batcher.shutdown()
    }

    @Test func anIdleThreadSleepsAndWakesOnSubmit() async throws {
        let (batcher, probe) = makeBatcher()
        batcher.start()
        try await batcher.submit(1)
        // Measuring, not synchronising: an idle I/O thread must not loop.
        try await Task.sleep(for: .milliseconds(100))
        #expect(probe.idleCalls.value <= 3, "the idle I/O thread polled \(probe.idleCalls.value) times in 100 ms")
        try await batcher.submit(2)
        #expect(probe.items == [1, 2])
        await batcher.shutdown()
    }

    @Test func theSinksPollIntervalWakesTheIdleThread() async throws {
        let (batcher, probe) = makeBatcher { sink in
            sink.pollInterval = .milliseconds(2)
            sink.pollCount = 5
        }
        batcher.start()
        // Nothing is submitted: only the poll deadline can bring the thread back to idle() again.
        await probe.idleCalls.wait(for: 6)
        await batcher.shutdown()
        #expect(probe.items.isEmpty)
    }
}

@Suite("Batcher: backpressure", .timeLimit(.minutes(1)))
struct BatcherBackpressureTests {
    @Test func failFastThrowsBufferFull() async throws {
        let (batcher, probe) = makeBatcher(.init(capacity: 4, backpressure: .failFast))
        for value in 0..<4 { try batcher.submitNoWait(value) }
        #expect(publisherErrorCode { try batcher.submitNoWait(4) } == .bufferFull)
        #expect(await publisherErrorCode { try await batcher.submit(5) } == .bufferFull)
        do {
            try batcher.submitNoWait(6)
        } catch let error as PublisherError {
            #expect(error.isRetriable)
            #expect(error.message.contains("capacity 4"))
        }
        batcher.start()
        await batcher.shutdown()
        #expect(probe.items == [0, 1, 2, 3])
    }

    @Test func suspendQueuesSubmittersInArrivalOrder() async throws {
        let (batcher, probe) = makeBatcher(.init(capacity: 2, maxBatch: 8, backpressure: .suspend))
        try batcher.submitNoWait(0)
        try batcher.submitNoWait(1)
        var waiting: [Task<Void, any Error>] = []
        for value in 100..<104 {
            waiting.append(Task { try await batcher.submit(value) })
            // Each waits in line before the next is created, so arrival order is known.
            await eventually { batcher.bufferedCount == 2 + waiting.count }
        }
        #expect(
            publisherErrorCode { try batcher.submitNoWait(9) } == .bufferFull,
            "fire-and-forget must not overtake waiting submitters"
        )
        batcher.start()
        for task in waiting { try await task.value }
        #expect(probe.items == [0, 1, 100, 101, 102, 103])
        await batcher.shutdown()
    }

    @Test func suspendedSubmitterCanBeCancelled() async throws {
        let (batcher, probe) = makeBatcher(.init(capacity: 2, backpressure: .suspend))
        try batcher.submitNoWait(0)
        try batcher.submitNoWait(1)
        let waiting = Task { try await batcher.submit(7) }
        await eventually { batcher.bufferedCount == 3 }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(batcher.bufferedCount == 2)
        batcher.start()
        await batcher.shutdown()
        #expect(probe.items == [0, 1])
    }

    @Test func suspendingSubmittersAndThreadsUnderLoadLoseNothing() async throws {
        let perProducer = 3_000
        let (batcher, probe) = makeBatcher(.init(capacity: 16, maxBatch: 8, backpressure: .suspend))
        batcher.start()
        // Producers 0 and 1: threads with fire-and-forget, retrying when full.
        let threads = Task {
            await onThreads(2) { producer in
                for sequence in 0..<perProducer {
                    while true {
                        do {
                            try batcher.submitNoWait(encode(producer: producer, sequence: sequence))
                            break
                        } catch {
                            sched_yield()
                        }
                    }
                }
            }
        }
        // Producers 2 and 3: tasks that await each confirmation.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for producer in 2..<4 {
                group.addTask {
                    for sequence in 0..<perProducer {
                        try await batcher.submit(encode(producer: producer, sequence: sequence))
                    }
                }
            }
            try await group.waitForAll()
        }
        await threads.value
        await batcher.shutdown(drain: true)
        expectPerProducerFIFO(probe.items, producers: 4, perProducer: perProducer)
        #expect(probe.batches.values.allSatisfy { $0.count <= 8 })
    }
}

@Suite("Batcher: shutdown", .timeLimit(.minutes(1)))
struct BatcherShutdownTests {
    /// Blocks the sink on item 0, then fills the ring (4 items) and the overflow queue (2 submitters).
    func blockedBatcher() async -> (Batcher<Int>, SinkProbe, ThreadGate, [Task<Void, any Error>]) {
        let gate = ThreadGate()
        let (batcher, probe) = makeBatcher(.init(capacity: 4, maxBatch: 2, backpressure: .suspend)) { sink in
            sink.gate = gate
        }
        batcher.start()
        var tasks: [Task<Void, any Error>] = [Task { try await batcher.submit(0) }]
        await gate.waitForArrivals(1)  // item 0 is now being written
        for value in 1...6 {
            tasks.append(Task { try await batcher.submit(value) })
            await eventually { batcher.bufferedCount == value }
        }
        return (batcher, probe, gate, tasks)
    }

    /// Waits until shutdown has closed the buffer, seen from outside as `closed` refusals.
    func waitUntilClosed(_ batcher: Batcher<Int>) async {
        await eventually { publisherErrorCode { try batcher.submitNoWait(-1) } == .closed }
    }

    @Test func drainingWritesEverythingBufferedAndInFlight() async throws {
        let (batcher, probe, gate, tasks) = await self.blockedBatcher()
        let shutdown = Task { await batcher.shutdown(drain: true) }
        await self.waitUntilClosed(batcher)
        #expect(await publisherErrorCode { try await batcher.submit(99) } == .closed)
        gate.open()
        await shutdown.value
        for task in tasks { try await task.value }
        #expect(probe.items == [0, 1, 2, 3, 4, 5, 6])
        #expect(probe.closeCalls.value == 1)
    }

    @Test func failingCompletesTheInFlightBatchAndFailsTheRest() async throws {
        let (batcher, probe, gate, tasks) = await self.blockedBatcher()
        let shutdown = Task { await batcher.shutdown(drain: false) }
        await self.waitUntilClosed(batcher)
        gate.open()
        await shutdown.value
        try await tasks[0].value  // was being written: completes normally
        for task in tasks.dropFirst() {
            #expect(await publisherErrorCode { try await task.value } == .shutdown)
        }
        #expect(probe.items == [0])
        #expect(probe.closeCalls.value == 1)
    }

    @Test func submitsAfterShutdownFailWithClosed() async throws {
        let (batcher, _) = makeBatcher()
        batcher.start()
        await batcher.shutdown()
        #expect(publisherErrorCode { try batcher.submitNoWait(1) } == .closed)
        #expect(await publisherErrorCode { try await batcher.submit(1) } == .closed)
        do {
            try await batcher.submit(1)
        } catch let error as PublisherError {
            #expect(!error.isRetriable)
        }
        await batcher.shutdown()  // again: returns at once
        batcher.start()  // after shutdown: no effect
    }

    @Test func shutdownBeforeStartStillWritesTheBuffer() async throws {
        let (batcher, probe) = makeBatcher()
        try batcher.submitNoWait(1)
        try batcher.submitNoWait(2)
        await batcher.shutdown(drain: true)
        #expect(probe.items == [1, 2])
        #expect(probe.closeCalls.value == 1)
    }

    @Test func shutdownBeforeStartWithoutDrainFailsTheBuffer() async throws {
        let (batcher, probe) = makeBatcher(.init(capacity: 2))
        try batcher.submitNoWait(1)
        try batcher.submitNoWait(2)
        let waiting = Task { try await batcher.submit(3) }
        await eventually { batcher.bufferedCount == 3 }
        await batcher.shutdown(drain: false)
        #expect(await publisherErrorCode { try await waiting.value } == .shutdown)
        #expect(probe.items == [])
    }

    @Test func concurrentShutdownsAllReturn() async throws {
        let (batcher, probe) = makeBatcher()
        batcher.start()
        try batcher.submitNoWait(1)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { await batcher.shutdown() } }
        }
        #expect(probe.items == [1])
        #expect(probe.closeCalls.value == 1)
    }

    @Test func cancellingRunDrainsAndStops() async throws {
        let (batcher, probe) = makeBatcher()
        let running = Task { await batcher.run() }
        try await batcher.submit(1)
        try batcher.submitNoWait(2)
        running.cancel()
        await running.value
        #expect(probe.items == [1, 2])
        #expect(publisherErrorCode { try batcher.submitNoWait(3) } == .closed)
    }
}
