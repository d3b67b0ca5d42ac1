import CRabbitMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Encodes `basic.publish` frames (method, content header, body) for a whole burst into one
/// buffer, written to a plain TCP socket with one `send` instead of three per message.
///
/// rabbitmq-c encodes the method arguments and the properties (`amqp_encode_method`,
/// `amqp_encode_properties`); this type adds the frame envelopes (AMQP 0-9-1, section 4.2.3).
/// rabbitmq-c keeps no outbound buffer, so writing complete frames to its socket between its own
/// calls is safe; the buffer is always flushed before any rabbitmq-c call on the connection.
///
/// - Important: Not thread-safe; owned by the publisher's I/O thread.
final class FrameBuffer {
    private var storage: UnsafeMutableRawPointer
    private var capacity: Int
    private(set) var count = 0

    /// `basic.publish` (class 60, method 40).
    private static let basicPublish: UInt32 = 0x003C_0028
    private static let basicClass: UInt16 = 60
    private static let frameEnd: UInt8 = 0xCE

    init(capacity: Int = 64 << 10) {
        self.capacity = capacity
        guard let storage = malloc(capacity) else { fatalError("FrameBuffer: out of memory allocating \(capacity) bytes") }
        self.storage = storage
    }

    deinit {
        free(storage)
    }

    var isEmpty: Bool { count == 0 }

    private func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        var newCapacity = capacity * 2
        while newCapacity < count + extra { newCapacity *= 2 }
        guard let grown = realloc(storage, newCapacity) else { fatalError("FrameBuffer: out of memory growing to \(newCapacity) bytes") }
        storage = grown
        capacity = newCapacity
    }

    private func put8(_ value: UInt8, at offset: Int) { storage.storeBytes(of: value, toByteOffset: offset, as: UInt8.self) }
    private func put16(_ value: UInt16, at offset: Int) { storage.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self) }
    private func put32(_ value: UInt32, at offset: Int) { storage.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self) }
    private func put64(_ value: UInt64, at offset: Int) { storage.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self) }

    /// Appends one publish: method frame, header frame, and body frames of at most `frameMax - 8` bytes.
    func appendPublish(
        channel: UInt16, exchange: amqp_bytes_t, routingKey: amqp_bytes_t, mandatory: Bool,
        properties: inout amqp_basic_properties_t, body: UnsafeRawBufferPointer, frameMax: Int
    ) throws(AMQPFailure) {
        let start = count
        // Method frame: 7-byte header, method id, arguments, frame end.
        reserve(7 + 4 + 2 + 256 + 256 + 1 + 1)
        var method = amqp_basic_publish_t(ticket: 0, exchange: exchange, routing_key: routingKey, mandatory: mandatory ? 1 : 0, immediate: 0)
        let methodArguments = amqp_encode_method(Self.basicPublish, &method, amqp_bytes_t(len: capacity - count - 12, bytes: storage + count + 11))
        guard methodArguments >= 0 else {
            count = start
            throw AMQPFailure.library(methodArguments, "encoding basic.publish")
        }
        put8(UInt8(AMQP_FRAME_METHOD), at: count)
        put16(channel, at: count + 1)
        put32(UInt32(4 + methodArguments), at: count + 3)
        put32(Self.basicPublish, at: count + 7)
        count += 11 + Int(methodArguments)
        put8(Self.frameEnd, at: count)
        count += 1

        // Content header frame: class, weight, body size, properties; grow until they fit.
        var room = 1024
        while true {
            reserve(7 + 12 + room + 1)
            let encoded = amqp_encode_properties(Self.basicClass, &properties, amqp_bytes_t(len: room, bytes: storage + count + 19))
            if encoded >= 0 {
                put8(UInt8(AMQP_FRAME_HEADER), at: count)
                put16(channel, at: count + 1)
                put32(UInt32(12 + encoded), at: count + 3)
                put16(Self.basicClass, at: count + 7)
                put16(0, at: count + 9)
                put64(UInt64(body.count), at: count + 11)
                count += 19 + Int(encoded)
                put8(Self.frameEnd, at: count)
                count += 1
                break
            }
            guard room < frameMax else {
                count = start
                throw AMQPFailure.library(encoded, "encoding the message properties (they must fit in one \(frameMax)-byte frame)")
            }
            room *= 4
        }

        // Body frames.
        let chunk = max(1, frameMax - 8)
        var offset = 0
        while offset < body.count {
            let size = min(chunk, body.count - offset)
            reserve(7 + size + 1)
            put8(UInt8(AMQP_FRAME_BODY), at: count)
            put16(channel, at: count + 1)
            put32(UInt32(size), at: count + 3)
            (storage + count + 7).copyMemory(from: body.baseAddress! + offset, byteCount: size)
            count += 7 + size
            put8(Self.frameEnd, at: count)
            count += 1
            offset += size
        }
    }

    /// Writes everything buffered to `socket` and empties the buffer.
    func flush(to socket: Int32, timeoutMilliseconds: Int32) throws(AMQPFailure) {
        guard count > 0 else { return }
        defer { count = 0 }
        if jadugar_send_all(socket, storage, count, timeoutMilliseconds) != 0 {
            let reason = errno == ETIMEDOUT ? "the broker stopped reading for \(timeoutMilliseconds) ms" : "send failed (errno \(errno))"
            throw AMQPFailure.library(AMQP_STATUS_SOCKET_ERROR.rawValue, reason)
        }
    }

    /// Drops what is buffered (the connection is gone).
    func discard() {
        count = 0
    }
}
