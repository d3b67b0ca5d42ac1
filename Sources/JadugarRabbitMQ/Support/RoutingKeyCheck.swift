/// A fast path for the checks `TopicPattern` makes on every publish: printable ASCII names are
/// judged byte by byte; anything else (non-ASCII, or a name these checks would reject) goes to
/// `TopicPattern`, which decides and explains.
///
/// Same rules as `TopicPattern.validateName` / `validateTopic`: 1 to 255 bytes, no control
/// character or space; topics also have no `*` or `#` and no empty word.
enum RoutingKeyCheck {
    /// Whether `name` is a valid queue name made of printable ASCII only.
    static func isPlainQueueName(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { bytes in
            guard !bytes.isEmpty, bytes.count <= 255 else { return false }
            for byte in bytes where byte <= 0x20 || byte >= 0x7F { return false }
            return true
        }
    }

    /// Whether `topic` is a valid topic made of printable ASCII only.
    static func isPlainTopic(_ topic: String) -> Bool {
        var topic = topic
        return topic.withUTF8 { bytes in
            guard !bytes.isEmpty, bytes.count <= 255 else { return false }
            var previousWasDot = true
            for byte in bytes {
                if byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "*") || byte == UInt8(ascii: "#") { return false }
                let isDot = byte == UInt8(ascii: ".")
                if isDot && previousWasDot { return false }
                previousWasDot = isDot
            }
            return !previousWasDot
        }
    }
}
