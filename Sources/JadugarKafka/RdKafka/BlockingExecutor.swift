import CRdKafka
import DequeModule
import Dispatch
import Foundation
import Jadugar
import Synchronization

/// A dedicated thread that runs blocking jobs one at a time, in order: the serial executor for
/// blocking librdkafka calls (admin requests, metadata, scans) that must never run on Swift's
/// cooperative pool.
final class BlockingExecutor: Sendable {
    private struct State {
        var jobs = Deque<@Sendable () -> Void>()
        var stopped = false
    }

    private let state = Mutex(State())
    private let signal = DispatchSemaphore(value: 0)
    let name: String

    /// Starts the thread.
    init(name: String) {
        self.name = name
        KafkaThread.start(name: name) { [self] in self.loop() }
    }

    private func loop() {
        while true {
            signal.wait()
            let next: (@Sendable () -> Void)?? = state.withLock { state in
                if let job = state.jobs.popFirst() { return .some(job) }
                return state.stopped ? .some(nil) : nil
            }
            switch next {
            case .some(.some(let job)): job()
            case .some(.none): return
            case .none: continue
            }
        }
    }

    /// Runs `body` on the executor's thread and returns its result.
    ///
    /// - Throws: What `body` throws, or ``MessagingError/Code/notConnected`` once stopped.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = state.withLock { state -> Bool in
                if state.stopped { return false }
                state.jobs.append { continuation.resume(with: Result { try body() }) }
                return true
            }
            if accepted {
                signal.signal()
            } else {
                continuation.resume(throwing: MessagingError(.notConnected, "the Kafka client is disconnected; call connect() first"))
            }
        }
    }

    /// Runs the jobs already queued, then ends the thread.
    func stop() {
        let first = state.withLock { state -> Bool in
            defer { state.stopped = true }
            return !state.stopped
        }
        if first { signal.signal() }
    }
}

/// Starts named kernel threads for librdkafka loops, outside Swift's cooperative pool.
enum KafkaThread {
    static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            // Foundation names the Thread object only; the kernel thread keeps its parent's name.
            jadugar_set_thread_name(name)
            body()
        }
        thread.name = name
        thread.start()
    }
}
