import Foundation
import Jadugar
import JadugarKafka
import Logging
import Synchronization
import Testing

/// The test broker's environment, as `eval "$(scripts/brokers env)"` sets it.
enum KafkaTestEnvironment {
    static let urlVariable = "JADUGAR_KAFKA_URL"

    /// The broker URL, or cancels the test (as skipped) when broker tests are opted out with
    /// `JADUGAR_SKIP_BROKER_TESTS=1`. Without either, the test fails naming the variable.
    static func requireURL() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment[urlVariable], !url.isEmpty { return url }
        if environment["JADUGAR_SKIP_BROKER_TESTS"] == "1" {
            try Test.cancel("skipped: JADUGAR_SKIP_BROKER_TESTS=1 and \(urlVariable) is not set")
        }
        Issue.record("\(urlVariable) is not set: run `scripts/brokers up && eval \"$(scripts/brokers env)\"` first, or set JADUGAR_SKIP_BROKER_TESTS=1 to skip broker tests")
        throw MissingEnvironment()
    }

    struct MissingEnvironment: Error {}

    /// Whether the test broker keeps data across restarts (Tansu on S3 storage).
    static var isDurable: Bool {
        ProcessInfo.processInfo.environment["JADUGAR_KAFKA_STORAGE"] == "s3"
    }

    /// A topic and group prefix unique to this test process, so that runs against one long-lived
    /// broker never meet each other's topics, offsets or groups (the conformance suite's names
    /// repeat from one process to the next).
    static let topicPrefix = "jt\(Message.makeID().prefix(8))."

    /// The longest a test waits for one expected delivery (or for a group member to get partitions).
    ///
    /// Tansu completes a new group's join in about `session.timeout.ms / 2`, and a member joins
    /// again when the metadata of its subscribed topics changes; with other builds and test runs on
    /// the same two cores, a first delivery once took just over 30 s (the conformance suite's
    /// default). A bound, not a speed expectation: every wait returns as soon as the message is there.
    static let deliveryTimeout = Duration.seconds(60)

    /// The settings tests use.
    static func configuration(_ url: String) throws -> KafkaConfiguration {
        var configuration = try KafkaConfiguration(url: url)
        configuration.topicPrefix = topicPrefix
        configuration.persistent = isDurable
        // Admin requests, scans and a first get(queue:) (a group join) wait for Tansu, which is
        // slow to answer while the machine is busy; each returns as soon as it has its answer.
        configuration.operationTimeout = deliveryTimeout
        // Tansu joins a group in about session.timeout.ms / 2.
        configuration.sessionTimeout = .seconds(6)
        configuration.heartbeatInterval = .seconds(1)
        // Tansu answers idempotent producers slowly (about 12 ms a message alone, 200 ms with five
        // producers at once, with ProducerFenced errors in its log); plain acks=all producers take
        // well under a millisecond. Real Kafka keeps the adapter's default (idempotence on).
        if ProcessInfo.processInfo.environment["JADUGAR_KAFKA_IDEMPOTENCE"] != "1" {
            configuration.producerProperties["enable.idempotence"] = "false"
        }
        return configuration
    }

    /// A connected client of the test broker; `configure` adjusts the settings first.
    static func connectedBroker(_ url: String, _ configure: (inout KafkaConfiguration) -> Void = { _ in }) async throws -> KafkaBroker {
        var configuration = try configuration(url)
        configure(&configuration)
        let broker = KafkaBroker(configuration: configuration, logger: logger)
        try await broker.connect()
        return broker
    }

    /// The Kafka name of a Jadugar topic (with this process's prefix), for kcat.
    static func kafkaTopic(_ topic: String) -> String { topicPrefix + topic }

    /// A logger to stderr at the level in `JADUGAR_KAFKA_TEST_LOG` (`debug`, `info`, ...); silent without it.
    static let logger: Logger = {
        guard let text = ProcessInfo.processInfo.environment["JADUGAR_KAFKA_TEST_LOG"], let level = Logger.Level(rawValue: text) else {
            return Logger(label: "jadugar.kafka.test", factory: { _ in SwiftLogNoOpLogHandler() })
        }
        var logger = Logger(label: "jadugar.kafka.test", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = level
        return logger
    }()
}

/// Lets a fixed number of broker tests run at once (`JADUGAR_KAFKA_PARALLEL`, default 6): the
/// test broker (Tansu on a shared 2-core machine) times out requests when thirty scenarios start
/// together, and runs them fine six at a time.
actor BrokerTestGate {
    static let shared = BrokerTestGate(limit: ProcessInfo.processInfo.environment["JADUGAR_KAFKA_PARALLEL"].flatMap(Int.init) ?? 6)

    private let limit: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    private func enter() async {
        if running < limit {
            running += 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func leave() {
        if waiting.isEmpty {
            running -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }

    /// Runs `body` when a slot is free.
    nonisolated func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await enter()
        do {
            let value = try await body()
            await leave()
            return value
        } catch {
            await leave()
            throw error
        }
    }
}

/// A unique name per test: `kt.<label>.<id>`.
func uniqueName(_ label: String) -> String {
    "kt.\(label).\(Message.makeID().suffix(12))"
}

/// Polls a condition until it holds or the time runs out; returns whether it held.
func eventually(within limit: Duration, _ condition: @Sendable () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// The next delivery, or `nil` when none arrives within `limit`.
func next(_ stream: DeliveryStream, within limit: Duration) async throws -> Delivery? {
    try await withThrowingTaskGroup(of: Delivery?.self) { group in
        group.addTask { try await stream.next() }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        return try await group.next() ?? nil
    }
}

/// A value behind a lock.
final class Box<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
    var value: Value { mutex.withLock { $0 } }
}

/// Runs kcat (with the test environment, so `LD_LIBRARY_PATH` points at a current librdkafka).
enum Kcat {
    struct Output: Sendable {
        var status: Int32
        var stdout: Data
        var stderr: String
    }

    static var path: String {
        ProcessInfo.processInfo.environment["JADUGAR_KCAT"] ?? "/usr/bin/kcat"
    }

    static var brokers: String {
        ProcessInfo.processInfo.environment["JADUGAR_KAFKA_BROKERS"] ?? "127.0.0.1:9092"
    }

    /// Runs kcat with `arguments`, writing `input` to its standard input.
    static func run(_ arguments: [String], input: Data = Data(), timeout: Duration = .seconds(30)) async throws -> Output {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            Issue.record("kcat is not installed at \(path): scripts/brokers up installs it (Debian package kcat), or set JADUGAR_KCAT")
            throw MissingEnvironment()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        let finished = Box(false)
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { process in
                finished.withLock { $0 = true }
                continuation.resume(returning: process.terminationStatus)
            }
            do {
                try process.run()
            } catch {
                continuation.resume(throwing: error)
                return
            }
            stdin.fileHandleForWriting.write(input)
            try? stdin.fileHandleForWriting.close()
            let pid = process.processIdentifier
            Task {
                try? await Task.sleep(for: timeout)
                // Only the kcat this call started, by its own pid.
                if !finished.value { kill(pid, SIGTERM) }
            }
        }
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return Output(status: status, stdout: out, stderr: err)
    }

    struct MissingEnvironment: Error {}
}
