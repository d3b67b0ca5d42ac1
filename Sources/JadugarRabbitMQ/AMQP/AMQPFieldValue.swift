import CRabbitMQ

/// A value of an AMQP 0-9-1 field table, copied out of rabbitmq-c into Swift.
///
/// Only the kinds RabbitMQ and the standard clients send are distinguished; the rest read as
/// ``bytes``. Values never point into rabbitmq-c's memory.
enum AMQPFieldValue: Sendable, Hashable {
    case string(String)
    case bytes([UInt8])
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case timestamp(UInt64)
    case table([AMQPTableEntry])
    case array([AMQPFieldValue])
    case void

    /// The value as a header string, the way Jadugar reads headers that other clients wrote:
    /// text as is, numbers in decimal, booleans as `true`/`false`, timestamps as seconds,
    /// tables and arrays as JSON-like text.
    var headerText: String {
        switch self {
        case .string(let text): return text
        case .bytes(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .timestamp(let value): return String(value)
        case .void: return ""
        case .array(let values): return "[" + values.map(\.jsonText).joined(separator: ",") + "]"
        case .table(let entries): return "{" + entries.map { "\(Self.quoted($0.key)):\($0.value.jsonText)" }.joined(separator: ",") + "}"
        }
    }

    private var jsonText: String {
        switch self {
        case .string, .bytes: return Self.quoted(headerText)
        case .void: return "null"
        default: return headerText
        }
    }

    private static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// The value as an integer, when it is one (or a string of digits).
    var integer: Int64? {
        switch self {
        case .int(let value): return value
        case .timestamp(let value): return Int64(exactly: value)
        case .string(let text): return Int64(text)
        case .double(let value): return Int64(exactly: value.rounded())
        default: return nil
        }
    }

    /// The value as text, when it is a string.
    var string: String? {
        switch self {
        case .string(let text): return text
        case .bytes(let bytes): return String(decoding: bytes, as: UTF8.self)
        default: return nil
        }
    }

    /// The entries, when the value is a table.
    var tableEntries: [AMQPTableEntry]? {
        if case .table(let entries) = self { return entries }
        return nil
    }

    /// The elements, when the value is an array.
    var arrayValues: [AMQPFieldValue]? {
        if case .array(let values) = self { return values }
        return nil
    }
}

/// One entry of an AMQP field table.
struct AMQPTableEntry: Sendable, Hashable {
    var key: String
    var value: AMQPFieldValue

    init(_ key: String, _ value: AMQPFieldValue) {
        self.key = key
        self.value = value
    }
}

extension [AMQPTableEntry] {
    /// The value of the first entry with this key.
    subscript(key key: String) -> AMQPFieldValue? {
        first { $0.key == key }?.value
    }
}

// MARK: Decoding from rabbitmq-c

extension AMQPFieldValue {
    /// Copies a rabbitmq-c field value into Swift.
    init(copying value: amqp_field_value_t) {
        switch Character(Unicode.Scalar(value.kind)) {
        case "t": self = .bool(value.value.boolean != 0)
        case "b": self = .int(Int64(value.value.i8))
        case "B": self = .int(Int64(value.value.u8))
        case "s": self = .int(Int64(value.value.i16))
        case "u": self = .int(Int64(value.value.u16))
        case "I": self = .int(Int64(value.value.i32))
        case "i": self = .int(Int64(value.value.u32))
        case "l": self = .int(value.value.i64)
        case "L": self = .int(Int64(truncatingIfNeeded: value.value.u64))
        case "f": self = .double(Double(value.value.f32))
        case "d": self = .double(value.value.f64)
        case "D":
            let decimal = value.value.decimal
            var scaled = Double(decimal.value)
            for _ in 0..<decimal.decimals { scaled /= 10 }
            self = .double(scaled)
        case "S": self = .string(String(amqpBytes: value.value.bytes))
        case "x": self = .bytes([UInt8](amqpBytes: value.value.bytes))
        case "T": self = .timestamp(value.value.u64)
        case "F": self = .table(Self.entries(of: value.value.table))
        case "A":
            let array = value.value.array
            var values: [AMQPFieldValue] = []
            if let entries = array.entries, array.num_entries > 0 {
                values.reserveCapacity(Int(array.num_entries))
                for index in 0..<Int(array.num_entries) { values.append(AMQPFieldValue(copying: entries[index])) }
            }
            self = .array(values)
        case "V": self = .void
        default: self = .bytes([UInt8](amqpBytes: value.value.bytes))
        }
    }

    /// Copies every entry of a rabbitmq-c table.
    static func entries(of table: amqp_table_t) -> [AMQPTableEntry] {
        guard let entries = table.entries, table.num_entries > 0 else { return [] }
        var result: [AMQPTableEntry] = []
        result.reserveCapacity(Int(table.num_entries))
        for index in 0..<Int(table.num_entries) {
            let entry = entries[index]
            result.append(AMQPTableEntry(String(amqpBytes: entry.key), AMQPFieldValue(copying: entry.value)))
        }
        return result
    }
}

extension String {
    /// Decodes AMQP bytes as UTF-8, repairing invalid sequences.
    init(amqpBytes bytes: amqp_bytes_t) {
        guard let base = bytes.bytes, bytes.len > 0 else {
            self = ""
            return
        }
        self = String(decoding: UnsafeRawBufferPointer(start: base, count: bytes.len), as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    /// Copies AMQP bytes.
    init(amqpBytes bytes: amqp_bytes_t) {
        guard let base = bytes.bytes, bytes.len > 0 else {
            self = []
            return
        }
        self = Array(UnsafeRawBufferPointer(start: base, count: bytes.len))
    }
}
