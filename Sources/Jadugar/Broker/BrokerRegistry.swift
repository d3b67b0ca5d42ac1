import Synchronization

/// Maps URL schemes to broker constructors, so one URL selects a broker.
///
/// `memory://` is always registered. Adapter modules register their schemes; the `JadugarBrokers`
/// umbrella module registers all of them at once.
///
/// ```swift
/// BrokerRegistry.register(scheme: "redis") { url in try RedisBroker(url: url) }
/// let broker = try BrokerRegistry.makeBroker(url: "redis://127.0.0.1:6379")
/// ```
public enum BrokerRegistry {
    /// Builds a broker for a parsed URL.
    public typealias Factory = @Sendable (BrokerURL) throws -> any MessageBroker

    private static let factories = Mutex<[String: Factory]>([
        "memory": { url in InMemoryBroker(url: url) },
    ])

    /// Registers (or replaces) the constructor for a scheme.
    public static func register(scheme: String, factory: @escaping Factory) {
        factories.withLock { $0[scheme.lowercased()] = factory }
    }

    /// The schemes registered now, sorted.
    public static var schemes: [String] {
        factories.withLock { $0.keys.sorted() }
    }

    /// Builds a broker from a URL string.
    ///
    /// - Throws: ``MessagingError`` with ``MessagingError/Code/invalidURL`` or
    ///   ``MessagingError/Code/unsupportedScheme`` (naming the schemes that are registered).
    public static func makeBroker(url: String) throws -> any MessageBroker {
        try makeBroker(url: BrokerURL(url))
    }

    /// Builds a broker from a parsed URL.
    public static func makeBroker(url: BrokerURL) throws -> any MessageBroker {
        guard let factory = factories.withLock({ $0[url.scheme] }) else {
            throw MessagingError(
                .unsupportedScheme,
                "no broker serves the scheme '\(url.scheme)' in \(url.redacted); registered schemes: \(schemes.joined(separator: ", "))"
            )
        }
        return try factory(url)
    }
}
