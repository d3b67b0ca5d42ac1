import Foundation
import Jadugar
import Synchronization
import Testing

/// Collects values from concurrent code.
final class Recorder<Value: Sendable>: Sendable {
    private let storage = Mutex<[Value]>([])
    func append(_ value: Value) { storage.withLock { $0.append(value) } }
    var values: [Value] { storage.withLock { $0 } }
    var count: Int { storage.withLock { $0.count } }
}

/// A connected manager over a private embedded broker.
func connectedManager(_ options: MessageOptions = MessageOptions()) async throws -> MessageManager {
    let manager = MessageManager(broker: InMemoryBroker(), options: options)
    try await manager.connect()
    return manager
}

/// Waits until `condition` holds, polling, at most `limit`.
func eventually(within limit: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return try await condition()
}

/// Asserts that `body` throws a `MessagingError` with `code`.
func expectError<T>(_ code: MessagingError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T) async {
    do {
        _ = try await body()
        Issue.record("expected \(code), but it succeeded", sourceLocation: sourceLocation)
    } catch let error as MessagingError {
        #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
        #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected MessagingError \(code), got \(error)", sourceLocation: sourceLocation)
    }
}
