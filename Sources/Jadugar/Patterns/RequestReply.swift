import Foundation
import Synchronization
import Tracing

/// Options of one request.
///
/// ```swift
/// try await rpc.request("math.add", message, options: RequestOptions(timeout: .seconds(2)))
/// ```
public struct RequestOptions: Sendable, Hashable {
    /// How long to wait for the reply; `nil` takes the ``RequestReply`` default. Default: `nil`.
    public var timeout: Duration?
    /// Retry a request that timed out; `nil` takes the ``RequestReply`` default. Default: `nil`.
    public var retry: RetryPolicy?

    /// Creates options.
    public init(timeout: Duration? = nil, retry: RetryPolicy? = nil) {
        self.timeout = timeout
        self.retry = retry
    }
}

/// Options of a reply server.
public struct ReplyOptions: Sendable, Hashable {
    /// The group servers of one topic share (they compete for requests). Default: `nil`, which means `rpc.<topic>`.
    public var group: String?
    /// Requests handled at once. Default: `4`.
    public var concurrency: Int
    /// Requests fetched ahead. Default: `16`.
    public var prefetch: Int

    /// Creates options.
    public init(group: String? = nil, concurrency: Int = 4, prefetch: Int = 16) {
        self.group = group
        self.concurrency = concurrency
        self.prefetch = prefetch
    }
}

/// Request/reply over any broker: requests carry a correlation id and a private reply queue;
/// servers compete for requests and answer to the reply queue.
///
/// A handler that throws sends the error back, and the requester's `request` throws
/// ``MessagingError/Code/remoteFailure`` with it (not a timeout). Replies that arrive after their
/// request timed out are dropped.
///
/// ```swift
/// let rpc = RequestReply(manager)
/// _ = try await rpc.reply("math.add") { request in
///     let numbers = try request.decode([Int].self)
///     return try Message(json: numbers.reduce(0, +))
/// }
/// let sum = try await rpc.request("math.add", json: [1, 2], as: Int.self) // 3
/// ```
public final class RequestReply: Sendable {
    /// Handles one request and returns the reply.
    public typealias RequestHandler = @Sendable (Message) async throws -> Message

    private final class Promise: Sendable {
        private let state = Mutex<(result: Result<Message, any Error>?, waiter: CheckedContinuation<Message, any Error>?)>((nil, nil))

        func fulfill(_ result: Result<Message, any Error>) {
            let waiter: CheckedContinuation<Message, any Error>? = state.withLock { state in
                guard state.result == nil else { return nil }
                state.result = result
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(with: result)
        }

        var value: Message {
            get async throws {
                try await withCheckedThrowingContinuation { continuation in
                    let ready: Result<Message, any Error>? = state.withLock { state in
                        if let result = state.result { return result }
                        state.waiter = continuation
                        return nil
                    }
                    if let ready { continuation.resume(with: ready) }
                }
            }
        }
    }

    private struct State {
        var timeout: Duration
        var retry: RetryPolicy?
        var replyQueue: String?
        var starting: Task<String, any Error>?
        var consumer: DeliveryStream?
        var pending: [String: Promise] = [:]
        var lateReplies = 0
    }

    /// The manager used.
    public let manager: MessageManager
    private let state: Mutex<State>

    /// Creates the pattern over a manager.
    ///
    /// - Parameters:
    ///   - manager: The connection.
    ///   - timeout: How long a request waits for its reply. Default: 30 seconds.
    public init(_ manager: MessageManager, timeout: Duration = .seconds(30)) {
        self.manager = manager
        self.state = Mutex(State(timeout: timeout))
    }

    /// Sets the default reply timeout.
    ///
    /// - Throws: ``MessagingError/Code/invalidArgument`` when not positive.
    public func setTimeout(_ timeout: Duration) throws {
        guard timeout > .zero else { throw MessagingError(.invalidArgument, "a request timeout must be positive, got \(timeout)") }
        state.withLock { $0.timeout = timeout }
    }

    /// Sets the default retry policy for requests that time out (`nil`: no retry).
    public func setRetry(_ policy: RetryPolicy?) throws {
        try policy?.validate()
        state.withLock { $0.retry = policy }
    }

    /// Replies dropped because their request had already timed out.
    public var lateReplies: Int { state.withLock { $0.lateReplies } }

    // MARK: Client

    /// Sends a request and waits for its reply.
    ///
    /// - Throws: ``MessagingError/Code/timeout`` when no reply came in time (after any retries);
    ///   ``MessagingError/Code/remoteFailure`` with the server's error when its handler failed.
    public func request(_ topic: String, _ message: Message, options: RequestOptions = RequestOptions()) async throws -> Message {
        let (defaultTimeout, defaultRetry) = state.withLock { ($0.timeout, $0.retry) }
        let timeout = options.timeout ?? defaultTimeout
        guard timeout > .zero else { throw MessagingError(.invalidArgument, "a request timeout must be positive, got \(timeout)") }
        let policy = options.retry ?? defaultRetry ?? .none
        try policy.validate()
        let replyQueue = try await ensureReplyQueue()
        // One client span around every attempt: the request, the server's handling and the reply share its trace.
        return try await withSpan("request \(topic)", ofKind: .client) { span in
            span.attributes["messaging.destination.name"] = topic
            var attempt = 0
            while true {
                attempt += 1
                do {
                    return try await send(topic, message, replyQueue: replyQueue, timeout: timeout)
                } catch let error as MessagingError where error.code == .timeout && policy.allowsRetry(afterAttempt: attempt) {
                    try await Task.sleep(for: policy.delay(forRetry: attempt))
                }
            }
        }
    }

