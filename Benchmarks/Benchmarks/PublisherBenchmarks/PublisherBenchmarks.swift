import Atomics
import Benchmark
import Jadugar
import JadugarPublisher

// Throughput and latency are for the reports (2-core machines are noisy); CI gates only on the
// allocation counts, with the absolute p90 tolerances below and thresholds in Benchmarks/Thresholds.
//
// Names avoid spaces: package-benchmark 1.38 writes threshold files with spaces replaced by `_`
// but looks them up by the raw name, so a name with a space never finds its thresholds.

let benchmarks: @Sendable () -> Void = {
    let noAllocations: [BenchmarkMetric: BenchmarkThresholds] = [
        .mallocCountTotal: .init(absolute: [.p90: 2])
    ]
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        timeUnits: .milliseconds,
        warmupIterations: 2,
        scalingFactor: .mega,
        maxDuration: .seconds(2),
        maxIterations: 50,
        thresholds: noAllocations
    )

    // MARK: Ring buffers
    // One iteration moves a million Ints from the producer thread(s) to a consumer thread;
    // throughput is in millions of transfers per second.

    func ringBenchmark<Ring: AnyObject & Sendable>(
        _ name: String,
        helpers: Int,
        makeRing: @escaping () -> Ring,
        push: @escaping (Ring, Int) -> Bool,
        drain: @escaping @Sendable (Ring, inout [Int]) -> Int
    ) {
        let fixture = Fixture<RingTransfer<Ring>>()
        Benchmark(name) { benchmark in
            fixture.value.transfer(benchmark.scaledIterations.count)
        } setup: {
            fixture.set(RingTransfer(ring: makeRing(), helpers: helpers, push: push, drain: drain))
        } teardown: {
            fixture.take()?.stop()
        }
    }

    ringBenchmark(
        "MPSCRingBuffer_1P1C",
        helpers: 0,
        makeRing: { MPSCRingBuffer<Int>(minimumCapacity: 4096) },
        push: { $0.tryPush($1) },
        drain: { $0.popBatch(into: &$1, max: 1024) }
    )
    ringBenchmark(
        "MPSCRingBuffer_2P1C",
        helpers: 1,
        makeRing: { MPSCRingBuffer<Int>(minimumCapacity: 4096) },
        push: { $0.tryPush($1) },
        drain: { $0.popBatch(into: &$1, max: 1024) }
    )
    ringBenchmark(
        "SPSCRingBuffer_1P1C",
        helpers: 0,
        makeRing: { SPSCRingBuffer<Int>(minimumCapacity: 4096) },
        push: { $0.tryPush($1) },
        drain: { $0.popBatch(into: &$1, max: 1024) }
    )
    ringBenchmark(
        "MPMCRingBuffer_2P1C",
        helpers: 1,
        makeRing: { MPMCRingBuffer<Int>(minimumCapacity: 4096) },
        push: { $0.tryPush($1) },
        drain: { $0.popBatch(into: &$1, max: 1024) }
    )

    // One iteration is one round trip through two MPSC rings and an echo thread: its p50 and p99
    // are the hand-off latency (times two, plus the measurement's own overhead).
    let pingPong = Fixture<PingPong>()
    Benchmark(
        "MPSCRingBuffer_roundTrip",
        configuration: .init(
            metrics: [.wallClock, .mallocCountTotal],
            timeUnits: .nanoseconds,
            warmupIterations: 1_000,
            scalingFactor: .one,
            maxDuration: .seconds(2),
            maxIterations: 100_000,
            thresholds: noAllocations
        )
    ) { benchmark in
        blackHole(pingPong.value.roundTrip(benchmark.currentIteration))
    } setup: {
        pingPong.set(PingPong())
    } teardown: {
        pingPong.take()?.stop()
    }

    // MARK: Batcher

    // Fire-and-forget from one thread to a closure sink on the I/O thread; one iteration is a
    // thousand items, so throughput is in thousands of items per second.
    let noWait = Fixture<(Batcher<Int>, SinkCounter)>()
    Benchmark(
        "Batcher_submitNoWait",
        configuration: .init(
            metrics: [.throughput, .wallClock, .mallocCountTotal],
            timeUnits: .microseconds,
            warmupIterations: 10,
            scalingFactor: .kilo,
            maxDuration: .seconds(2),
            maxIterations: 10_000,
            thresholds: noAllocations
        )
    ) { benchmark in
        let (batcher, counter) = noWait.value
        let target = counter.written.load(ordering: .acquiring) + benchmark.scaledIterations.count
        var spins = 0
        for value in benchmark.scaledIterations {
            while (try? batcher.submitNoWait(value)) == nil { backOff(&spins) }
        }
        counter.waitFor(target)
    } setup: {
        let counter = SinkCounter()
        let batcher = Batcher<Int>(configuration: .init(capacity: 4096, maxBatch: 256)) { items in
            counter.written.add(items.count, ordering: .releasing)
        }
        batcher.start()
        noWait.set((batcher, counter))
    } teardown: {
        await noWait.take()?.0.shutdown()
    }

    // One task awaiting each confirmation in turn: the whole submit-to-confirm round trip,
    // including the task's suspension and resumption.
    let awaited = Fixture<Batcher<Int>>()
    Benchmark(
        "Batcher_submitAwaitConfirmation",
        configuration: .init(
            metrics: [.throughput, .wallClock, .mallocCountTotal],
            timeUnits: .microseconds,
            warmupIterations: 2,
            scalingFactor: .kilo,
            maxDuration: .seconds(2),
            maxIterations: 1_000,
            thresholds: [.mallocCountTotal: .init(absolute: [.p90: 100])]
        )
    ) { benchmark in
        let batcher = awaited.value
        for value in benchmark.scaledIterations {
            try? await batcher.submit(value)
        }
    } setup: {
        let batcher = Batcher<Int>(configuration: .init(capacity: 4096, maxBatch: 256)) { items in
            blackHole(items.count)
        }
        batcher.start()
        awaited.set(batcher)
    } teardown: {
        await awaited.take()?.shutdown()
    }

    // MARK: Connection pool

    let pool = Fixture<ConnectionPool<Int>>()
    Benchmark(
        "ConnectionPool_checkoutReturn",
        configuration: .init(
            metrics: [.throughput, .wallClock, .mallocCountTotal],
            timeUnits: .microseconds,
            warmupIterations: 2,
            scalingFactor: .kilo,
            maxDuration: .seconds(2),
            maxIterations: 1_000,
            thresholds: [.mallocCountTotal: .init(absolute: [.p90: 100])]
        )
    ) { benchmark in
        let pool = pool.value
        for _ in benchmark.scaledIterations {
            guard let lease = try? await pool.checkout() else { fatalError("checkout failed") }
            blackHole(lease.connection)
            await pool.return(lease)
        }
    } setup: {
        pool.set(ConnectionPool<Int>(configuration: .init(maxConnections: 4), make: { 42 }, close: { _ in }))
    } teardown: {
        await pool.take()?.shutdown()
    }

    // MARK: End to end on the memory broker

    // Publish -> route -> queue -> consumer stream -> ack, in one process: one iteration publishes a
    // thousand 64-byte messages from 4 concurrent publishers and waits until the consumer has taken
    // them all, so throughput is in thousands of delivered messages per second. Messages allocate
    // (a Message, its payload and metadata), so allocations are gated per thousand, not at zero.
    let endToEnd = Fixture<MemoryEndToEnd>()
    Benchmark(
        "MemoryBroker_publishDeliver",
        configuration: .init(
            metrics: [.throughput, .wallClock, .mallocCountTotal],
            timeUnits: .microseconds,
            warmupIterations: 3,
            scalingFactor: .kilo,
            maxDuration: .seconds(3),
            maxIterations: 1_000,
            thresholds: [.mallocCountTotal: .init(relative: [.p90: 25])]
        )
    ) { benchmark in
        try await endToEnd.value.round(benchmark.scaledIterations.count)
    } setup: {
        endToEnd.set(try await MemoryEndToEnd.start())
    } teardown: {
        await endToEnd.take()?.stop()
    }
}

