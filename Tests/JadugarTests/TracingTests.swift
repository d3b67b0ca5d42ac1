import InMemoryTracing
import Jadugar
import Testing
import Tracing

/// The process-wide tracer for these tests; InstrumentationSystem may be bootstrapped only once.
enum TestTracer {
    static let shared: InMemoryTracer = {
        let tracer = InMemoryTracer()
        InstrumentationSystem.bootstrap(tracer)
        return tracer
    }()
}

@Suite("Tracing", .serialized, .timeLimit(.minutes(1)))
struct TracingTests {
    @Test("a request/reply shows as one trace on both sides")
    func requestReplyIsOneTrace() async throws {
        let tracer = TestTracer.shared
        let manager = try await connectedManager()
        let rpc = RequestReply(manager)
        let topic = "trace.\(Message.makeID())"
        let server = try await rpc.reply(topic) { request in
            Message(string: "pong", metadata: MessageMetadata(headers: ["seen-trace": request.metadata.headers.keys.sorted().joined(separator: ",")]))
        }
        let reply = try await rpc.request(topic, Message(string: "ping"))
        #expect(reply.payloadString == "pong")
        await server.cancel()
        await rpc.close()

        let spans = tracer.finishedSpans.filter { $0.operationName.hasSuffix(topic) }
        let request = try #require(spans.first { $0.operationName == "request \(topic)" })
        let publish = try #require(spans.first { $0.operationName == "publish \(topic)" })
        let process = try #require(spans.first { $0.operationName == "process \(topic)" })
        #expect(request.kind == .client && publish.kind == .producer && process.kind == .consumer)
        let trace = request.spanContext.traceID
        #expect(publish.spanContext.traceID == trace)
        #expect(process.spanContext.traceID == trace, "the server continued the requester's trace")
        #expect(process.spanContext.parentSpanID == publish.spanContext.spanID)
        #expect(reply.metadata.headers.keys.contains(InMemoryTracer.traceIDKey), "the reply carries the trace context back")
    }

    @Test("a handler's error is recorded on its consumer span")
    func errorsAreRecorded() async throws {
        let tracer = TestTracer.shared
        let manager = try await connectedManager()
        let topic = "trace.fail.\(Message.makeID())"
        let subscription = try await manager.subscribe(topic, options: SubscribeOptions(group: "g")) { _ in
            throw MessagingError(.brokerError, "boom")
        }
        try await manager.publish(topic, Message())
        #expect(await eventually { tracer.finishedSpans.contains { $0.operationName == "process \(topic)" } })
        let span = try #require(tracer.finishedSpans.first { $0.operationName == "process \(topic)" })
        #expect(span.errors.count == 1)
        await subscription.cancel()
    }
}