    /// Sends a value as JSON and decodes the reply.
    public func request<Request: Encodable, Response: Decodable>(_ topic: String, json value: Request, as type: Response.Type = Response.self, options: RequestOptions = RequestOptions()) async throws -> Response {
        try await request(topic, Message(json: value), options: options).decode(Response.self)
    }

    private func send(_ topic: String, _ message: Message, replyQueue: String, timeout: Duration) async throws -> Message {
        var request = message
        request.id = Message.makeID()
        let correlation = request.id
        request.metadata.correlationId = correlation
        request.metadata.replyTo = replyQueue
        let promise = Promise()
        state.withLock { $0.pending[correlation] = promise }
        let timer = Task {
            try await Task.sleep(for: timeout)
            promise.fulfill(.failure(MessagingError(.timeout, "no reply to request \(correlation) on '\(topic)' within \(timeout)")))
        }
        defer {
            timer.cancel()
            _ = state.withLock { $0.pending.removeValue(forKey: correlation) }
        }
        do {
            try await manager.publish(topic, request)
        } catch {
            promise.fulfill(.failure(error))
        }
        let reply = try await withTaskCancellationHandler {
            try await promise.value
        } onCancel: {
            promise.fulfill(.failure(CancellationError()))
        }
        if let failure = reply.metadata.headers[JadugarHeader.replyError] {
            throw MessagingError(
                .remoteFailure, "the handler of '\(topic)' failed: \(failure)",
                brokerCode: reply.metadata.headers[JadugarHeader.replyErrorCode], isRetriable: false
            )
        }
        return reply
    }

    private func ensureReplyQueue() async throws -> String {
        let task: Task<String, any Error> = state.withLock { state in
            if let starting = state.starting { return starting }
            let starting = Task { try await self.startReplyConsumer() }
            state.starting = starting
            return starting
        }
        do {
            return try await task.value
        } catch {
            state.withLock { $0.starting = nil }
            throw error
        }
    }

    private func startReplyConsumer() async throws -> String {
        let broker = manager.broker
        let queue = "reply.\(Message.makeID())"
        try await broker.createQueue(queue, options: QueueOptions(durable: false, exclusive: true, autoDelete: true))
        let stream = try await broker.consume(queue: queue, options: ConsumeOptions(prefetch: 256, autoAck: true))
        state.withLock {
            $0.replyQueue = queue
            $0.consumer = stream
        }
        Task {
            while let delivery = try? await stream.next() {
                let correlation = delivery.message.metadata.correlationId ?? ""
                let promise: Promise? = self.state.withLock { state in
                    let promise = state.pending.removeValue(forKey: correlation)
                    if promise == nil { state.lateReplies += 1 }
                    return promise
                }
                promise?.fulfill(.success(delivery.message))
            }
        }
        return queue
    }

    /// Stops the reply consumer; requests waiting fail with ``MessagingError/Code/closed``.
    public func close() async {
        let (consumer, pending) = state.withLock { state in
            defer {
                state.pending.removeAll()
                state.consumer = nil
                state.starting = nil
            }
            return (state.consumer, Array(state.pending.values))
        }
        for promise in pending { promise.fulfill(.failure(MessagingError(.closed, "the request/reply client was closed"))) }
        await consumer?.close()
    }

    // MARK: Server

    /// Serves requests on a topic: the handler's result is sent to the request's reply queue with its correlation id.
    ///
    /// - Returns: The subscription; cancel it to stop serving.
    public func reply(_ topic: String, options: ReplyOptions = ReplyOptions(), handler: @escaping RequestHandler) async throws -> Subscription {
        let broker = manager.broker
        let subscribeOptions = SubscribeOptions(group: options.group ?? "rpc.\(topic)", prefetch: options.prefetch, concurrency: options.concurrency)
        return try await manager.subscribe(topic, options: subscribeOptions) { request in
            guard let replyTo = request.metadata.replyTo else {
                throw MessagingError(.invalidArgument, "request \(request.id) on '\(topic)' has no reply-to address")
            }
            var reply: Message
            do {
                reply = try await handler(request)
            } catch {
                reply = Message(payload: [])
                reply.metadata.headers[JadugarHeader.replyError] = String(describing: error)
                reply.metadata.headers[JadugarHeader.replyErrorCode] = (error as? MessagingError)?.code.description ?? "handler"
            }
            reply.id = Message.makeID()
            reply.metadata.correlationId = request.metadata.correlationId ?? request.id
            MessageTracing.inject(into: &reply)
            try await broker.send(reply, toQueue: replyTo, options: PublishOptions(persistent: false))
        }
    }
}
