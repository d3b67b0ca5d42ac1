import Foundation
import Jadugar
import JadugarRedis
import Synchronization
import Testing

extension RedisTests {
    /// The Jadugar side of `scripts/bench-redis`: pipelined, confirmed publishes
    /// through one broker client, measured in messages per second. A benchmark, not a test: it
    /// runs only with `JADUGAR_BENCH=1` (ideally in release: `swift test -c release`).
    ///
    /// Environment: `JADUGAR_BENCH_COUNT` (messages, default 100,000), `JADUGAR_BENCH_PUBLISHERS`
    /// (concurrent publishing tasks, each awaiting its confirmation; default 4096, as many messages
    /// in flight as `redis-benchmark -P 64` keeps with 64-message calls), `JADUGAR_BENCH_PREFIX` (key prefix, kept
    /// afterwards so that redis-benchmark can replay the same command against the same topology),
    /// `JADUGAR_BENCH_ARGS_FILE` (where to write the `FCALL ... publish` call the I/O thread sends
/// for a full load of messages, one argument per line; the message count goes to `<file>.count`).
    @Suite("RedisPublishBenchmark")
    struct RedisPublishBenchmark {
        @Test("pipelined publish throughput")
        func publishThroughput() async throws {
            let environment = ProcessInfo.processInfo.environment
            guard environment["JADUGAR_BENCH"] == "1" else {
                try Test.cancel("skipped: a benchmark, not a test; run it with JADUGAR_BENCH=1 (scripts/bench-redis does)")
            }
            let count = environment["JADUGAR_BENCH_COUNT"].flatMap(Int.init) ?? 100_000
            let publishers = environment["JADUGAR_BENCH_PUBLISHERS"].flatMap(Int.init) ?? 4096
            let prefix = environment["JADUGAR_BENCH_PREFIX"] ?? RedisTestEnvironment.uniquePrefix("bench")
            let broker = try await Broker.connect(prefix: prefix)
            let topic = "bench.published"
            try await broker.createQueue("bench", options: QueueOptions())
            try await broker.bind(queue: "bench", exchange: broker.defaultExchange, routingKey: topic)
            let payload = [UInt8](repeating: UInt8(ascii: "x"), count: 100)
            let sample = Message(topic: topic, payload: payload, metadata: MessageMetadata(contentType: "application/octet-stream"))
            if let file = environment["JADUGAR_BENCH_ARGS_FILE"] {
                // The call the I/O thread sends, with a full load of messages.
                let perCall = broker.configuration.messagesPerCall
                try broker.publishArguments(sample, count: perCall).joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
                try String(perCall).write(toFile: file + ".count", atomically: true, encoding: .utf8)
            }

            func run(_ total: Int) async throws -> Duration {
                let next = Ticket()
                let start = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<publishers {
                        group.addTask {
                            while next.take() < total {
                                try await broker.publish(Message(topic: topic, payload: payload, metadata: sample.metadata), options: .default)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                return ContinuousClock.now - start
            }
            _ = try await run(min(count / 10, 10_000))
            _ = try await broker.purgeQueue("bench")
            let elapsed = try await run(count)
            let rate = Double(count) / elapsed.seconds
            let ready = try await broker.queueInfo("bench").ready
            #expect(ready == count, "\(ready) of \(count) published messages are in the queue")
            print("JADUGAR_BENCH publish messages=\(count) publishers=\(publishers) seconds=\(String(format: "%.3f", elapsed.seconds)) msgs_per_s=\(Int(rate))")
            _ = try await broker.purgeQueue("bench")
            try await broker.disconnect()
            if environment["JADUGAR_BENCH_PREFIX"] == nil { try await RedisCLI.deleteKeys(prefix: prefix) }
        }
    }
}

/// Hands out 0, 1, 2, ... to concurrent publishers.
private final class Ticket: Sendable {
    private let value = Atomic<Int>(0)
    func take() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}

extension Duration {
    fileprivate var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
