import Jadugar
import Testing

@Suite("MessageRouter and middleware", .timeLimit(.minutes(1)))
struct MessageRouterTests {
    @Test("the most specific pattern wins: exact, then more literal words, then fewer #, then fewer *, then first registered")
    func precedence() async throws {
        let router = MessageRouter(try await connectedManager())
        let hits = Recorder<String>()
        for pattern in ["#", "user.#", "user.*", "user.created", "*.created", "user.*.eu", "#.eu"] {
            try router.route(pattern) { _, context in hits.append(context.pattern ?? "?") }
        }
        #expect(router.match("user.created") == "user.created")
        #expect(router.match("user.deleted") == "user.*")
        #expect(router.match("user.created.eu") == "user.*.eu")
        #expect(router.match("user") == "user.#")
        #expect(router.match("order.created") == "*.created")
        #expect(router.match("order.x.eu") == "#.eu")
        #expect(router.match("anything") == "#")
        try await router.handle(Message(topic: "user.deleted"))
        #expect(hits.values == ["user.*"])
    }

    @Test("equally specific patterns: the first registered wins")
    func tieBreak() async throws {
        let router = MessageRouter(try await connectedManager())
        try router.route("*.created") { _, _ in }
        try router.route("user.*") { _, _ in }
        #expect(router.match("user.created") == "*.created", "one literal and one '*' each: registration order decides")
        let other = MessageRouter(try await connectedManager())
        try other.route("a.*.c") { _, _ in }
        try other.route("a.b.*") { _, _ in }
        #expect(other.match("a.b.c") == "a.*.c")
    }

    @Test("router middleware runs before route middleware, each in order, around the handler")
    func middlewareOrder() async throws {
        let router = MessageRouter(try await connectedManager())
        let trace = Recorder<String>()
        func step(_ name: String) -> ClosureMiddleware {
            ClosureMiddleware { message, context, next in
                trace.append("\(name)>")
                try await next(message, context)
                trace.append("<\(name)")
            }
        }
        router.use(step("A")).use(step("B"))
        try router.route("x.*", middleware: [step("R1"), step("R2")]) { _, _ in trace.append("handler") }
        router.use(step("C"))
        try await router.handle(Message(topic: "x.y"))
        #expect(trace.values == ["A>", "B>", "C>", "R1>", "R2>", "handler", "<R2", "<R1", "<C", "<B", "<A"])
    }

    @Test("middleware can change the message and pass values to the handler")
    func middlewareTransforms() async throws {
        let router = MessageRouter(try await connectedManager())
        let seen = Recorder<String>()
        router.use(ClosureMiddleware { message, context, next in
            var message = message
            message.metadata.headers["tenant"] = "acme"
            var context = context
            context.values["user"] = "ada"
            try await next(message, context)
        })
        try router.route("t") { message, context in seen.append("\(message.metadata.headers["tenant"]!)/\(context.values["user"]!)") }
        try await router.handle(Message(topic: "t"))
        #expect(seen.values == ["acme/ada"])
    }

    @Test("an error thrown in middleware stops the chain and reaches the caller")
    func middlewareError() async throws {
        let router = MessageRouter(try await connectedManager())
        let handled = Recorder<Int>()
        router.use(ClosureMiddleware { _, _, _ in throw MessagingError(.accessDenied, "no entry") })
        try router.route("t") { _, _ in handled.append(1) }
        await expectError(.accessDenied) { try await router.handle(Message(topic: "t")) }
        #expect(handled.count == 0)
    }

    @Test("no matching route is a noRoute error; removeRoute and clearRoutes remove routes")
    func routeManagement() async throws {
        let router = MessageRouter(try await connectedManager())
        try router.route("a.*") { _, _ in }
        try router.route("b.*") { _, _ in }
        await expectError(.noRoute) { try await router.handle(Message(topic: "c.x")) }
        router.removeRoute("a.*")
        #expect(router.patterns == ["b.*"])
        await expectError(.noRoute) { try await router.handle(Message(topic: "a.x")) }
        router.clearRoutes()
        #expect(router.patterns.isEmpty)
        #expect(throws: MessagingError.self) { try router.route("bad.#x") { _, _ in } }
    }

    @Test("MiddlewareChain: use, remove by name, execute")
    func chain() async throws {
        var chain = MiddlewareChain()
        let trace = Recorder<String>()
        chain.use(ClosureMiddleware { m, c, next in trace.append("log"); try await next(m, c) }, name: "log")
        chain.use(ClosureMiddleware { m, c, next in trace.append("auth"); try await next(m, c) }, name: "auth")
        #expect(chain.count == 2)
        let removed = chain.remove(named: "log")
        let removedMissing = chain.remove(named: "missing")
        #expect(removed)
        #expect(!removedMissing)
        try await chain.execute(Message(topic: "t"), context: MessageContext()) { _, _ in trace.append("handler") }
        #expect(trace.values == ["auth", "handler"])
    }

    @Test("start() subscribes every route through one queue and dispatches each message once")
    func startRoutesFromBroker() async throws {
        let manager = try await connectedManager()
        let router = MessageRouter(manager)
        let seen = Recorder<String>()
        try router.route("user.*") { message, _ in seen.append("user:\(message.topic)") }
        try router.route("user.created") { message, _ in seen.append("exact:\(message.topic)") }
        try router.route("order.#") { message, _ in seen.append("order:\(message.topic)") }
        let subscription = try await router.start(options: SubscribeOptions(group: "router-test"))
        try await manager.publish("user.created", Message())
        try await manager.publish("user.deleted", Message())
        try await manager.publish("order.paid.eu", Message())
        try await manager.publish("other.thing", Message())
        #expect(await eventually { seen.count >= 3 })
        #expect(Set(seen.values) == ["exact:user.created", "user:user.deleted", "order:order.paid.eu"])
        await subscription.cancel()
    }
}
