import Tracing

/// Carries trace context in message headers, so a consumer continues the producer's trace.
///
/// Jadugar injects the current `ServiceContext` with whatever instrument is bootstrapped
/// (`InstrumentationSystem.bootstrap`): with swift-otel that is the W3C `traceparent` and
/// `tracestate` headers. Consumers extract it and run the handler inside a `process` span that
/// is a child of the producer's span; request/reply therefore shows as one trace.
///
/// ```swift
/// InstrumentationSystem.bootstrap(tracer) // for example an OTel tracer
/// try await manager.publish("orders.created", message) // carries traceparent
/// ```
public enum MessageTracing {
    struct HeadersInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
            carrier[key] = value
        }
    }

    struct HeadersExtractor: Extractor {
        func extract(key: String, from carrier: [String: String]) -> String? {
            carrier[key]
        }
    }

    /// Writes the current trace context into a message's headers.
    public static func inject(into message: inout Message) {
        guard let context = ServiceContext.current else { return }
        InstrumentationSystem.instrument.inject(context, into: &message.metadata.headers, using: HeadersInjector())
    }

    /// The trace context a message carries.
    public static func extract(from message: Message) -> ServiceContext {
        var context = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(message.metadata.headers, into: &context, using: HeadersExtractor())
        return context
    }

    /// Runs `body` in a producer span named `publish <topic>` and injects it into the message.
    static func producing<T>(_ message: inout Message, broker: String, _ body: (Message) async throws -> T) async throws -> T {
        let span = InstrumentationSystem.tracer.startSpan("publish \(message.topic)", ofKind: .producer)
        defer { span.end() }
        span.attributes["messaging.system"] = broker
        span.attributes["messaging.destination.name"] = message.topic
        span.attributes["messaging.message.id"] = message.id
        InstrumentationSystem.instrument.inject(span.context, into: &message.metadata.headers, using: HeadersInjector())
        do {
            return try await ServiceContext.withValue(span.context) { [message] in try await body(message) }
        } catch {
            span.recordError(error)
            throw error
        }
    }

    /// Runs a handler in a consumer span that continues the message's trace.
    static func consuming(_ message: Message, queue: String, broker: String, _ body: () async throws -> Void) async throws {
        let parent = extract(from: message)
        let span = InstrumentationSystem.tracer.startSpan("process \(message.topic)", context: parent, ofKind: .consumer)
        defer { span.end() }
        span.attributes["messaging.system"] = broker
        span.attributes["messaging.destination.name"] = message.topic
        span.attributes["messaging.message.id"] = message.id
        span.attributes["messaging.queue"] = queue
        do {
            try await ServiceContext.withValue(span.context) { try await body() }
        } catch {
            span.recordError(error)
            throw error
        }
    }
}
