import Jadugar
import JadugarPublisher

/// One message's part of a `publish` call: exchange, routing key, mandatory flag, priority,
/// expiration, field count and the envelope's fields, already in RESP (encoded by the publishing
/// task), so that the I/O thread only copies bytes into the connection's buffer.
struct RedisPublishItem: Sendable {
    var segment: RESPArguments
}

/// The publishing path: the publisher core's ``Batcher`` carries each encoded message from the
/// publishing task through its lock-free ring to a dedicated I/O thread, which writes what has
/// accumulated as a pipeline of `FCALL ... publish` calls of up to
/// ``RedisBroker/Configuration/messagesPerCall`` messages each, then reads the replies and
/// resumes each publisher with its own outcome.
final class RedisPublisher: Sendable {
    private let batcher: Batcher<RedisPublishItem>

    init(link: RedisLink, prefix: String, trim: Int?, messagesPerCall: Int, configuration: BatcherConfiguration) {
        batcher = Batcher(configuration: configuration, sink: RedisPublishSink(link: link, prefix: prefix, trim: trim, messagesPerCall: messagesPerCall))
        batcher.start()
    }

    /// Returns when Redis has routed the message into every bound queue (or refused it).
    ///
    /// - Throws: ``MessagingError``: the library's refusal for this message (`notFound` exchange,
    ///   `queueFull`, `unroutable`), Redis's own error, `connectionFailed`, or `notConnected`
    ///   after ``shutdown()``.
    func publish(_ item: RedisPublishItem) async throws {
        do {
            try await batcher.submit(item)
        } catch let error as PublisherError {
            switch error.code {
            case .bufferFull:
                throw MessagingError(.queueFull, "the Redis publish buffer is full: \(error.message)", isRetriable: true)
            default:
                throw MessagingError(.notConnected, "the Redis broker is disconnected; the message was not published (\(error.code))")
            }
        }
    }

    /// Writes what is buffered, then closes the connection.
    func shutdown() async {
        await batcher.shutdown(drain: true)
    }
}

/// Writes batches of messages as a pipeline of `publish` calls: each call's RESP (a header, then
/// the messages' pre-encoded parts) appended with `redisAppendFormattedCommand`, then one
/// `redisGetReply` per call; a call's reply holds one result per message, so one message's
/// refusal fails only its own publisher. Runs only on the batcher's I/O thread.
///
/// The replies of a batch are read while later batches are already on their way: `write(_:)`
/// sends its calls and keeps their completions, reading the oldest replies only once more than
/// ``window`` calls are unanswered; `idle()` reads the rest when there is nothing more to send.
/// Redis thus always has work queued instead of waiting for the client between batches, and a
/// lone publisher still gets its confirmation at once (the I/O thread goes idle right after).
struct RedisPublishSink: BatchSink {
    typealias Item = RedisPublishItem

    /// A call's arguments stay under this many bytes (a large payload travels alone).
    static let maxCallBytes = 4 << 20

    /// A call sent and not yet answered: its command (to send again if Redis had lost the
    /// function library) and its messages' completions, in order.
    private struct Call {
        /// The RESP array header and the call's own arguments (function, operation, prefix, trim, count).
        var header: [UInt8]
        var segments: [[UInt8]]
        var completions: [BatchCompletion]
    }

    private var link: RedisReconnector
    private let prefix: String
    private let trim: Int?
    private let messagesPerCall: Int
    private var connection: RedisConnection?
    private var inFlight = FIFO<Call>()
    /// `FCALL <library> 0 publish <prefix> <trim>` in RESP, the same for every call.
    private let fixedArguments: RESPArguments

    init(link: RedisLink, prefix: String, trim: Int?, messagesPerCall: Int) {
        self.link = RedisReconnector(link: link, role: "jadugar-publish")
        self.prefix = prefix
        self.trim = trim
        self.messagesPerCall = max(1, messagesPerCall)
        var fixed = RESPArguments()
        for argument in ["FCALL", RedisScript.name, "0", "publish", prefix, String(trim ?? 0)] { fixed.append(argument) }
        self.fixedArguments = fixed
    }

    private func header(messages: Int, arguments: Int) -> [UInt8] {
        var count = RESPArguments(capacity: 16)
        count.append(messages)
        return RESPArguments.arrayHeader(fixedArguments.count + 1 + arguments) + fixedArguments.bytes + count.bytes
    }

