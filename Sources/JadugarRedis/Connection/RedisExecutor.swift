import Jadugar
import JadugarPublisher

/// Runs Redis commands on one connection owned by a dedicated I/O thread: the publisher core's
/// ``Batcher`` carries each command from the calling task through its lock-free ring to the
/// thread, which writes whatever has accumulated as one pipeline. Callers never block a thread.
///
/// A broker has one for everything but publishing (topology, settlements, counts); publishes
/// have their own pipeline (``RedisPublisher``), so that control calls never hold them up.
final class RedisExecutor: Sendable {
    private let batcher: Batcher<RedisRequest>
    let role: String

    init(link: RedisLink, role: String, configuration: BatcherConfiguration) {
        self.role = role
        self.batcher = Batcher(configuration: configuration, sink: RedisCommandSink(link: link, role: role))
        batcher.start()
    }

    /// Runs a command and returns its reply.
    ///
    /// - Throws: ``MessagingError``: Redis's error reply, `connectionFailed` when the connection
    ///   broke, `notConnected` after ``shutdown()``.
    func run(_ command: RedisCommand) async throws -> RedisValue {
        let slot = RedisReplySlot()
        try await submit(RedisRequest(command: command, reply: slot))
        return slot.take()
    }

    /// Runs a command whose reply nobody needs beyond success.
    func send(_ command: RedisCommand) async throws {
        try await submit(RedisRequest(command: command, reply: nil))
    }

    /// Queues a command without waiting; its result is dropped. For wake-ups from threads.
    func sendNoWait(_ command: RedisCommand) {
        try? batcher.submitNoWait(RedisRequest(command: command, reply: nil))
    }

    /// Writes what is buffered, then closes the connection.
    func shutdown() async {
        await batcher.shutdown(drain: true)
    }

    private func submit(_ request: RedisRequest) async throws {
        do {
            try await batcher.submit(request)
        } catch let error as PublisherError {
            switch error.code {
            case .bufferFull:
                throw MessagingError(.queueFull, "the Redis \(role) buffer is full: \(error.message)", isRetriable: true)
            default:
                throw MessagingError(.notConnected, "the Redis broker is disconnected; the \(role) command was not sent (\(error.code))")
            }
        }
    }
}
