import Foundation
import Jadugar
import JadugarRabbitMQ
import Testing

/// Throughput of the adapter, for `scripts/bench-rabbitmq` (which runs the same workload through a
/// plain C loop over rabbitmq-c and prints both). Not a timed test: it runs only with
/// `JADUGAR_BENCH=1`, in release mode:
///
/// ```
/// JADUGAR_BENCH=1 swift test -c release --filter RabbitMQBenchmark
/// ```
///
/// Workload (the C loop does the same): `JADUGAR_BENCH_MESSAGES` messages (default 50,000) of
/// `JADUGAR_BENCH_SIZE` bytes (default 128), transient, to a fresh non-durable queue through the
/// default exchange; publishing keeps `JADUGAR_BENCH_WINDOW` (default 256) publishes awaiting
/// their confirm; consuming uses prefetch `JADUGAR_BENCH_PREFETCH` (default 256) and acknowledges
/// every message on its own.
@Suite("RabbitMQBenchmark", .timeLimit(.minutes(10)))
struct RabbitMQBenchmark {
    static var enabled: Bool { ProcessInfo.processInfo.environment["JADUGAR_BENCH"] == "1" }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.3f", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }

    static func rate(_ total: Int, _ duration: Duration) -> Int {
        Int(Double(total) / (Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18))
    }

    static func setting(_ name: String, _ fallback: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap(Int.init) ?? fallback
    }

    @Test("publish with confirms, then consume with manual acks", .enabled(if: RabbitMQBenchmark.enabled, "set JADUGAR_BENCH=1 (release build) to run the benchmark"))
    func throughput() async throws {
        let total = Self.setting("JADUGAR_BENCH_MESSAGES", 50_000)
        let size = Self.setting("JADUGAR_BENCH_SIZE", 128)
        let window = Self.setting("JADUGAR_BENCH_WINDOW", 256)
        let prefetch = Self.setting("JADUGAR_BENCH_PREFETCH", 256)
        var configuration = try RabbitMQTestEnvironment.configuration(name: RabbitMQTestEnvironment.uniqueName("bench"))
        if let linger = ProcessInfo.processInfo.environment["JADUGAR_BENCH_LINGER_US"].flatMap(Int.init) {
            configuration.publishLinger = .microseconds(linger)
        }
        let broker = RabbitMQBroker(configuration: configuration)
        try await broker.connect()
        let queue = RabbitMQTestEnvironment.uniqueName("bench")
        try await broker.createQueue(queue, options: QueueOptions(durable: false))
        let payload = [UInt8](repeating: 0x61, count: size)
        let options = PublishOptions(persistent: false)

        // Warm-up: connections, buffers, the queue process.
        for _ in 0..<1000 { try await broker.publish(exchange: "", routingKey: queue, message: Message(payload: payload), options: options) }
        _ = try await broker.purgeQueue(queue)

        let publishStart = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            let perTask = total / window
            for worker in 0..<window {
                let count = perTask + (worker < total % window ? 1 : 0)
                group.addTask {
                    for _ in 0..<count {
                        try await broker.publish(exchange: "", routingKey: queue, message: Message(payload: payload), options: options)
                    }
                }
            }
            try await group.waitForAll()
        }
        let publishTime = ContinuousClock.now - publishStart
        #expect(try await broker.queueInfo(queue).ready == total)

        if ProcessInfo.processInfo.environment["JADUGAR_BENCH_PHASE"] == "publish" {
            print("BENCH jadugar publish-confirm messages=\(total) size=\(size) window=\(window) seconds=\(Self.seconds(publishTime)) rate=\(Self.rate(total, publishTime))")
            try await broker.deleteQueue(queue)
            try await broker.disconnect()
            return
        }
        let stream = try await broker.consume(queue: queue, options: ConsumeOptions(prefetch: prefetch))
        let consumeStart = ContinuousClock.now
        var consumed = 0
        while consumed < total, let delivery = try await stream.next() {
            try await delivery.ack()
            consumed += 1
        }
        let consumeTime = ContinuousClock.now - consumeStart
        #expect(consumed == total)
        await stream.close()
        try await broker.deleteQueue(queue)
        try await broker.disconnect()

        print("BENCH jadugar publish-confirm messages=\(total) size=\(size) window=\(window) seconds=\(Self.seconds(publishTime)) rate=\(Self.rate(total, publishTime))")
        print("BENCH jadugar consume-ack messages=\(total) size=\(size) prefetch=\(prefetch) seconds=\(Self.seconds(consumeTime)) rate=\(Self.rate(total, consumeTime))")
    }
}
