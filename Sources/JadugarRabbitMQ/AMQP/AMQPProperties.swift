import CRabbitMQ

/// The basic-class content properties of an AMQP message, as Swift values.
struct AMQPProperties: Sendable, Hashable {
    var contentType: String?
    var contentEncoding: String?
    /// Headers in table order. Jadugar writes string values; other clients may write any kind.
    var headers: [AMQPTableEntry] = []
    var hasHeaders = false
    var deliveryMode: UInt8?
    var priority: UInt8?
    var correlationID: String?
    var replyTo: String?
    var expiration: String?
    var messageID: String?
    /// Seconds since 1970.
    var timestamp: UInt64?
    var type: String?
    var userID: String?
    var appID: String?

    init() {}

    // Property flags of the basic class (AMQP 0-9-1, section 4.2.6.1); macros rabbitmq-c does not export to Swift.
    enum Flag {
        static let contentType: UInt32 = 1 << 15
        static let contentEncoding: UInt32 = 1 << 14
        static let headers: UInt32 = 1 << 13
        static let deliveryMode: UInt32 = 1 << 12
        static let priority: UInt32 = 1 << 11
        static let correlationID: UInt32 = 1 << 10
        static let replyTo: UInt32 = 1 << 9
        static let expiration: UInt32 = 1 << 8
        static let messageID: UInt32 = 1 << 7
        static let timestamp: UInt32 = 1 << 6
        static let type: UInt32 = 1 << 5
        static let userID: UInt32 = 1 << 4
        static let appID: UInt32 = 1 << 3
    }

    /// Copies properties out of rabbitmq-c.
    init(copying c: amqp_basic_properties_t) {
        let flags = c._flags
        func text(_ flag: UInt32, _ bytes: amqp_bytes_t) -> String? {
            flags & flag != 0 ? String(amqpBytes: bytes) : nil
        }
        contentType = text(Flag.contentType, c.content_type)
        contentEncoding = text(Flag.contentEncoding, c.content_encoding)
        if flags & Flag.headers != 0 {
            hasHeaders = true
            headers = AMQPFieldValue.entries(of: c.headers)
        }
        deliveryMode = flags & Flag.deliveryMode != 0 ? c.delivery_mode : nil
        priority = flags & Flag.priority != 0 ? c.priority : nil
        correlationID = text(Flag.correlationID, c.correlation_id)
        replyTo = text(Flag.replyTo, c.reply_to)
        expiration = text(Flag.expiration, c.expiration)
        messageID = text(Flag.messageID, c.message_id)
        timestamp = flags & Flag.timestamp != 0 ? c.timestamp : nil
        type = text(Flag.type, c.type)
        userID = text(Flag.userID, c.user_id)
        appID = text(Flag.appID, c.app_id)
    }

    /// Builds the C struct, with every string and table in `arena`.
    func makeC(in arena: CArena) -> amqp_basic_properties_t {
        var c = amqp_basic_properties_t()
        var flags: UInt32 = 0
        func set(_ value: String?, _ flag: UInt32, _ field: inout amqp_bytes_t) {
            guard let value else { return }
            flags |= flag
            field = arena.bytes(value)
        }
        set(contentType, Flag.contentType, &c.content_type)
        set(contentEncoding, Flag.contentEncoding, &c.content_encoding)
        if hasHeaders || !headers.isEmpty {
            flags |= Flag.headers
            c.headers = arena.table(headers)
        }
        if let deliveryMode {
            flags |= Flag.deliveryMode
            c.delivery_mode = deliveryMode
        }
        if let priority {
            flags |= Flag.priority
            c.priority = priority
        }
        set(correlationID, Flag.correlationID, &c.correlation_id)
        set(replyTo, Flag.replyTo, &c.reply_to)
        set(expiration, Flag.expiration, &c.expiration)
        set(messageID, Flag.messageID, &c.message_id)
        if let timestamp {
            flags |= Flag.timestamp
            c.timestamp = timestamp
        }
        set(type, Flag.type, &c.type)
        set(userID, Flag.userID, &c.user_id)
        set(appID, Flag.appID, &c.app_id)
        c._flags = flags
        return c
    }
}
