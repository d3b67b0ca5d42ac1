/// Metadata keys the Redis adapter puts on log records: dotted, lowercase, in one place.
enum RedisLogKey {
    static let broker = "jadugar.broker"
    static let queue = "jadugar.queue"
    static let error = "jadugar.error"
    static let server = "jadugar.redis.server"
    static let client = "jadugar.redis.client"
    static let role = "jadugar.redis.role"
    static let reclaimed = "jadugar.redis.reclaimed"
    static let visibilityTimeout = "jadugar.redis.visibility-timeout"
}