/// A private memory broker with one queue and one consumer that counts what it receives.
final class MemoryEndToEnd: Sendable {
    let broker: InMemoryBroker
    /// Shared with the consumer task, which starts before this object exists.
    let received: ManagedAtomic<Int>
    let consumer: Task<Void, Never>
    let payload = [UInt8](repeating: 0x2A, count: 64)

    private init(broker: InMemoryBroker, received: ManagedAtomic<Int>, consumer: Task<Void, Never>) {
        self.broker = broker
        self.received = received
        self.consumer = consumer
    }

    static func start() async throws -> MemoryEndToEnd {
        let broker = InMemoryBroker()
        try await broker.connect()
        try await broker.createQueue("bench", options: QueueOptions())
        let stream = try await broker.consume(queue: "bench", options: ConsumeOptions(prefetch: 1024, autoAck: true))
        let received = ManagedAtomic<Int>(0)
        let consumer = Task {
            while let delivery = try? await stream.next() {
                blackHole(delivery)
                received.wrappingIncrement(ordering: .releasing)
            }
        }
        return MemoryEndToEnd(broker: broker, received: received, consumer: consumer)
    }

    func round(_ count: Int) async throws {
        let target = received.load(ordering: .acquiring) + count
        let publishers = 4
        try await withThrowingTaskGroup(of: Void.self) { group in
            for p in 0..<publishers {
                group.addTask {
                    for _ in stride(from: p, to: count, by: publishers) {
                        try await self.broker.send(Message(payload: self.payload), toQueue: "bench")
                    }
                }
            }
            try await group.waitForAll()
        }
        while received.load(ordering: .acquiring) < target { await Task.yield() }
    }

    func stop() async {
        consumer.cancel()
        try? await broker.disconnect()
    }
}
