import Foundation
import Jadugar
import JadugarConformance

/// What a broker's own tooling reaches on the same broker, measured in the same run as Jadugar,
/// so a benchmark reports a ratio instead of an absolute figure from a noisy machine.
///
/// | broker | tool | what it measures |
/// |---|---|---|
/// | Redis | `redis-benchmark -P 64` | pipelined `XADD` of the same payload size (publish only) |
/// | RabbitMQ | a rabbitmq-c C loop (`Benchmarks/Native/amqp-confirm-loop.c`, built with `cc`) | publish with confirms (a window of 256), then consume with acks |
/// | Kafka | `kcat -P` / `kcat -C` (librdkafka) | produce with `acks=all`, then consume from the beginning |
///
/// ```swift
/// let native = try await NativeBaseline.measure(url: "redis://127.0.0.1:6379", messages: 100_000, size: 1024)
/// print(native?.publishRate ?? 0)
/// ```
public struct NativeBaseline: Codable, Sendable, Equatable {
    /// The tool, e.g. `redis-benchmark -P 64 XADD`.
    public var tool: String
    /// Messages per second the tool published (confirmed where the tool waits for confirms).
    public var publishRate: Double
    /// Messages per second the tool consumed, when it measures consuming.
    public var consumeRate: Double?
    /// How the figures were taken, in a sentence.
    public var note: String

    /// Creates a baseline.
    public init(tool: String, publishRate: Double, consumeRate: Double?, note: String) {
        self.tool = tool
        self.publishRate = publishRate
        self.consumeRate = consumeRate
        self.note = note
    }

    /// Measures the native tool of `url`'s broker with `messages` messages of `size` bytes; `nil`
    /// for a broker without one (the embedded broker). Fails with the tool's own output when the
    /// tool is missing or fails; credentials never appear in the error.
    public static func measure(url: String, messages: Int, size: Int, sourceRoot: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) async throws -> NativeBaseline? {
        let parsed = try BrokerURL(url)
        guard messages > 0, size > 0 else {
            throw MessagingError(.invalidArgument, "a native baseline needs a positive message count and size, got \(messages) messages of \(size) bytes")
        }
        switch parsed.scheme {
        case "redis": return try await redis(parsed, messages: messages, size: size)
        case "amqp": return try await rabbitMQ(url, messages: messages, size: size, sourceRoot: sourceRoot)
        case "kafka": return try await kafka(parsed, messages: messages, size: size)
        default: return nil
        }
    }

    // MARK: Redis

