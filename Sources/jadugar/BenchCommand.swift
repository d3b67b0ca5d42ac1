import ArgumentParser
import Foundation
import Jadugar
import JadugarHarness

/// `jadugar bench`: Jadugar's throughput on each broker next to the broker's own tool, same run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure publish and consume throughput on each broker beside the broker's native tool, in the same run.",
        discussion: """
            For every broker: a counted workload through Jadugar (publisher confirms, manual acks, \
            the runner's HdrHistogram latencies), then the broker's native tool with the same \
            message count and size: redis-benchmark -P 64 (XADD), a rabbitmq-c confirm loop \
            (Benchmarks/Native/amqp-confirm-loop.c, built with cc), kcat for Kafka. Prints Jadugar's \
            rate as a share of the native one: these machines are noisy, ratios travel better \
            than absolute figures. Writes the full run report to reports/<run-id>/ plus bench.md.

            Without --broker: memory:// and every broker whose URL scripts/brokers env exports \
            (JADUGAR_REDIS_URL, JADUGAR_AMQP_URL, JADUGAR_KAFKA_URL).

            Examples:
              eval "$(scripts/brokers env)"; jadugar bench
              jadugar bench --broker redis://127.0.0.1:6379 --messages 200000 --size 100
              jadugar bench --broker memory:// --no-native
            """
    )

    @Option(name: .long, help: "A broker URL. Repeat to bench several side by side.")
    var broker: [String] = []

    @Option(name: .long, help: "Messages per broker, for Jadugar and for the native tool.")
    var messages: Int = 100_000

    @Option(name: .long, help: "Payload size in bytes (at least 24: the runner stamps each payload).")
    var size: Int = 1024

    @Option(name: .long, help: "Concurrent producers on Jadugar's side.")
    var producers: Int = 4

    @Option(name: .long, help: "Where run folders go.")
    var output: String = "reports"

    @Flag(name: .long, help: "Publish persistent messages. Off by default, as the native tools publish: a persistent publish waits for the broker's disk.")
    var persistent = false

    @Flag(name: .long, help: "Skip the native tools (Jadugar only).")
    var noNative = false

    @Flag(name: .long, help: "No progress line.")
    var quiet = false

    func validate() throws {
        guard messages > 0 else { throw ValidationError("--messages must be positive, got \(messages)") }
        guard size >= 24 else { throw ValidationError("--size must be at least 24 bytes (the runner's stamp), got \(size)") }
        guard (1...256).contains(producers) else { throw ValidationError("--producers must be between 1 and 256, got \(producers)") }
        for url in broker { _ = try BrokerURL(url) }
    }

    var brokerURLs: [String] {
        if !broker.isEmpty { return broker }
        let environment = ProcessInfo.processInfo.environment
        return ["memory://"] + ["JADUGAR_REDIS_URL", "JADUGAR_AMQP_URL", "JADUGAR_KAFKA_URL"].compactMap { environment[$0] }.filter { !$0.isEmpty }
    }

    func run() async throws {
        Brokers.registerAll()
        let urls = brokerURLs
        let yaml = """
            name: bench
            description: jadugar bench, \(messages) messages of \(size) bytes per broker beside the native tools.
            brokers: [\(urls.joined(separator: ", "))]
            workloads:
              - name: bench-\(size)B
                topics: 1
                producersPerTopic: \(producers)
                subscriptionsPerTopic: 1
                consumersPerSubscription: 1
                messageSize: \(size)
                messages: \(messages)
                warmup: 0s
                inFlight: 256
                prefetch: 256
                ack: manual
                persistent: \(persistent)
            """
        let scenario = try ScenarioFile.parse(yaml, file: "jadugar-bench.yaml")
        let options = RunOptions(progress: ProgressPrinter(quiet: quiet), clientLibraries: Brokers.clientLibraries())
        let report = try await ScenarioRunner(options: options).run(scenario)

        var rows: [(broker: String, url: String, jadugar: WorkloadSummary?, native: Result<NativeBaseline?, any Error>)] = []
        for url in urls {
            let redacted = (try? BrokerURL(url).redacted) ?? url
            let name = (try? BrokerRegistry.makeBroker(url: url).name) ?? redacted
            let summary = report.workloads.first { $0.broker == name }?.summary
            if noNative {
                rows.append((name, redacted, summary, .success(nil)))
                continue
            }
            if !quiet { FileHandle.standardError.write(Data("[bench] native tool on \(redacted)\n".utf8)) }
            do {
                rows.append((name, redacted, summary, .success(try await NativeBaseline.measure(url: url, messages: messages, size: size))))
            } catch {
                rows.append((name, redacted, summary, .failure(error)))
            }
        }

        var table = """
            | broker | Jadugar publish msg/s | Jadugar consume msg/s | native tool | native publish msg/s | native consume msg/s | publish ratio | consume ratio |
            |---|---:|---:|---|---:|---:|---:|---:|

            """
        var notes: [String] = []
        for row in rows {
            let publish = row.jadugar?.publishRate, consume = row.jadugar?.consumeRate
            var cells = [row.broker, Self.figure(publish), Self.figure(consume)]
            switch row.native {
            case .success(let native?):
                cells += [native.tool, Self.figure(native.publishRate), Self.figure(native.consumeRate), Self.ratio(publish, native.publishRate), Self.ratio(consume, native.consumeRate)]
                notes.append("- \(row.broker): \(native.tool): \(native.note).")
            case .success(nil):
                cells += [noNative ? "skipped" : "none (embedded)", "", "", "", ""]
            case .failure(let error):
                cells += ["failed", "", "", "", ""]
                notes.append("- \(row.broker): the native tool failed: \(BrokerURL.redact(String(describing: error)))")
            }
            if let lost = row.jadugar?.lost, lost > 0 { notes.append("- \(row.broker): \(lost) confirmed messages were LOST in Jadugar's run.") }
            table += "| " + cells.joined(separator: " | ") + " |\n"
        }
        let text = """
            # jadugar bench: \(messages) messages of \(size) bytes

            \(table)
            Jadugar: \(producers) producers awaiting confirms (256 in flight each), one consumer with manual acks and prefetch 256, \
            \(persistent ? "persistent" : "transient (as the native tools publish)") messages; \
            rates are confirmed messages per second and delivered messages per second over the run.
            \(notes.joined(separator: "\n"))

            """
        let folder = try ReportWriter.write(report, into: URL(fileURLWithPath: output))
        try Data(text.utf8).write(to: folder.appendingPathComponent("bench.md"))
        print(text)
        print("Report: \(folder.path)/report.html and \(folder.path)/bench.md")
        let lost = report.workloads.reduce(0) { $0 + $1.summary.lost }
        if lost > 0 { throw ExitCode(1) }
    }

    static func figure(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "" }
        return String(Int(value.rounded()))
    }

    static func ratio(_ ours: Double?, _ theirs: Double?) -> String {
        guard let ours, let theirs, theirs > 0, ours.isFinite else { return "" }
        return String(format: "%.0f%%", 100 * ours / theirs)
    }
}
