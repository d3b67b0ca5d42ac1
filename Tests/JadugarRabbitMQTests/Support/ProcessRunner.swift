import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a child process printed and how it ended.
struct ProcessResult: Sendable {
    var status: Int32
    var output: String
    var errorOutput: String
    var outputBytes: [UInt8]
}

/// Runs command-line tools (rabbitmqctl, openssl, amqp-tools) without blocking Swift's cooperative pool.
///
/// Each run gets a thread of its own that spawns the child (`posix_spawn`), reads its output with
/// `poll` and reaps it. Foundation's `Process` with `FileHandle.readabilityHandler` is avoided on
/// purpose: on Linux its dispatch read sources can outlive the descriptors they watch, and with many
/// tools and sockets opened at once in parallel tests that crashed the whole test process in
/// libdispatch's event loop.
enum ProcessRunner {
    struct Timeout: Error, CustomStringConvertible {
        var description: String
    }

    struct SpawnFailed: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `executable` with `arguments`; stdin gets `input` (then EOF).
    static func run(_ executable: String, _ arguments: [String], input: [UInt8]? = nil, environment: [String: String]? = nil, timeout: Duration = .seconds(60)) async throws -> ProcessResult {
        let path = executable.hasPrefix("/") ? executable : "/usr/bin/\(executable)"
        var variables = ProcessInfo.processInfo.environment
        if let environment { variables.merge(environment) { _, new in new } }
        let environmentList = variables.map { "\($0.key)=\($0.value)" }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProcessResult, any Error>) in
            let thread = Thread {
                continuation.resume(with: Result {
                    try runBlocking(path: path, arguments: arguments, environment: environmentList, input: input ?? [], timeout: timeout)
                })
            }
            thread.name = "process-runner"
            thread.start()
        }
    }

    private static func runBlocking(path: String, arguments: [String], environment: [String], input: [UInt8], timeout: Duration) throws -> ProcessResult {
        // Socket pairs rather than pipes: created close-on-exec in one call (so no other thread's
        // child inherits them), and `send` with MSG_NOSIGNAL cannot raise SIGPIPE when the child
        // exits without reading its input.
        var stdinPair: [Int32] = [-1, -1]
        var stdoutPipe: [Int32] = [-1, -1]
        var stderrPipe: [Int32] = [-1, -1]
        let kind = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, kind, 0, &stdinPair) == 0, socketpair(AF_UNIX, kind, 0, &stdoutPipe) == 0,
            socketpair(AF_UNIX, kind, 0, &stderrPipe) == 0
        else {
            for fd in stdinPair + stdoutPipe + stderrPipe where fd >= 0 { close(fd) }
            throw SpawnFailed(description: "\(path): could not create pipes (errno \(errno))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPair[1], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, envp)
        close(stdinPair[1])
        close(stdoutPipe[1])
        close(stderrPipe[1])
        guard spawned == 0 else {
            close(stdinPair[0])
            close(stdoutPipe[0])
            close(stderrPipe[0])
            throw SpawnFailed(description: "\(path) could not be started: \(String(cString: strerror(spawned)))")
        }

        let stdinFD: Int32 = stdinPair[0]
        var written = 0
        if input.isEmpty {
            shutdown(stdinFD, Int32(SHUT_WR))
        }
        var outFD = stdoutPipe[0], errFD = stderrPipe[0]
        var output: [UInt8] = [], errors: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        let deadline = ContinuousClock.now + timeout
        var timedOut = false
        var exitStatus: Int32?

        func drain(_ fd: inout Int32, into bytes: inout [UInt8]) {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                bytes.append(contentsOf: chunk[0..<count])
            } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                close(fd)
                fd = -1
            }
        }

        while outFD >= 0 || errFD >= 0 {
            var fds = [
                pollfd(fd: outFD, events: Int16(POLLIN), revents: 0),
                pollfd(fd: errFD, events: Int16(POLLIN), revents: 0),
                pollfd(fd: written < input.count ? stdinFD : -1, events: Int16(POLLOUT), revents: 0),
            ]
            let left = deadline - ContinuousClock.now
            if left <= .zero {
                timedOut = true
                kill(pid, SIGKILL)
                break
            }
            // Wake up now and then to notice a child that exited while a grandchild holds its output open.
            let wait = min(100, max(1, Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
            let ready = poll(&fds, nfds_t(fds.count), wait)
            if ready < 0, errno != EINTR { break }
            if fds[0].revents != 0 { drain(&outFD, into: &output) }
            if fds[1].revents != 0 { drain(&errFD, into: &errors) }
            if fds[2].revents != 0 {
                let sent = input.withUnsafeBytes { send(stdinFD, $0.baseAddress! + written, input.count - written, Int32(MSG_NOSIGNAL)) }
                if sent > 0 { written += sent } else if errno != EINTR && errno != EAGAIN { written = input.count }
                if written >= input.count { shutdown(stdinFD, Int32(SHUT_WR)) }
            }
            if ready == 0, exitStatus == nil {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid {
                    exitStatus = status
                    // The child is gone: take what is already buffered and stop.
                    for fd in [outFD, errFD] where fd >= 0 { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
                    while outFD >= 0 { let before = output.count; drain(&outFD, into: &output); if output.count == before { break } }
                    while errFD >= 0 { let before = errors.count; drain(&errFD, into: &errors); if errors.count == before { break } }
                    break
                }
            }
        }
        for fd in [outFD, errFD, stdinFD] where fd >= 0 { close(fd) }
        var status: Int32 = exitStatus ?? 0
        if exitStatus == nil {
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        }
        if timedOut {
            throw Timeout(description: "\(path) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
        }
        // Exited: the exit code; killed by a signal: its number.
        let signal = status & 0x7f
        let code = signal == 0 ? (status >> 8) & 0xff : signal
        return ProcessResult(status: code, output: String(decoding: output, as: UTF8.self), errorOutput: String(decoding: errors, as: UTF8.self), outputBytes: output)
    }
}
