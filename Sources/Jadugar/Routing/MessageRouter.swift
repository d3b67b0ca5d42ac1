import Logging
import Synchronization

/// A route: a pattern, its own middleware, and the handler.
///
/// ```swift
/// RouteOptions(pattern: "user.*", middleware: [audit]) { message, _ in try await handleUser(message) }
/// ```
public struct RouteOptions: Sendable {
    /// The topic pattern (`*` one word, `#` zero or more).
    public var pattern: String
    /// Middleware that runs for this route only, after the router's own.
    public var middleware: [any MessageMiddleware]
    /// The handler.
    public var handler: MiddlewareNext

    /// Creates a route.
    public init(pattern: String, middleware: [any MessageMiddleware] = [], handler: @escaping MiddlewareNext) {
        self.pattern = pattern
        self.middleware = middleware
        self.handler = handler
    }
}

/// Routes messages to handlers by topic pattern, through middleware.
///
/// When several patterns match, the most specific wins: an exact topic first, then the pattern
/// with more literal words, then fewer `#`, then fewer `*`, then the one registered first.
/// Router middleware runs before route middleware, each in the order added. A message no route
/// matches fails with ``MessagingError/Code/noRoute`` (and is dead-lettered when it came from a broker).
///
/// ```swift
/// let router = MessageRouter(manager)
/// router.use(ClosureMiddleware { message, context, next in
///     print("processing", message.id)
///     try await next(message, context)
/// })
/// try router.route(RouteOptions(pattern: "user.*") { message, _ in try await handleUserEvent(message) })
/// let subscription = try await router.start(options: SubscribeOptions(group: "users"))
/// ```
public final class MessageRouter: Sendable {
    private struct Route {
        var pattern: TopicPattern
        var order: Int
        var middleware: [any MessageMiddleware]
        var handler: MiddlewareNext
        var composed: MiddlewareNext
    }

    private struct State {
        var routes: [Route] = []
        var middleware = MiddlewareChain()
        var order = 0
    }

    /// The manager used by ``start(options:)``.
    public let manager: MessageManager
    private let state = Mutex(State())

    /// Creates a router over a manager.
    public init(_ manager: MessageManager) {
        self.manager = manager
    }

    /// Adds a route.
    ///
    /// - Throws: ``MessagingError/Code/invalidPattern``.
    @discardableResult
    public func route(_ options: RouteOptions) throws -> Self {
        let pattern = try TopicPattern(options.pattern)
        state.withLock { state in
            state.order += 1
            state.routes.append(Route(pattern: pattern, order: state.order, middleware: options.middleware, handler: options.handler, composed: options.handler))
            Self.recompose(&state)
        }
        return self
    }

    /// Adds a route from a pattern and a handler.
    @discardableResult
    public func route(_ pattern: String, middleware: [any MessageMiddleware] = [], handler: @escaping MiddlewareNext) throws -> Self {
        try route(RouteOptions(pattern: pattern, middleware: middleware, handler: handler))
    }

    /// Adds middleware that runs for every route, after the middleware added before it.
    @discardableResult
    public func use(_ middleware: any MessageMiddleware, name: String? = nil) -> Self {
        state.withLock { state in
            state.middleware.use(middleware, name: name)
            Self.recompose(&state)
        }
        return self
    }

    /// Removes router middleware by name.
    @discardableResult
    public func removeMiddleware(named name: String) -> Self {
        state.withLock { state in
            state.middleware.remove(named: name)
            Self.recompose(&state)
        }
        return self
    }

    /// Removes the routes with exactly this pattern.
    @discardableResult
    public func removeRoute(_ pattern: String) -> Self {
        state.withLock { $0.routes.removeAll { $0.pattern.pattern == pattern } }
        return self
    }

    /// Removes every route.
    @discardableResult
    public func clearRoutes() -> Self {
        state.withLock { $0.routes.removeAll() }
        return self
    }

    /// The patterns routed, in registration order.
    public var patterns: [String] {
        state.withLock { $0.routes.map(\.pattern.pattern) }
    }

    /// The pattern that would handle a topic, or `nil`.
    public func match(_ topic: String) -> String? {
        state.withLock { Self.best(for: topic, in: $0.routes)?.pattern.pattern }
    }

    /// Routes one message through the middleware to its handler.
    ///
    /// - Throws: ``MessagingError/Code/noRoute`` when no pattern matches; otherwise whatever middleware or the handler throws.
    public func handle(_ message: Message, context: MessageContext = MessageContext()) async throws {
        guard let route = state.withLock({ Self.best(for: message.topic, in: $0.routes) }) else {
            throw MessagingError(.noRoute, "no route matches topic '\(message.topic)'")
        }
        var context = context
        context.pattern = route.pattern.pattern
        try await route.composed(message, context)
    }

    /// Subscribes to every routed pattern through one queue (the group's, or a private one) and handles each message.
    ///
    /// Routes added after `start` are not bound; call `start` again on a new subscription for them.
    public func start(options: SubscribeOptions = .default) async throws -> Subscription {
        let patterns = self.patterns
        guard let first = patterns.first else {
            throw MessagingError(.invalidArgument, "the router has no routes to subscribe to")
        }
        let broker = manager.broker
        let queue = try await broker.declareSubscription(first, options: options)
        for pattern in patterns.dropFirst() {
            try await broker.bind(queue: queue, exchange: options.exchange ?? manager.options.exchange ?? broker.defaultExchange, routingKey: pattern)
        }
        let logger = manager.options.logger
        return try await manager.consume(queue: queue, options: options) { [weak self] message in
            guard let self else { throw MessagingError(.closed, "the router is gone") }
            try await self.handle(message, context: MessageContext(logger: logger))
        }
    }

    private static func recompose(_ state: inout State) {
        for index in state.routes.indices {
            var chain = state.middleware
            for middleware in state.routes[index].middleware { chain.use(middleware) }
            state.routes[index].composed = chain.compose(state.routes[index].handler)
        }
    }

    private static func best(for topic: String, in routes: [Route]) -> Route? {
        var best: Route?
        var bestRank: (Int, Int, Int, Int, Int)?
        for route in routes where route.pattern.matches(topic) {
            let s = route.pattern.specificity
            let rank = (route.pattern.isLiteral ? 1 : 0, s.literals, -s.multis, -s.singles, -route.order)
            if bestRank == nil || rank > bestRank! {
                best = route
                bestRank = rank
            }
        }
        return best
    }
}