    static func redis(_ url: BrokerURL, messages: Int, size: Int) async throws -> NativeBaseline {
        let key = "jadugar:bench:native:\(Message.makeID().prefix(12))"
        var arguments = ["-h", url.host.isEmpty ? "127.0.0.1" : url.host, "-p", String(url.port ?? 6379)]
        if let password = url.password {
            if let user = url.user, !user.isEmpty { arguments += ["--user", user] }
            arguments += ["-a", password, "--no-auth-warning"]
        }
        if let db = Int(url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))), db != 0 { arguments += ["--dbnum", String(db)] }
        let payload = String(repeating: "x", count: size)
        let command = arguments + ["-n", String(messages), "-P", "64", "-c", "1", "-q", "XADD", key, "*", "p", payload]
        let result = try await BrokerCommand.run(try which("redis-benchmark"), command, timeout: .seconds(600))
        _ = try? await BrokerCommand.run(try which("redis-cli"), arguments + ["DEL", key], timeout: .seconds(30))
        guard result.status == 0, let rate = parseRedisBenchmark(result.output) else {
            throw MessagingError(.brokerError, "redis-benchmark failed (status \(result.status)): \(BrokerURL.redact(String(result.output.suffix(500))))")
        }
        return NativeBaseline(
            tool: "redis-benchmark -P 64 XADD", publishRate: rate, consumeRate: nil,
            note: "one connection, 64 pipelined XADD of \(size)-byte entries, no routing and no consumer"
        )
    }

    /// The requests per second in `redis-benchmark -q` output (`XADD ...: 123456.79 requests per second, p50=...`).
    static func parseRedisBenchmark(_ output: String) -> Double? {
        // -q rewrites its progress line with carriage returns; the last figure is the final one.
        let lines = output.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
        for line in lines.reversed() {
            guard let range = line.range(of: " requests per second") else { continue }
            let head = line[..<range.lowerBound]
            guard let figure = head.split(separator: " ").last, let rate = Double(figure) else { continue }
            return rate
        }
        return nil
    }

    // MARK: RabbitMQ

    static func rabbitMQ(_ url: String, messages: Int, size: Int, sourceRoot: URL) async throws -> NativeBaseline {
        let source = sourceRoot.appendingPathComponent("Benchmarks/Native/amqp-confirm-loop.c").path
        guard FileManager.default.fileExists(atPath: source) else {
            throw MessagingError(.notFound, "the native RabbitMQ loop \(source) is missing: run jadugar bench from the repository root")
        }
        let binary = FileManager.default.temporaryDirectory.appendingPathComponent("jadugar-amqp-confirm-loop-\(getuid())").path
        let compile = try await BrokerCommand.run(try which("cc"), ["-O2", "-o", binary, source, "-lrabbitmq"], timeout: .seconds(120))
        guard compile.status == 0 else {
            throw MessagingError(.brokerError, "compiling \(source) failed (apt-get install gcc librabbitmq-dev): \(compile.output.suffix(500))")
        }
        let result = try await BrokerCommand.run(binary, [url, String(messages), String(size), "256", "256"], timeout: .seconds(600))
        guard result.status == 0 else {
            throw MessagingError(.brokerError, "the native RabbitMQ loop failed (status \(result.status)): \(BrokerURL.redact(String(result.output.suffix(500))))")
        }
        func rate(_ workload: String) -> Double? {
            result.output.split(separator: "\n").first { $0.hasPrefix("BENCH native \(workload) ") }
                .flatMap { $0.components(separatedBy: "rate=").last }
                .flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        }
        guard let publish = rate("publish-confirm") else {
            throw MessagingError(.brokerError, "the native RabbitMQ loop printed no figure: \(BrokerURL.redact(String(result.output.suffix(500))))")
        }
        return NativeBaseline(
            tool: "rabbitmq-c loop (confirms, window 256)", publishRate: publish, consumeRate: rate("consume-ack"),
            note: "one connection and channel, publisher confirms with 256 in flight, then basic.consume with prefetch 256 and one ack per message"
        )
    }

    // MARK: Kafka

    static func kafka(_ url: BrokerURL, messages: Int, size: Int) async throws -> NativeBaseline {
        let bootstrap = url.hosts.map { "\($0.host):\($0.port ?? 9092)" }.joined(separator: ",")
        let topic = "jadugar.bench.native.\(Message.makeID().prefix(12))"
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("jadugar-kcat-\(Message.makeID()).txt")
        let line = String(repeating: "x", count: size) + "\n"
        guard FileManager.default.createFile(atPath: file.path, contents: Data(String(repeating: line, count: messages).utf8)) else {
            throw MessagingError(.brokerError, "cannot write the kcat input file \(file.path)")
        }
        defer { try? FileManager.default.removeItem(at: file) }
        let kcat = try which("kcat")
        let produceStart = ContinuousClock.now
        let produce = try await BrokerCommand.run(kcat, ["-P", "-b", bootstrap, "-t", topic, "-l", file.path, "-X", "acks=all", "-X", "linger.ms=5"], timeout: .seconds(600))
        let produceTime = ContinuousClock.now - produceStart
        guard produce.status == 0 else {
            throw MessagingError(.brokerError, "kcat -P failed (status \(produce.status)): \(produce.output.suffix(500))")
        }
        let consumeStart = ContinuousClock.now
        let consume = try await BrokerCommand.run("/bin/sh", ["-c", "\"$0\" -C -b \"$1\" -t \"$2\" -o beginning -e -q -c \"$3\" | wc -l", kcat, bootstrap, topic, String(messages)], timeout: .seconds(600))
        let consumeTime = ContinuousClock.now - consumeStart
        let consumed = Int(consume.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        return NativeBaseline(
            tool: "kcat (librdkafka)",
            publishRate: Double(messages) / produceTime.seconds,
            consumeRate: consume.status == 0 && consumed == messages ? Double(messages) / consumeTime.seconds : nil,
            note: "kcat -P with acks=all, linger.ms=5 (timed including its start-up and final flush), then kcat -C from the beginning without a group"
        )
    }

    // MARK: Support

    /// The absolute path of a program on PATH, or a specific error naming the package to install.
    static func which(_ program: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        let package = ["redis-benchmark": "redis-tools", "redis-cli": "redis-tools", "kcat": "kcat", "cc": "gcc"][program] ?? program
        throw MessagingError(.notFound, "\(program) is not on PATH: apt-get install \(package) (scripts/brokers up installs the broker tools)")
    }
}
