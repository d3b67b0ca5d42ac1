import Synchronization

/// Runs an operation until it succeeds or the ``RetryPolicy`` runs out of attempts, sleeping the
/// policy's delay between attempts.
///
/// ```swift
/// let handler = RetryHandler(policy: .exponential(attempts: 4, delay: .milliseconds(50)))
/// try await handler.retry(RetryContext(name: "publish")) {
///     try await broker.publish(message, options: .default)
/// }
/// print(handler.currentAttempt) // attempts made by the last run
/// ```
public final class RetryHandler: Sendable {
    /// The policy.
    public let policy: RetryPolicy
    private let sleep: @Sendable (Duration) async throws -> Void
    private let attempt = Mutex(0)

    /// Creates a handler.
    ///
    /// - Parameters:
    ///   - policy: Attempts and delays.
    ///   - sleep: How to wait; tests pass a recording closure. Default: `Task.sleep(for:)`.
    public init(policy: RetryPolicy, sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }) {
        self.policy = policy
        self.sleep = sleep
    }

    /// Runs `operation` with retries; returns its result or throws its last error.
    ///
    /// Errors for which ``RetryContext/shouldRetry`` answers `false` are thrown at once.
    /// Cancellation stops the retries.
    public func retry<Result: Sendable>(_ context: RetryContext = RetryContext(), operation: @Sendable () async throws -> Result) async throws -> Result {
        try policy.validate()
        reset()
        while true {
            let current = attempt.withLock { value -> Int in
                value += 1
                return value
            }
            do {
                return try await operation()
            } catch {
                guard policy.allowsRetry(afterAttempt: current), context.shouldRetry(error), !Task.isCancelled else { throw error }
                let delay = calculateDelay(attempt: current)
                context.onRetry?(current, error, delay)
                try await sleep(delay)
            }
        }
    }

    /// The delay (with jitter) before the retry that follows failed attempt `attempt`.
    public func calculateDelay(attempt: Int) -> Duration {
        policy.delay(forRetry: attempt)
    }

    /// Resets the attempt count.
    public func reset() {
        attempt.withLock { $0 = 0 }
    }

    /// Attempts made by the current or last run.
    public var currentAttempt: Int {
        attempt.withLock { $0 }
    }
}

/// What a ``RetryHandler`` run needs to know beyond the policy.
///
/// ```swift
/// RetryContext(name: "charge") { error in (error as? MessagingError)?.isRetriable ?? true }
/// ```
public struct RetryContext: Sendable {
    /// A name for logs.
    public var name: String
    /// Whether an error is worth another attempt. Default: a ``MessagingError``'s ``MessagingError/isRetriable``; `true` for other errors.
    public var shouldRetry: @Sendable (any Error) -> Bool
    /// Called before each sleep with the failed attempt, its error and the delay.
    public var onRetry: (@Sendable (Int, any Error, Duration) -> Void)?

    /// Creates a context.
    public init(
        name: String = "operation",
        onRetry: (@Sendable (Int, any Error, Duration) -> Void)? = nil,
        shouldRetry: @escaping @Sendable (any Error) -> Bool = { ($0 as? MessagingError)?.isRetriable ?? true }
    ) {
        self.name = name
        self.shouldRetry = shouldRetry
        self.onRetry = onRetry
    }
}
