import Foundation
import JadugarPublisher
import Testing

@Suite("MPSCRingBuffer: concurrent producers", .timeLimit(.minutes(1)))
struct MPSCRingBufferTests {
    static let producers = 4
    static let perProducer = 25_000

    /// Consumes `total` items on the calling thread, in batches, giving up after a deadline.
    static func consume(_ ring: MPSCRingBuffer<Int>, total: Int) -> [Int] {
        var received: [Int] = []
        received.reserveCapacity(total)
        let deadline = Date().addingTimeInterval(30)
        while received.count < total {
            // Alternate the two consumer entry points.
            if received.count % 3 == 0, let single = ring.tryPop() {
                received.append(single)
            } else if ring.popBatch(into: &received, max: 17) == 0 {
                if Date() > deadline { break }
                sched_yield()
            }
        }
        return received
    }

    @Test func producerThreadsLoseDuplicateAndReorderNothing() async {
        let ring = MPSCRingBuffer<Int>(minimumCapacity: 64)
        let received = Recorder<Int>()
        await onThreads(Self.producers + 1) { index in
            if index == Self.producers {
                received.append(contentsOf: Self.consume(ring, total: Self.producers * Self.perProducer))
                return
            }
            for sequence in 0..<Self.perProducer {
                while !ring.tryPush(encode(producer: index, sequence: sequence)) { sched_yield() }
            }
        }
        expectPerProducerFIFO(received.values, producers: Self.producers, perProducer: Self.perProducer)
        #expect(ring.isEmpty)
    }

    @Test func producerThreadsAndTasksTogether() async {
        let ring = MPSCRingBuffer<Int>(minimumCapacity: 256)
        let total = Self.producers * Self.perProducer
        let consumer = onThread { Self.consume(ring, total: total) }
        // Producers 0 and 1 are threads, 2 and 3 are tasks on the cooperative pool.
        let threads = Task {
            await onThreads(2) { index in
                for sequence in 0..<Self.perProducer {
                    while !ring.tryPush(encode(producer: index, sequence: sequence)) { sched_yield() }
                }
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for index in 2..<Self.producers {
                group.addTask {
                    for sequence in 0..<Self.perProducer {
                        while !ring.tryPush(encode(producer: index, sequence: sequence)) { await Task.yield() }
                    }
                }
            }
        }
        await threads.value
        expectPerProducerFIFO(await consumer.value, producers: Self.producers, perProducer: Self.perProducer)
    }

    @Test func closingWhileProducersPushLosesNothingAccepted() async {
        // Every push that returned true must come out; every push after close must fail.
        let ring = MPSCRingBuffer<Int>(minimumCapacity: 256)
        let accepted = Recorder<Int>()
        let received = Recorder<Int>()
        await onThreads(Self.producers + 1) { index in
            if index == Self.producers {
                // Consume while producers run, close mid-stream, then drain what got in.
                var items: [Int] = []
                while items.count < 10_000 {
                    if ring.popBatch(into: &items, max: 64) == 0 { sched_yield() }
                }
                ring.close()
                while ring.popBatch(into: &items, max: 64) > 0 || !ring.isEmpty { sched_yield() }
                received.append(contentsOf: items)
                return
            }
            var mine: [Int] = []
            for sequence in 0..<Self.perProducer {
                let value = encode(producer: index, sequence: sequence)
                while !ring.tryPush(value) {
                    if ring.isClosed {
                        accepted.append(contentsOf: mine)
                        return
                    }
                    sched_yield()
                }
                mine.append(value)
            }
            accepted.append(contentsOf: mine)
        }
        #expect(ring.isClosed)
        #expect(received.count < Self.producers * Self.perProducer, "the ring closed after producers finished")
        #expect(Set(received.values) == Set(accepted.values))
        #expect(received.count == accepted.count)
        #expect(!ring.tryPush(0))
    }
}
