import Jadugar

enum ErrorScenarios {
    static let all: [ConformanceScenario] = [
        ConformanceScenario("errors.bad-input", "bad topics, patterns, options and oversize payloads get specific errors, not crashes") { context in
            let manager = context.manager()
            func expect(_ code: MessagingError.Code, _ what: String, _ body: () async throws -> Void) async throws {
                do {
                    try await body()
                    throw context.fail("\(what) was accepted")
                } catch let error as MessagingError {
                    try context.require(error.code == code, "\(what) failed with \(error.code) (\(error.message)), expected \(code)")
                }
            }
            try await expect(.invalidTopic, "an empty topic") { try await manager.publish("", Message()) }
            try await expect(.invalidTopic, "a topic with a wildcard") { try await manager.publish("a.*", Message()) }
            try await expect(.invalidTopic, "a topic of 300 bytes") { try await manager.publish(String(repeating: "x", count: 300), Message()) }
            try await expect(.invalidPattern, "a pattern with a wildcard inside a word") { _ = try await manager.subscribe("a.#b") { _ in } }
            try await expect(.invalidArgument, "prefetch 0") { _ = try await manager.subscribe(context.unique("x"), options: SubscribeOptions(prefetch: 0)) { _ in } }
            try await expect(.invalidArgument, "a negative retry delay") {
                _ = try await manager.subscribe(context.unique("y"), options: SubscribeOptions(retry: .fixed(attempts: 2, delay: .milliseconds(-5)))) { _ in }
            }
            let limit = context.capabilities.maxPayloadBytes
            try await expect(.payloadTooLarge, "a payload over the broker's \(limit)-byte limit") {
                try await manager.publish(context.unique("big"), Message(payload: [UInt8](repeating: 1, count: limit + 1)))
            }
            let other = try await context.connectAnother()
            try await other.disconnect()
            try await expect(.notConnected, "a publish after disconnect") {
                try await other.publish(Message(topic: context.unique("late")), options: .default)
            }
        },
    ]
}