    private func send(_ call: Call, on connection: RedisConnection) throws {
        try connection.appendFormatted(call.header)
        for segment in call.segments { try connection.appendFormatted(segment) }
    }

    mutating func write(_ batch: inout Batch<RedisPublishItem>) throws {
        let connection: RedisConnection
        do {
            connection = try link.connected()
        } catch {
            fail(error)
            throw error
        }
        self.connection = connection
        var calls: [Call] = []
        var start = 0
        var bytes = 0
        for index in 0...batch.count {
            let size = index < batch.count ? batch[index].segment.bytes.count : 0
            if index == batch.count || (index > start && (index - start >= messagesPerCall || bytes + size > Self.maxCallBytes)) {
                var segments: [[UInt8]] = []
                var completions: [BatchCompletion] = []
                var arguments = 0
                segments.reserveCapacity(index - start)
                completions.reserveCapacity(index - start)
                for member in start..<index {
                    let segment = batch[member].segment
                    segments.append(segment.bytes)
                    arguments += segment.count
                    completions.append(batch.takeCompletion(at: member))
                }
                calls.append(Call(header: header(messages: segments.count, arguments: arguments), segments: segments, completions: completions))
                start = index
                bytes = 0
            }
            bytes += size
        }
        let earlier = inFlight.count
        do {
            for call in calls { try send(call, on: connection) }
            try connection.flush()
        } catch {
            for call in calls { for completion in call.completions { completion.fail(error) } }
            lost(error)
            return
        }
        inFlight.append(contentsOf: calls)
        // Keep at most `window` calls unanswered beyond this batch: Redis works through them
        // while this thread collects and sends the next batch; idle() reads the rest.
        var toRead = max(0, min(earlier, inFlight.count - Self.window))
        while toRead > 0 {
            readOne()
            toRead -= 1
        }
    }

    /// How many calls may stay unanswered while new ones are sent (32 calls of 64 messages).
    static let window = 32

    mutating func idle() -> Duration? {
        while !inFlight.isEmpty { readOne() }
        return nil
    }

    mutating func close() {
        while !inFlight.isEmpty { readOne() }
        connection = nil
        link.close()
    }

    /// Reads the reply of the oldest call in flight and resolves its messages.
    private mutating func readOne() {
        guard let connection, let call = inFlight.first else { return }
        let reply: RedisValue
        do {
            reply = try connection.readReply()
        } catch {
            lost(error)
            return
        }
        inFlight.removeFirst()
        if case .error(let text) = reply, RedisScript.isMissing(text) {
            reload(after: call)
            return
        }
        Self.settle(call, reply)
    }

    /// Redis did not know the function library: read what else is in flight, load the library,
    /// and send the refused calls again.
    private mutating func reload(after first: Call) {
        guard let connection else { return }
        var again = [first]
        do {
            while let call = inFlight.first {
                let reply = try connection.readReply()
                inFlight.removeFirst()
                if case .error(let text) = reply, RedisScript.isMissing(text) { again.append(call) } else { Self.settle(call, reply) }
            }
            try connection.loadScript()
            for call in again { try send(call, on: connection) }
            try connection.flush()
            inFlight.append(contentsOf: again)
        } catch {
            for call in again { for completion in call.completions { completion.fail(error) } }
            lost(error)
        }
    }

    private static func settle(_ call: Call, _ reply: RedisValue) {
        if case .error(let text) = reply {
            let error = RedisErrors.reply(text, while: "publishing to Redis")
            for completion in call.completions { completion.fail(error) }
            return
        }
        let results = reply.elements
        for (offset, completion) in call.completions.enumerated() {
            guard offset < results.count else {
                completion.fail(MessagingError(.brokerError, "Redis answered a publish of \(call.completions.count) messages with \(results.count) results"))
                continue
            }
            if case .error(let text) = results[offset] {
                completion.fail(RedisErrors.reply(text, while: "publishing to Redis"))
            } else {
                completion.succeed()
            }
        }
    }

    /// The connection broke: every call in flight fails (Redis may or may not have run it).
    private mutating func lost(_ error: any Error) {
        fail(error)
        connection = nil
        link.drop(error)
    }

    private mutating func fail(_ error: any Error) {
        while let call = inFlight.popFirst() {
            for completion in call.completions { completion.fail(error) }
        }
    }
}
