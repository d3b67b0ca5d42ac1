import Foundation
import JadugarPublisher
import Testing

@Suite("SPSCRingBuffer: one producer, one consumer", .timeLimit(.minutes(1)))
struct SPSCRingBufferTests {
    static let total = 100_000

    static func consume(_ ring: SPSCRingBuffer<Int>, total: Int) -> [Int] {
        var received: [Int] = []
        received.reserveCapacity(total)
        let deadline = Date().addingTimeInterval(30)
        while received.count < total {
            if received.count % 5 == 0, let single = ring.tryPop() {
                received.append(single)
            } else if ring.popBatch(into: &received, max: 13) == 0 {
                if Date() > deadline { break }
                sched_yield()
            }
        }
        return received
    }

    @Test func producerThreadToConsumerThread() async {
        let ring = SPSCRingBuffer<Int>(minimumCapacity: 16)
        let received = Recorder<Int>()
        await onThreads(2) { index in
            if index == 1 {
                received.append(contentsOf: Self.consume(ring, total: Self.total))
            } else {
                for sequence in 0..<Self.total {
                    while !ring.tryPush(sequence) { sched_yield() }
                }
            }
        }
        expectPerProducerFIFO(received.values, producers: 1, perProducer: Self.total)
    }

    @Test func producerTaskToConsumerThread() async {
        let ring = SPSCRingBuffer<Int>(minimumCapacity: 256)
        let consumer = onThread { Self.consume(ring, total: Self.total) }
        let producer = Task {
            for sequence in 0..<Self.total {
                while !ring.tryPush(sequence) { await Task.yield() }
            }
        }
        await producer.value
        expectPerProducerFIFO(await consumer.value, producers: 1, perProducer: Self.total)
    }
}
