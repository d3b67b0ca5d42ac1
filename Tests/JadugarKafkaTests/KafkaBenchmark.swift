import Foundation
import Jadugar
import JadugarKafka
import Testing

/// Jadugar's side of `scripts/bench-kafka`: produce and consume throughput through the adapter,
/// for comparison with kcat on the same broker, message count and payload size. Not a timed test:
/// it only runs with `JADUGAR_BENCH=1` and prints its figures.
///
/// ```sh
/// JADUGAR_BENCH=1 JADUGAR_BENCH_MESSAGES=200000 JADUGAR_BENCH_SIZE=100 swift test -c release --filter KafkaBenchmark
/// ```
@Suite("KafkaBenchmark", .enabled(if: ProcessInfo.processInfo.environment["JADUGAR_BENCH"] == "1", "a benchmark: runs only with JADUGAR_BENCH=1 (see scripts/bench-kafka)"))
struct KafkaBenchmark {
    static var messages: Int { ProcessInfo.processInfo.environment["JADUGAR_BENCH_MESSAGES"].flatMap(Int.init) ?? 200_000 }
    static var size: Int { ProcessInfo.processInfo.environment["JADUGAR_BENCH_SIZE"].flatMap(Int.init) ?? 100 }
    /// Publishes in flight at once (each `publish` awaits its delivery report).
    static var inFlight: Int { ProcessInfo.processInfo.environment["JADUGAR_BENCH_IN_FLIGHT"].flatMap(Int.init) ?? 4096 }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    @Test("produce and consume throughput")
    func throughput() async throws {
        let url = try KafkaTestEnvironment.requireURL()
        let n = Self.messages
        let size = Self.size
        // The same producer settings kcat gets from scripts/bench-kafka: librdkafka's 5 ms linger,
        // acks=all, no idempotence (Tansu answers idempotent producers slowly).
        let broker = try await KafkaTestEnvironment.connectedBroker(url) { configuration in
            configuration.producerProperties["linger.ms"] = "5"
            configuration.producerProperties["enable.idempotence"] = "false"
            configuration.publishBufferCapacity = 16384
            configuration.publishMaxBatch = 1024
            if let limit = ProcessInfo.processInfo.environment["JADUGAR_BENCH_BUFFER"].flatMap(Int.init) { configuration.maxBufferedMessages = limit }
        }
        let topic = uniqueName("bench")
        try await broker.createTopic(topic, partitions: 4)
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: size)

        let workers = min(Self.inFlight, n)
        let produceStart = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<workers {
                let count = n / workers + (worker < n % workers ? 1 : 0)
                group.addTask {
                    for _ in 0..<count {
                        try await broker.publish(Message(topic: topic, payload: payload), options: .default)
                    }
                }
            }
            try await group.waitForAll()
        }
        let produceSeconds = Self.seconds(ContinuousClock.now - produceStart)

        let stream = try await broker.subscribe(topic, options: SubscribeOptions(group: uniqueName("g"), prefetch: 256))
        // The clock starts at the first message: the group join (seconds on Tansu) is not throughput.
        let first = try #require(try await next(stream, within: .seconds(60)), "the first message did not arrive")
        try await first.ack()
        let consumeStart = ContinuousClock.now
        // A watchdog ends the stream if messages stop coming; the loop itself calls next() bare.
        let progress = Box(1)
        let watchdog = Task {
            var last = 0
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(30))
                let now = progress.value
                if now == last { await stream.close() }
                last = now
            }
        }
        var consumed = 1
        while consumed < n, let delivery = try await stream.next() {
            try await delivery.ack()
            consumed += 1
            if consumed & 1023 == 0 { progress.withLock { $0 = consumed } }
        }
        let consumeSeconds = Self.seconds(ContinuousClock.now - consumeStart)
        watchdog.cancel()
        await stream.close()
        try await broker.disconnect()

        let produceRate = Double(n) / produceSeconds
        let consumeRate = Double(consumed - 1) / consumeSeconds
        let line = "jadugar produce \(n) \(size) \(String(format: "%.3f", produceSeconds)) \(Int(produceRate))\njadugar consume \(consumed) \(size) \(String(format: "%.3f", consumeSeconds)) \(Int(consumeRate))\n"
        print("[kafka bench] produce: \(n) messages of \(size) bytes in \(String(format: "%.2f", produceSeconds)) s = \(Int(produceRate)) msgs/s (publish awaits each delivery report, \(workers) in flight)")
        print("[kafka bench] consume: \(consumed) messages in \(String(format: "%.2f", consumeSeconds)) s after the first = \(Int(consumeRate)) msgs/s (group consumer, ack per message)")
        if let path = ProcessInfo.processInfo.environment["JADUGAR_BENCH_OUTPUT"] {
            try Data(line.utf8).write(to: URL(fileURLWithPath: path))
        }
        #expect(consumed == n, "only \(consumed) of \(n) messages were consumed")
    }
}
