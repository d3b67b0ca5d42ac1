/// Something binary-safe command arguments can be appended to.
protocol RedisArguments {
    mutating func append(_ argument: String)
    mutating func append(_ argument: [UInt8])
    mutating func append(_ argument: Int)
}

extension RedisArguments {
    mutating func append(_ argument: Int64) {
        append(String(argument))
    }
}

/// Arguments encoded in RESP as they are appended (`$<length>\r\n<bytes>\r\n` each, without the
/// array header), so that the I/O thread only copies them into the connection's buffer.
struct RESPArguments: RedisArguments, Sendable {
    private(set) var bytes: [UInt8]
    /// How many arguments.
    private(set) var count = 0

    init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func append(_ argument: String) {
        var argument = argument
        argument.withUTF8 { utf8 in
            header(utf8.count)
            bytes.append(contentsOf: utf8)
        }
        bytes.append(13)
        bytes.append(10)
    }

    mutating func append(_ argument: [UInt8]) {
        header(argument.count)
        bytes.append(contentsOf: argument)
        bytes.append(13)
        bytes.append(10)
    }

    mutating func append(_ argument: Int) {
        append(String(argument))
    }

    private mutating func header(_ length: Int) {
        count += 1
        bytes.append(36) // "$"
        Self.appendDecimal(length, to: &bytes)
        bytes.append(13)
        bytes.append(10)
    }

    /// The RESP array header for `count` arguments: `*<count>\r\n`.
    static func arrayHeader(_ count: Int) -> [UInt8] {
        var out: [UInt8] = [42] // "*"
        appendDecimal(count, to: &out)
        out.append(13)
        out.append(10)
        return out
    }

    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 10 {
            out.append(48 + UInt8(value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var rest = value
        var used = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while rest > 0 {
                buffer[19 - used] = 48 + UInt8(rest % 10)
                rest /= 10
                used += 1
            }
            out.append(contentsOf: buffer[(20 - used)...])
        }
    }
}

/// One Redis command as binary-safe arguments, stored flat: every argument's bytes back to back,
/// plus each argument's length. One allocation per command however many arguments it has, and
/// `Sendable`, so it can travel through the publisher core's ring buffer to the I/O thread.
struct RedisCommand: RedisArguments, Sendable {
    private(set) var bytes: [UInt8]
    private(set) var lengths: [Int]

    init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
        lengths = []
        lengths.reserveCapacity(8)
    }

    init(_ arguments: String...) {
        self.init()
        for argument in arguments { append(argument) }
    }

    init(_ arguments: [String]) {
        self.init()
        for argument in arguments { append(argument) }
    }

    /// The number of arguments, the command name included.
    var count: Int { lengths.count }

    mutating func append(_ argument: String) {
        var argument = argument
        argument.withUTF8 { utf8 in
            bytes.append(contentsOf: utf8)
            lengths.append(utf8.count)
        }
    }

    mutating func append(_ argument: [UInt8]) {
        bytes.append(contentsOf: argument)
        lengths.append(argument.count)
    }

    mutating func append(_ argument: Int) {
        append(String(argument))
    }

    /// Appends every argument of another command.
    mutating func append(contentsOf other: RedisCommand) {
        bytes.append(contentsOf: other.bytes)
        lengths.append(contentsOf: other.lengths)
    }

    /// The number of bytes of all arguments together.
    var byteCount: Int { bytes.count }

    /// The arguments as text (lossy for binary ones), for replaying a command with another tool.
    var arguments: [String] {
        var arguments: [String] = []
        var offset = 0
        for length in lengths {
            arguments.append(String(decoding: bytes[offset..<(offset + length)], as: UTF8.self))
            offset += length
        }
        return arguments
    }

    /// The arguments as text, for error messages (binary arguments are summarised).
    var summary: String {
        var parts: [String] = []
        var offset = 0
        for length in lengths.prefix(4) {
            let slice = bytes[offset..<(offset + length)]
            parts.append(String(validating: slice, as: UTF8.self).map { $0.count > 40 ? String($0.prefix(40)) + "…" : $0 } ?? "<\(length) bytes>")
            offset += length
        }
        if lengths.count > 4 { parts.append("… (\(lengths.count) arguments)") }
        return parts.joined(separator: " ")
    }

    /// Lends hiredis the `argc`/`argv`/`argvlen` triple; the pointers are valid only inside `body`.
    func withArgv<Result>(_ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) throws -> Result) rethrows -> Result {
        try bytes.withUnsafeBufferPointer { storage in
            try lengths.withUnsafeBufferPointer { lengths in
                // An empty buffer has no base address; hiredis never reads a zero-length argument,
                // but it must not be handed a null pointer either.
                let empty: StaticString = ""
                let base = storage.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(empty.utf8Start)
                var argv = [UnsafePointer<CChar>?](repeating: nil, count: lengths.count)
                var offset = 0
                for index in 0..<lengths.count {
                    argv[index] = (base + offset).assumingMemoryBound(to: CChar.self)
                    offset += lengths[index]
                }
                return try argv.withUnsafeMutableBufferPointer { argv in
                    try body(Int32(lengths.count), argv.baseAddress!, lengths.baseAddress!)
                }
            }
        }
    }
}
