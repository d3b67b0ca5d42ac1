import Foundation
import JadugarPublisher
import Testing

@Suite("MPMCRingBuffer: concurrent producers and consumers", .timeLimit(.minutes(1)))
struct MPMCRingBufferTests {
    static let producers = 3
    static let consumers = 2
    static let perProducer = 20_000

    /// Consumes until `taken` reaches `total`; returns what this consumer took, in order.
    static func consume(_ ring: MPMCRingBuffer<Int>, taken: Counter, total: Int) -> [Int] {
        var mine: [Int] = []
        let deadline = Date().addingTimeInterval(30)
        while taken.value < total {
            let count = ring.popBatch(into: &mine, max: 7)
            if count > 0 {
                taken.increment(by: count)
            } else {
                if Date() > deadline { break }
                sched_yield()
            }
        }
        return mine
    }

    /// Each consumer must see every producer's items in order; together they must see all, once.
    static func check(_ perConsumer: [[Int]]) {
        var all: [Int] = []
        for received in perConsumer {
            var last = Array(repeating: -1, count: producers)
            for value in received {
                let producer = value >> 32
                let sequence = value & 0xFFFF_FFFF
                #expect(sequence > last[producer], "one consumer saw producer \(producer) out of order")
                last[producer] = sequence
            }
            all += received
        }
        #expect(all.count == producers * perProducer)
        let expected = (0..<producers).flatMap { producer in
            (0..<perProducer).map { encode(producer: producer, sequence: $0) }
        }
        #expect(all.sorted() == expected.sorted(), "items lost or duplicated")
    }

    @Test func producerAndConsumerThreads() async {
        let ring = MPMCRingBuffer<Int>(minimumCapacity: 64)
        let taken = Counter()
        let results = Locked<[[Int]]>([])
        let total = Self.producers * Self.perProducer
        await onThreads(Self.producers + Self.consumers) { index in
            if index >= Self.producers {
                let mine = Self.consume(ring, taken: taken, total: total)
                results.withLock { $0.append(mine) }
                return
            }
            for sequence in 0..<Self.perProducer {
                while !ring.tryPush(encode(producer: index, sequence: sequence)) { sched_yield() }
            }
        }
        Self.check(results.withLock { $0 })
    }

    @Test func producerTasksAndConsumerTasksAndThreads() async {
        let ring = MPMCRingBuffer<Int>(minimumCapacity: 256)
        let taken = Counter()
        let total = Self.producers * Self.perProducer
        // One consumer thread, one consumer task; producers are tasks.
        let consumerThread = onThread { Self.consume(ring, taken: taken, total: total) }
        let consumerTask = Task {
            var mine: [Int] = []
            while taken.value < total {
                if let value = ring.tryPop() {
                    mine.append(value)
                    taken.increment()
                } else {
                    await Task.yield()
                }
            }
            return mine
        }
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<Self.producers {
                group.addTask {
                    for sequence in 0..<Self.perProducer {
                        while !ring.tryPush(encode(producer: index, sequence: sequence)) { await Task.yield() }
                    }
                }
            }
        }
        Self.check([await consumerThread.value, await consumerTask.value])
    }
}
