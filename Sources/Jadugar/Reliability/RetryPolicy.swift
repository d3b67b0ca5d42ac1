/// How often and how long apart to try again: attempts, a base delay, a backoff strategy, a cap and jitter.
///
/// Delays are numbered by retry: retry 1 follows the first failed attempt. Without jitter they are
/// exact: fixed `d, d, d`; linear `d, 2d, 3d`; exponential `d, d·m, d·m²`, each capped by ``maxDelay``.
/// Jitter `j` draws each delay uniformly from `[base·(1−j), base]`, so it never exceeds the cap.
///
/// ```swift
/// let policy = RetryPolicy.exponential(attempts: 5, delay: .milliseconds(100), maxDelay: .seconds(2), jitter: 0.2)
/// policy.baseDelay(forRetry: 3) // 400 ms
/// ```
public struct RetryPolicy: Sendable, Hashable {
    /// How delays grow from one retry to the next.
    public struct Backoff: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Kind: Hashable, Sendable { case fixed, linear, exponential(Double) }
        fileprivate let kind: Kind

        /// The same delay every time.
        public static let fixed = Backoff(kind: .fixed)
        /// The delay times the retry number.
        public static let linear = Backoff(kind: .linear)
        /// The delay times `multiplier` to the power of (retry number − 1).
        public static func exponential(multiplier: Double = 2) -> Backoff { Backoff(kind: .exponential(multiplier)) }

        public var description: String {
            switch kind {
            case .fixed: "fixed"
            case .linear: "linear"
            case .exponential(let m): "exponential(x\(m))"
            }
        }
    }

    /// Total attempts, the first one included; 1 means no retry.
    public var attempts: Int
    /// The base delay.
    public var delay: Duration
    /// How the delay grows. Default: ``Backoff/exponential(multiplier:)`` with 2.
    public var backoff: Backoff
    /// The longest delay. Default: `nil` (no cap).
    public var maxDelay: Duration?
    /// The fraction (0...1) by which a delay may be shortened at random. Default: `0`.
    public var jitter: Double

    /// Creates a policy.
    public init(attempts: Int, delay: Duration, backoff: Backoff = .exponential(), maxDelay: Duration? = nil, jitter: Double = 0) {
        self.attempts = attempts
        self.delay = delay
        self.backoff = backoff
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    /// The same delay between attempts.
    public static func fixed(attempts: Int, delay: Duration, jitter: Double = 0) -> RetryPolicy {
        RetryPolicy(attempts: attempts, delay: delay, backoff: .fixed, jitter: jitter)
    }

    /// A delay growing by `delay` each retry.
    public static func linear(attempts: Int, delay: Duration, maxDelay: Duration? = nil, jitter: Double = 0) -> RetryPolicy {
        RetryPolicy(attempts: attempts, delay: delay, backoff: .linear, maxDelay: maxDelay, jitter: jitter)
    }

    /// A delay multiplied by `multiplier` each retry.
    public static func exponential(attempts: Int, delay: Duration, multiplier: Double = 2, maxDelay: Duration? = nil, jitter: Double = 0) -> RetryPolicy {
        RetryPolicy(attempts: attempts, delay: delay, backoff: .exponential(multiplier: multiplier), maxDelay: maxDelay, jitter: jitter)
    }

    /// No retry: one attempt.
    public static let none = RetryPolicy(attempts: 1, delay: .zero, backoff: .fixed)

    /// Checks that the policy makes sense.
    ///
    /// - Throws: ``MessagingError`` with code ``MessagingError/Code/invalidArgument`` naming the field.
    public func validate() throws {
        if attempts < 1 { throw MessagingError(.invalidArgument, "retry attempts must be at least 1, got \(attempts)") }
        if delay < .zero { throw MessagingError(.invalidArgument, "retry delay must not be negative, got \(delay)") }
        if let maxDelay, maxDelay < .zero { throw MessagingError(.invalidArgument, "retry maxDelay must not be negative, got \(maxDelay)") }
        if !(0...1).contains(jitter) { throw MessagingError(.invalidArgument, "retry jitter must be between 0 and 1, got \(jitter)") }
        if case .exponential(let m) = backoff.kind, !(m >= 1) {
            throw MessagingError(.invalidArgument, "an exponential multiplier must be at least 1, got \(m)")
        }
    }

    /// Whether another attempt is allowed after `attempt` attempts have failed.
    public func allowsRetry(afterAttempt attempt: Int) -> Bool {
        attempt < attempts
    }

    /// The delay before retry `retry` (1-based), without jitter, capped by ``maxDelay``.
    public func baseDelay(forRetry retry: Int) -> Duration {
        let n = max(retry, 1)
        var value: Duration
        switch backoff.kind {
        case .fixed:
            value = delay
        case .linear:
            value = delay * n
        case .exponential(let multiplier):
            let factor = pow(multiplier, n - 1)
            let seconds = delay.seconds * factor
            // Past ~292 years a Duration overflows; the cap (or that bound) applies.
            value = seconds.isFinite && seconds < 9e9 ? .seconds(seconds) : .seconds(9e9)
        }
        if let maxDelay, value > maxDelay { value = maxDelay }
        return value
    }

    /// The delay before retry `retry` with jitter applied.
    public func delay(forRetry retry: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(forRetry: retry, using: &generator)
    }

    /// The delay before retry `retry` with jitter drawn from `generator`.
    public func delay(forRetry retry: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let base = baseDelay(forRetry: retry)
        guard jitter > 0 else { return base }
        let cut = Double.random(in: 0..<1, using: &generator) * jitter
        return .seconds(base.seconds * (1 - cut))
    }

    private func pow(_ base: Double, _ exponent: Int) -> Double {
        var result = 1.0
        for _ in 0..<max(exponent, 0) {
            result *= base
            if result > 1e12 { return result }
        }
        return result
    }
}

extension Duration {
    /// The duration in seconds as a `Double`.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
