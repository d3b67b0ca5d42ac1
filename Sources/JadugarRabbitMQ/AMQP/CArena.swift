import CRabbitMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A bump allocator for the C structures one rabbitmq-c call reads: strings, table entries,
/// property structs. Everything it hands out lives until ``reset()`` or `deinit`.
///
/// The publisher keeps one arena and resets it after each message, so encoding a message
/// allocates nothing once the arena has grown to the largest message's size.
///
/// - Important: Not thread-safe; each arena belongs to one thread (the connection's).
final class CArena {
    private var chunks: [(base: UnsafeMutableRawPointer, size: Int)] = []
    private var offset = 0
    private let minimumChunk: Int

    init(minimumChunk: Int = 4096) {
        self.minimumChunk = minimumChunk
    }

    deinit {
        for chunk in chunks { free(chunk.base) }
    }

    /// Forgets everything allocated; merges the chunks into one big enough for next time.
    func reset() {
        if chunks.count > 1 {
            let total = chunks.reduce(0) { $0 + $1.size }
            for chunk in chunks { free(chunk.base) }
            chunks = [(malloc(total)!, total)]
        }
        offset = 0
    }

    /// Memory for `byteCount` bytes aligned to 8.
    func allocate(_ byteCount: Int) -> UnsafeMutableRawPointer {
        let size = max(byteCount, 1)
        let aligned = (offset + 7) & ~7
        if let last = chunks.last, aligned + size <= last.size {
            offset = aligned + size
            return last.base + aligned
        }
        let chunkSize = max(minimumChunk, size, (chunks.last?.size ?? 0) * 2)
        guard let base = malloc(chunkSize) else { fatalError("CArena: out of memory allocating \(chunkSize) bytes") }
        chunks.append((base, chunkSize))
        offset = size
        return base
    }

    /// Copies a string's UTF-8 bytes (not NUL-terminated) and returns them as AMQP bytes.
    func bytes(_ text: String) -> amqp_bytes_t {
        var text = text
        return text.withUTF8 { utf8 in bytes(UnsafeRawBufferPointer(utf8)) }
    }

    /// Copies raw bytes.
    func bytes(_ raw: UnsafeRawBufferPointer) -> amqp_bytes_t {
        guard raw.count > 0, let source = raw.baseAddress else { return amqp_bytes_t(len: 0, bytes: nil) }
        let target = allocate(raw.count)
        target.copyMemory(from: source, byteCount: raw.count)
        return amqp_bytes_t(len: raw.count, bytes: target)
    }

    /// Copies a byte array.
    func bytes(_ array: [UInt8]) -> amqp_bytes_t {
        array.withUnsafeBytes { bytes($0) }
    }

    /// Copies a string as a NUL-terminated C string.
    func cString(_ text: String) -> UnsafePointer<CChar> {
        var text = text
        return text.withUTF8 { utf8 in
            let target = allocate(utf8.count + 1).bindMemory(to: UInt8.self, capacity: utf8.count + 1)
            if let source = utf8.baseAddress { target.update(from: source, count: utf8.count) }
            target[utf8.count] = 0
            return UnsafeRawPointer(target).assumingMemoryBound(to: CChar.self)
        }
    }

    /// Builds a rabbitmq-c table from entries.
    func table(_ entries: [AMQPTableEntry]) -> amqp_table_t {
        guard !entries.isEmpty else { return amqp_table_t(num_entries: 0, entries: nil) }
        let memory = allocate(MemoryLayout<amqp_table_entry_t>.stride * entries.count)
            .bindMemory(to: amqp_table_entry_t.self, capacity: entries.count)
        for (index, entry) in entries.enumerated() {
            (memory + index).initialize(to: amqp_table_entry_t(key: bytes(entry.key), value: value(entry.value)))
        }
        return amqp_table_t(num_entries: Int32(entries.count), entries: memory)
    }

    /// Builds a table of string entries, the shape of Jadugar headers.
    func stringTable(_ headers: [(key: String, value: String)]) -> amqp_table_t {
        guard !headers.isEmpty else { return amqp_table_t(num_entries: 0, entries: nil) }
        let memory = allocate(MemoryLayout<amqp_table_entry_t>.stride * headers.count)
            .bindMemory(to: amqp_table_entry_t.self, capacity: headers.count)
        for (index, header) in headers.enumerated() {
            var value = amqp_field_value_t()
            value.kind = UInt8(ascii: "S")
            value.value.bytes = bytes(header.value)
            (memory + index).initialize(to: amqp_table_entry_t(key: bytes(header.key), value: value))
        }
        return amqp_table_t(num_entries: Int32(headers.count), entries: memory)
    }

    /// Builds a rabbitmq-c field value.
    func value(_ value: AMQPFieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .string(let text):
            field.kind = UInt8(ascii: "S")
            field.value.bytes = bytes(text)
        case .bytes(let raw):
            field.kind = UInt8(ascii: "x")
            field.value.bytes = bytes(raw)
        case .bool(let flag):
            field.kind = UInt8(ascii: "t")
            field.value.boolean = flag ? 1 : 0
        case .int(let number):
            field.kind = UInt8(ascii: "l")
            field.value.i64 = number
        case .double(let number):
            field.kind = UInt8(ascii: "d")
            field.value.f64 = number
        case .timestamp(let seconds):
            field.kind = UInt8(ascii: "T")
            field.value.u64 = seconds
        case .table(let entries):
            field.kind = UInt8(ascii: "F")
            field.value.table = table(entries)
        case .array(let values):
            field.kind = UInt8(ascii: "A")
            if values.isEmpty {
                field.value.array = amqp_array_t(num_entries: 0, entries: nil)
            } else {
                let memory = allocate(MemoryLayout<amqp_field_value_t>.stride * values.count)
                    .bindMemory(to: amqp_field_value_t.self, capacity: values.count)
                for (index, element) in values.enumerated() { (memory + index).initialize(to: self.value(element)) }
                field.value.array = amqp_array_t(num_entries: Int32(values.count), entries: memory)
            }
        case .void:
            field.kind = UInt8(ascii: "V")
        }
        return field
    }
}
