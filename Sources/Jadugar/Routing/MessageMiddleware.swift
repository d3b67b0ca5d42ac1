import Logging

/// What middleware and route handlers know besides the message.
public struct MessageContext: Sendable {
    /// The route pattern that matched, once routing has chosen one.
    public var pattern: String?
    /// Where to log.
    public var logger: Logger
    /// Values middleware passes on to later middleware and the handler.
    public var values: [String: String]

    /// Creates a context.
    public init(pattern: String? = nil, logger: Logger = Logger(label: "jadugar", factory: { _ in SwiftLogNoOpLogHandler() }), values: [String: String] = [:]) {
        self.pattern = pattern
        self.logger = logger
        self.values = values
    }
}

/// The rest of the chain, as middleware sees it.
public typealias MiddlewareNext = @Sendable (Message, MessageContext) async throws -> Void

/// A step around message handling: it may inspect or change the message, refuse it by throwing,
/// or do work before and after calling `next`.
///
/// ```swift
/// struct Timing: MessageMiddleware {
///     func handle(_ message: Message, context: MessageContext, next: MiddlewareNext) async throws {
///         let start = ContinuousClock.now
///         try await next(message, context)
///         context.logger.info("handled in \(ContinuousClock.now - start)")
///     }
/// }
/// ```
public protocol MessageMiddleware: Sendable {
    /// Handles a message, calling `next` to continue the chain.
    func handle(_ message: Message, context: MessageContext, next: MiddlewareNext) async throws
}

/// Middleware from a closure.
///
/// ```swift
/// router.use(ClosureMiddleware { message, context, next in
///     print("processing", message.id)
///     try await next(message, context)
/// })
/// ```
public struct ClosureMiddleware: MessageMiddleware {
    private let body: @Sendable (Message, MessageContext, MiddlewareNext) async throws -> Void

    /// Wraps a closure.
    public init(_ body: @escaping @Sendable (Message, MessageContext, MiddlewareNext) async throws -> Void) {
        self.body = body
    }

    public func handle(_ message: Message, context: MessageContext, next: MiddlewareNext) async throws {
        try await body(message, context, next)
    }
}

/// An ordered list of middleware, run first to last around a handler.
///
/// ```swift
/// var chain = MiddlewareChain()
/// chain.use(logging, name: "logging")
/// chain.use(auth, name: "auth")
/// chain.remove(named: "logging")
/// try await chain.execute(message, context: MessageContext()) { message, _ in try await handle(message) }
/// ```
public struct MiddlewareChain: Sendable {
    private var entries: [(name: String?, middleware: any MessageMiddleware)]

    /// Creates a chain.
    public init(_ middleware: [any MessageMiddleware] = []) {
        entries = middleware.map { (nil, $0) }
    }

    /// How many middleware the chain holds.
    public var count: Int { entries.count }

    /// Appends middleware; a name lets you ``remove(named:)`` it.
    public mutating func use(_ middleware: any MessageMiddleware, name: String? = nil) {
        entries.append((name, middleware))
    }

    /// Removes every middleware of that name; returns whether any was removed.
    @discardableResult
    public mutating func remove(named name: String) -> Bool {
        let before = entries.count
        entries.removeAll { $0.name == name }
        return entries.count != before
    }

    /// Runs the chain around `handler`.
    public func execute(_ message: Message, context: MessageContext, handler: @escaping MiddlewareNext) async throws {
        try await compose(handler)(message, context)
    }

    /// Folds the chain around a handler once, so that each message pays only the calls.
    public func compose(_ handler: @escaping MiddlewareNext) -> MiddlewareNext {
        var next = handler
        for entry in entries.reversed() {
            let middleware = entry.middleware
            let inner = next
            next = { message, context in try await middleware.handle(message, context: context, next: inner) }
        }
        return next
    }
}
