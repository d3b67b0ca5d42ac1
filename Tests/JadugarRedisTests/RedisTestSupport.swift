import Foundation
import Jadugar
import JadugarConformance

#if canImport(Glibc)
import Glibc
#endif
import JadugarRedis
import Testing

/// Every Redis test, serialized: the reconnect tests restart the shared redis-server, which would
/// break any test running beside them, and the machine has two cores.
@Suite("Redis adapter", .serialized, .timeLimit(.minutes(10)))
struct RedisTests {}

/// The broker under test, from the environment that `eval "$(scripts/brokers env)"` sets up.
enum RedisTestEnvironment {
    static let urlVariable = "JADUGAR_REDIS_URL"

    private static var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The Redis URL. Fails the test, naming the variable, when it is missing, unless
    /// `JADUGAR_SKIP_BROKER_TESTS=1` opts out (then the test is skipped with that reason).
    static func url() throws -> String {
        if let url = environment[urlVariable], !url.isEmpty { return url }
        if environment["JADUGAR_SKIP_BROKER_TESTS"] == "1" {
            try Test.cancel("skipped: \(urlVariable) is not set and JADUGAR_SKIP_BROKER_TESTS=1")
        }
        throw TestFailure("\(urlVariable) is not set: run `scripts/brokers up` and `eval \"$(scripts/brokers env)\"` first, or set JADUGAR_SKIP_BROKER_TESTS=1 to skip the broker tests")
    }

    /// The script that restarts the brokers (`scripts/brokers`), when the environment names it.
    static var brokerScript: String? { environment["JADUGAR_BROKER_SCRIPT"].flatMap { $0.isEmpty ? nil : $0 } }

    /// A key prefix no other test or run uses, so every test works in its own key space.
    static func uniquePrefix(_ label: String) -> String {
        "jadugar-test:\(label):\(Message.makeID().suffix(12)):"
    }

    /// A configuration for a test's key space. Persistence is declared only when the server
    /// really runs with `appendonly yes`.
    static func configuration(prefix: String, _ change: (inout RedisBroker.Configuration) -> Void = { _ in }) async throws -> RedisBroker.Configuration {
        var configuration = RedisBroker.Configuration(keyPrefix: prefix)
        configuration.persistence = try await RedisCLI.appendOnly()
        change(&configuration)
        return configuration
    }

    /// Restarts redis-server through `scripts/brokers restart redis` (data is kept: appendonly),
    /// with a clean signal mask (see ``BrokerCommand``) so the next restart can stop it.
    static func restartRedis() async throws {
        guard let script = brokerScript else { throw TestFailure("JADUGAR_BROKER_SCRIPT is not set; cannot restart redis") }
        let result = try await BrokerCommand.run(script, ["restart", "redis"], timeout: .seconds(120))
        guard result.status == 0 else {
            throw TestFailure("\(script) restart redis failed with status \(result.status): \(result.output.suffix(2000))")
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs a program with arguments (no shell), with a bound on how long it may take.
enum Shell {
    struct Result: Sendable {
        var status: Int32
        var stdout: Data
        var stderr: String
        var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    static func run(_ program: String, _ arguments: [String], stdin: Data? = nil, timeout: Duration = .seconds(30)) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : "/usr/bin/env")
        process.arguments = program.hasPrefix("/") ? arguments : [program] + arguments
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try? input.fileHandleForWriting.close()
        // Read both pipes on threads of their own so that a chatty child never blocks on a full pipe.
        let stdout = Task.detached { out.fileHandleForReading.readDataToEndOfFile() }
        let stderr = Task.detached { err.fileHandleForReading.readDataToEndOfFile() }
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                throw TestFailure("\(program) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return Result(status: process.terminationStatus, stdout: await stdout.value, stderr: String(decoding: await stderr.value, as: UTF8.self))
    }
}

/// `redis-cli` against the server of ``RedisTestEnvironment/url()``: the standard client the
/// interop tests read and write Jadugar's streams with.
enum RedisCLI {
    static func arguments() throws -> [String] {
        let url = try BrokerURL(try RedisTestEnvironment.url())
        var arguments = ["-h", url.host.isEmpty ? "127.0.0.1" : url.host, "-p", String(url.port ?? 6379)]
        if let password = url.password {
            if let user = url.user { arguments += ["--user", user] }
            arguments += ["--pass", password, "--no-auth-warning"]
        }
        if let db = Int(url.path), db != 0 { arguments += ["-n", String(db)] }
        return arguments
    }

    /// Runs one command; `--raw` output (one value per line).
    @discardableResult
    static func run(_ command: [String]) async throws -> String {
        let result = try await Shell.run("redis-cli", try arguments() + ["--raw"] + command)
        guard result.status == 0 else { throw TestFailure("redis-cli \(command.prefix(3).joined(separator: " ")) failed: \(result.stderr)") }
        return result.text
    }

    /// Whether the server persists every write (`appendonly yes`).
    static func appendOnly() async throws -> Bool {
        try await run(["CONFIG", "GET", "appendonly"]).split(whereSeparator: \.isNewline).last == "yes"
    }

    /// Deletes every key under a prefix (a test's key space).
    static func deleteKeys(prefix: String) async throws {
        let keys = try await run(["--scan", "--pattern", prefix.replacingOccurrences(of: "*", with: "\\*") + "*"])
            .split(whereSeparator: \.isNewline).map(String.init)
        for start in stride(from: 0, to: keys.count, by: 500) {
            try await run(["DEL"] + keys[start..<min(start + 500, keys.count)])
        }
    }

    /// How many keys exist under a prefix.
    static func keyCount(prefix: String) async throws -> Int {
        try await run(["--scan", "--pattern", prefix + "*"]).split(whereSeparator: \.isNewline).count
    }
}

/// Polls a condition until it holds or the time runs out; returns whether it held.
func eventually(within limit: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// The next delivery, or `nil` when none comes within `limit`.
func next(_ stream: DeliveryStream, within limit: Duration = .seconds(10)) async throws -> Delivery? {
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

/// A TCP listener on 127.0.0.1 that is not Redis: it accepts connections and either says nothing
/// or sends a greeting in another protocol, for the connection-error tests.
final class SilentListener: Sendable {
    let port: Int
    private let fd: Int32

    init(greeting: [UInt8]? = nil) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            Glibc.close(fd)
            throw TestFailure("bind/listen failed")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
        if let greeting {
            let thread = Thread {
                while true {
                    let client = accept(fd, nil, nil)
                    if client < 0 { return }
                    _ = greeting.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    Glibc.close(client)
                }
            }
            thread.start()
        }
    }

    func close() {
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }
}
