import Jadugar
import JadugarPublisher
import Logging

extension RedisBroker {
    /// Settings of a Redis broker client.
    ///
    /// ```swift
    /// var configuration = RedisBroker.Configuration()
    /// configuration.visibilityTimeout = .seconds(60)
    /// configuration.persistence = true // the server runs with appendonly yes
    /// let broker = try RedisBroker(url: "redis://127.0.0.1:6379", configuration: configuration)
    /// ```
    public struct Configuration: Sendable {
        /// The prefix of every key the adapter writes, so that several applications (or test
        /// runs) can share one Redis database. Default: `"jadugar:"`.
        public var keyPrefix: String
        /// The topic exchange that `publish` and `subscribe` use by default; declared on connect.
        /// Default: `"jadugar"`.
        public var defaultExchange: String
        /// The longest wait to reach the server and finish logging in. Default: 5 seconds.
        public var connectTimeout: Duration
        /// The longest wait for a reply to a command. Default: 10 seconds.
        public var commandTimeout: Duration
        /// How long a message may stay delivered and unsettled in a consumer that no longer
        /// shows signs of life before another consumer reclaims it. Live consumers renew their
        /// claim every third of this, so it bounds how long a crashed consumer's messages wait,
        /// not how long a handler may run. Default: 30 seconds.
        public var visibilityTimeout: Duration
        /// The longest a consumer blocks in `XREADGROUP` before it looks for requeued messages
        /// again. Requeues in this process wake consumers at once; this bounds the delay for
        /// requeues made by other processes. Default: 1 second.
        public var blockTimeout: Duration
        /// How often the timer thread promotes due delayed retries and dead-letters expired
        /// messages when nothing is due sooner. Default: 250 milliseconds.
        public var maintenanceInterval: Duration
        /// An approximate cap on each stream's length (`XADD MAXLEN ~ n`), as a memory safety
        /// valve: Redis then drops the oldest entries even if they were never consumed. Acknowledged
        /// entries are deleted anyway (`XDEL`), so leave it `nil` unless memory matters more than
        /// delivery. Default: `nil` (no trimming).
        public var streamMaxLength: Int?
        /// The largest payload accepted, in bytes. Default: 16 MiB.
        public var maxPayloadBytes: Int
        /// Declare ``BrokerFeature/persistence``: set it when the server runs with
        /// `appendonly yes`, so that acknowledged writes survive a restart. Default: `false`.
        public var persistence: Bool
        /// The shortest wait before reconnecting after a failure; doubled on each failure.
        /// Default: 50 milliseconds.
        public var minimumReconnectBackoff: Duration
        /// The longest wait between reconnection attempts. Default: 2 seconds.
        public var maximumReconnectBackoff: Duration
        /// The publisher core's settings for the publishing pipeline: buffer capacity, the most
        /// messages one write takes (`maxBatch`), linger and backpressure. The control pipeline
        /// (topology, settlements) uses the same with batches of at most 64 commands.
        /// Default: capacity 8192, up to 512 messages per write, no linger, suspend when full.
        public var publisher: BatcherConfiguration
        /// The most messages one `publish` call of the function library carries; a write sends
        /// as many calls as it needs, pipelined. Default: 64.
        public var messagesPerCall: Int
        /// Where the adapter logs. Default: a logger that discards everything.
        public var logger: Logger

        /// Creates a configuration. Every parameter has the default named on its property.
        public init(
            keyPrefix: String = "jadugar:",
            defaultExchange: String = RedisBroker.defaultExchangeName,
            connectTimeout: Duration = .seconds(5),
            commandTimeout: Duration = .seconds(10),
            visibilityTimeout: Duration = .seconds(30),
            blockTimeout: Duration = .seconds(1),
            maintenanceInterval: Duration = .milliseconds(250),
            streamMaxLength: Int? = nil,
            maxPayloadBytes: Int = 16 << 20,
            persistence: Bool = false,
            minimumReconnectBackoff: Duration = .milliseconds(50),
            maximumReconnectBackoff: Duration = .seconds(2),
            publisher: BatcherConfiguration = BatcherConfiguration(capacity: 8192, maxBatch: 512),
            messagesPerCall: Int = 64,
            logger: Logger = Logger(label: "jadugar.redis", factory: { _ in SwiftLogNoOpLogHandler() })
        ) {
            self.keyPrefix = keyPrefix
            self.defaultExchange = defaultExchange
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.visibilityTimeout = visibilityTimeout
            self.blockTimeout = blockTimeout
            self.maintenanceInterval = maintenanceInterval
            self.streamMaxLength = streamMaxLength
            self.maxPayloadBytes = maxPayloadBytes
            self.persistence = persistence
            self.minimumReconnectBackoff = minimumReconnectBackoff
            self.maximumReconnectBackoff = maximumReconnectBackoff
            self.publisher = publisher
            self.messagesPerCall = messagesPerCall
            self.logger = logger
        }

        /// Applies the URL's query: `prefix`, `exchange`, `persistence` (`true`/`false`),
        /// `visibilityTimeout` and `blockTimeout` (milliseconds), `maxLength` (stream cap).
        ///
        /// - Throws: ``MessagingError/Code/invalidURL`` for a value that does not parse.
        mutating func apply(query: [String: String], url: BrokerURL) throws {
            func milliseconds(_ key: String) throws -> Duration? {
                guard let text = query[key] else { return nil }
                guard let value = Int(text), value > 0 else {
                    throw MessagingError(.invalidURL, "\(url.redacted): '\(key)' must be a positive number of milliseconds, got '\(text)'")
                }
                return .milliseconds(value)
            }
            if let prefix = query["prefix"] { keyPrefix = prefix }
            if let exchange = query["exchange"], !exchange.isEmpty { defaultExchange = exchange }
            if let text = query["persistence"] {
                guard let value = Bool(text) else {
                    throw MessagingError(.invalidURL, "\(url.redacted): 'persistence' must be true or false, got '\(text)'")
                }
                persistence = value
            }
            if let value = try milliseconds("visibilityTimeout") { visibilityTimeout = value }
            if let value = try milliseconds("blockTimeout") { blockTimeout = value }
            if let text = query["maxLength"] {
                guard let value = Int(text), value > 0 else {
                    throw MessagingError(.invalidURL, "\(url.redacted): 'maxLength' must be a positive number, got '\(text)'")
                }
                streamMaxLength = value
            }
        }

        func validate() throws {
            for (name, value) in [("connectTimeout", connectTimeout), ("commandTimeout", commandTimeout), ("visibilityTimeout", visibilityTimeout), ("blockTimeout", blockTimeout), ("maintenanceInterval", maintenanceInterval)] where value <= .zero {
                throw MessagingError(.invalidArgument, "RedisBroker.Configuration.\(name) must be positive, got \(value)")
            }
            if let streamMaxLength, streamMaxLength < 1 {
                throw MessagingError(.invalidArgument, "RedisBroker.Configuration.streamMaxLength must be at least 1, got \(streamMaxLength)")
            }
            if messagesPerCall < 1 {
                throw MessagingError(.invalidArgument, "RedisBroker.Configuration.messagesPerCall must be at least 1, got \(messagesPerCall)")
            }
            if maxPayloadBytes < 1 {
                throw MessagingError(.invalidArgument, "RedisBroker.Configuration.maxPayloadBytes must be positive, got \(maxPayloadBytes)")
            }
        }
    }
}
