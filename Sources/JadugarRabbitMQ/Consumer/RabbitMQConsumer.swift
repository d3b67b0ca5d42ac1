import Jadugar
import Synchronization

/// A running handler consumer from ``RabbitMQBroker/consume(queue:options:concurrency:handler:)``.
///
/// Each message is acknowledged when the handler returns and dead-lettered (reason `rejected`,
/// the error as last error) when it throws; with auto-acknowledgement nothing is settled.
///
/// ```swift
/// let consumer = try await broker.consume(queue: "emails") { message in try await send(message) }
/// // later
/// await consumer.cancel()
/// print(consumer.processed)
/// ```
///
/// - Important: ``cancel()`` lets running handlers finish and settle; buffered messages go back to the queue.
public final class RabbitMQConsumer: Sendable {
    /// The queue consumed.
    public let queue: String
    private let stream: DeliveryStream
    private let workers = Mutex<[Task<Void, Never>]>([])
    private let counts = Counts()

    private final class Counts: Sendable {
        let value = Mutex<(processed: Int, failed: Int)>((0, 0))
    }

    init(stream: DeliveryStream, concurrency: Int, autoAck: Bool, handler: @escaping @Sendable (Message) async throws -> Void) {
        self.queue = stream.queue
        self.stream = stream
        let tasks = (0..<concurrency).map { _ in
            Task { [stream, counts] in
                while !Task.isCancelled {
                    guard let delivery = try? await stream.next() else { return }
                    do {
                        try await handler(delivery.message)
                        counts.value.withLock { $0.processed += 1 }
                        if !autoAck { try? await delivery.ack() }
                    } catch {
                        counts.value.withLock { $0.failed += 1 }
                        if autoAck { continue }
                        if error is CancellationError || Task.isCancelled {
                            try? await delivery.nack(requeue: true)
                        } else {
                            try? await delivery.reject(reason: "rejected", error: String(describing: error))
                        }
                    }
                }
            }
        }
        workers.withLock { $0 = tasks }
    }

    /// Handler calls that returned.
    public var processed: Int { counts.value.withLock { $0.processed } }
    /// Handler calls that threw.
    public var failed: Int { counts.value.withLock { $0.failed } }

    /// Stops taking messages, waits for running handlers, and closes the consumer.
    public func cancel() async {
        let tasks = workers.withLock { state in defer { state = [] }; return state }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        await stream.close()
    }
}
