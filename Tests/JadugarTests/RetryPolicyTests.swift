import Jadugar
import Testing

@Suite("RetryPolicy and RetryHandler")
struct RetryPolicyTests {
    @Test("fixed backoff: the same delay for every retry")
    func fixed() {
        let policy = RetryPolicy.fixed(attempts: 4, delay: .milliseconds(250))
        #expect((1...3).map(policy.baseDelay(forRetry:)) == [.milliseconds(250), .milliseconds(250), .milliseconds(250)])
    }

    @Test("linear backoff: delay times the retry number")
    func linear() {
        let policy = RetryPolicy.linear(attempts: 5, delay: .milliseconds(100))
        #expect((1...4).map(policy.baseDelay(forRetry:)) == [.milliseconds(100), .milliseconds(200), .milliseconds(300), .milliseconds(400)])
    }

    @Test("exponential backoff: delay times the multiplier to the power of retry − 1, capped by maxDelay")
    func exponential() {
        let policy = RetryPolicy.exponential(attempts: 8, delay: .milliseconds(100), multiplier: 2, maxDelay: .seconds(1))
        #expect((1...6).map(policy.baseDelay(forRetry:)) == [
            .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1),
        ])
        let triple = RetryPolicy.exponential(attempts: 4, delay: .milliseconds(10), multiplier: 3)
        #expect((1...3).map(triple.baseDelay(forRetry:)) == [.milliseconds(10), .milliseconds(30), .milliseconds(90)])
    }

    @Test("huge exponents saturate instead of overflowing")
    func saturation() {
        let policy = RetryPolicy.exponential(attempts: 500, delay: .seconds(1))
        #expect(policy.baseDelay(forRetry: 400) > .seconds(1_000_000))
        let capped = RetryPolicy.exponential(attempts: 500, delay: .seconds(1), maxDelay: .seconds(30))
        #expect(capped.baseDelay(forRetry: 400) == .seconds(30))
    }

    @Test("jitter stays within [base × (1 − jitter), base]", arguments: [0.1, 0.5, 1.0])
    func jitterBounds(jitter: Double) {
        let policy = RetryPolicy.exponential(attempts: 5, delay: .milliseconds(100), jitter: jitter)
        var generator = SystemRandomNumberGenerator()
        for retry in 1...4 {
            let base = policy.baseDelay(forRetry: retry)
            var seen = Set<Duration>()
            for _ in 0..<500 {
                let delay = policy.delay(forRetry: retry, using: &generator)
                #expect(delay <= base)
                #expect(delay >= base * (1 - jitter) - .nanoseconds(1))
                seen.insert(delay)
            }
            #expect(seen.count > 10, "jitter produced almost no spread")
        }
    }

    @Test("invalid policies are refused with a clear error", arguments: [
        RetryPolicy(attempts: 0, delay: .seconds(1)),
        RetryPolicy(attempts: 2, delay: .seconds(-1)),
        RetryPolicy(attempts: 2, delay: .seconds(1), jitter: 1.5),
        RetryPolicy(attempts: 2, delay: .seconds(1), backoff: .exponential(multiplier: 0.5)),
        RetryPolicy(attempts: 2, delay: .seconds(1), maxDelay: .seconds(-2)),
    ])
    func invalid(policy: RetryPolicy) {
        #expect(throws: MessagingError.self) { try policy.validate() }
    }

    @Test("RetryHandler retries until success and sleeps the policy's delays")
    func handlerRetries() async throws {
        let slept = Recorder<Duration>()
        let handler = RetryHandler(policy: .exponential(attempts: 5, delay: .milliseconds(10)), sleep: { slept.append($0) })
        let calls = Recorder<Int>()
        let value = try await handler.retry {
            calls.append(1)
            if calls.count < 3 { throw MessagingError(.connectionFailed, "down") }
            return 42
        }
        #expect(value == 42)
        #expect(handler.currentAttempt == 3)
        #expect(slept.values == [.milliseconds(10), .milliseconds(20)])
        #expect(handler.calculateDelay(attempt: 3) == .milliseconds(40))
        handler.reset()
        #expect(handler.currentAttempt == 0)
    }

    @Test("RetryHandler gives up after the last attempt with the last error")
    func handlerGivesUp() async {
        let handler = RetryHandler(policy: .fixed(attempts: 3, delay: .zero), sleep: { _ in })
        await #expect(throws: MessagingError.self) {
            try await handler.retry { () async throws -> Void in throw MessagingError(.timeout, "slow") }
        }
        #expect(handler.currentAttempt == 3)
    }

    @Test("RetryHandler does not retry errors the context calls permanent")
    func handlerPermanent() async {
        let handler = RetryHandler(policy: .fixed(attempts: 5, delay: .zero), sleep: { _ in })
        await #expect(throws: MessagingError.self) {
            try await handler.retry { () async throws -> Void in throw MessagingError(.invalidArgument, "bad input") }
        }
        #expect(handler.currentAttempt == 1)
    }
}
