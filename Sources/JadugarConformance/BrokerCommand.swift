import Foundation
import Jadugar

/// Runs an operator command (a broker restart, a `rabbitmqctl` call) as a child process with a
/// clean signal state, and waits for it on a thread of its own.
///
/// A process started from a Swift program inherits the signal mask of the thread that spawned it,
/// and the Swift runtime's threads block SIGTERM and friends: a broker restarted through
/// `Process` then ignores the `kill` that should stop it next time. This runner resets the mask
/// and the default handlers in the child, and its wait never blocks Swift's cooperative pool.
///
/// ```swift
/// let result = try await BrokerCommand.run("scripts/brokers restart redis", timeout: .seconds(120))
/// guard result.status == 0 else { print(result.output) }
/// ```
public enum BrokerCommand {
    /// How a command ended.
    public struct Result: Sendable {
        /// The exit status, or 128 + the signal number when a signal ended it.
        public var status: Int32
        /// Standard output and standard error, interleaved.
        public var output: String
    }

    /// Runs `command` with `/bin/sh -c`; a command still running after `timeout` is killed and
    /// the call fails with ``MessagingError/Code/timeout``.
    public static func run(_ command: String, timeout: Duration = .seconds(120)) async throws -> Result {
        try await run("/bin/sh", ["-c", command], timeout: timeout, label: command)
    }

    /// Runs `command` with `/bin/sh -c` and fails with its exit status and the end of its output
    /// (credentials redacted) unless it exits with 0.
    public static func check(_ command: String, timeout: Duration = .seconds(120)) async throws {
        let result = try await run(command, timeout: timeout)
        guard result.status == 0 else {
            throw MessagingError(
                .brokerError,
                "'\(BrokerURL.redact(command))' exited with \(result.status): \(BrokerURL.redact(String(result.output.suffix(800))))"
            )
        }
    }

    /// Runs `program` (an absolute path) with `arguments`, no shell.
    public static func run(_ program: String, _ arguments: [String], timeout: Duration = .seconds(120)) async throws -> Result {
        try await run(program, arguments, timeout: timeout, label: ([program] + arguments).joined(separator: " "))
    }

    private static func run(_ program: String, _ arguments: [String], timeout: Duration, label: String) async throws -> Result {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("jadugar-command-\(Message.makeID()).log").path
        guard FileManager.default.createFile(atPath: log, contents: nil) else {
            throw MessagingError(.brokerError, "cannot create the output file \(log) for '\(BrokerURL.redact(label))'")
        }
        defer { try? FileManager.default.removeItem(atPath: log) }
        let pid = try spawn(program, arguments, output: log, label: label)
        let status = try await wait(for: pid, timeout: timeout, label: label)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return Result(status: status, output: output)
    }

    private static func spawn(_ program: String, _ arguments: [String], output: String, label: String) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_APPEND, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, program, &actions, &attributes, argv, environ)
        guard spawned == 0 else {
            throw MessagingError(.brokerError, "cannot start '\(BrokerURL.redact(label))': \(String(cString: strerror(spawned)))")
        }
        return pid
    }

    /// Waits in `waitpid` on a dedicated thread, so the cooperative pool never blocks on a child.
    private static func wait(for pid: pid_t, timeout: Duration, label: String) async throws -> Int32 {
        let status: Int32? = await withCheckedContinuation { continuation in
            let thread = Thread {
                let deadline = ContinuousClock.now + timeout
                var raw: Int32 = 0
                while true {
                    let reaped = waitpid(pid, &raw, WNOHANG)
                    if reaped == pid { break }
                    if reaped < 0 {
                        // Reaped by someone else (SIGCHLD ignored in this process): unknown status.
                        continuation.resume(returning: 0)
                        return
                    }
                    if ContinuousClock.now > deadline {
                        kill(pid, SIGKILL)
                        _ = waitpid(pid, &raw, 0)
                        continuation.resume(returning: nil)
                        return
                    }
                    usleep(20_000)
                }
                let signal = raw & 0x7F
                continuation.resume(returning: signal == 0 ? (raw >> 8) & 0xFF : 128 + signal)
            }
            thread.start()
        }
        guard let status else {
            throw MessagingError(.timeout, "'\(BrokerURL.redact(label))' did not finish within \(timeout) and was killed")
        }
        return status
    }
}
