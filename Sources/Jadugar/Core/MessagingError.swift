/// The one error type of the Jadugar messaging layer.
///
/// Every failure carries a ``Code`` to branch on, a message written for people, and, when a
/// broker refused something, the broker's own code and words. Retry and dead-letter logic use
/// ``isRetriable`` to decide whether trying again can help.
///
/// ```swift
/// do {
///     try await manager.publish("orders.created", message)
/// } catch let error as MessagingError where error.code == .notConnected {
///     try await manager.connect()
/// }
/// ```
public struct MessagingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Hashable, Sendable {
            case invalidTopic, invalidPattern, invalidQueueName, invalidArgument, payloadTooLarge
            case invalidURL, unsupportedScheme, notConnected, connectionFailed, authenticationFailed
            case timeout, brokerError, notFound, alreadyExists, queueFull, unroutable, unsupported
            case cancelled, closed, remoteFailure, noRoute, decodeFailed, accessDenied, integrity
        }
        fileprivate let base: Base

        /// A topic name is empty, too long, or contains characters or wildcards it may not.
        public static let invalidTopic = Code(base: .invalidTopic)
        /// A subscription pattern is malformed (for example `user.#x`).
        public static let invalidPattern = Code(base: .invalidPattern)
        /// A queue or exchange name is empty or too long.
        public static let invalidQueueName = Code(base: .invalidQueueName)
        /// An option is out of its range (a negative timeout, zero attempts, ...).
        public static let invalidArgument = Code(base: .invalidArgument)
        /// The payload exceeds the configured maximum size.
        public static let payloadTooLarge = Code(base: .payloadTooLarge)
        /// A broker URL could not be parsed.
        public static let invalidURL = Code(base: .invalidURL)
        /// A broker URL names a scheme no registered broker serves.
        public static let unsupportedScheme = Code(base: .unsupportedScheme)
        /// The operation needs a connection and there is none (before `connect` or after `disconnect`).
        public static let notConnected = Code(base: .notConnected)
        /// The broker could not be reached or the connection broke.
        public static let connectionFailed = Code(base: .connectionFailed)
        /// The broker refused the credentials.
        public static let authenticationFailed = Code(base: .authenticationFailed)
        /// A bounded wait ran out.
        public static let timeout = Code(base: .timeout)
        /// The broker refused the operation; ``MessagingError/brokerCode`` and ``MessagingError/brokerReason`` say why.
        public static let brokerError = Code(base: .brokerError)
        /// A queue, exchange, topic or message does not exist.
        public static let notFound = Code(base: .notFound)
        /// Something exists already with different settings.
        public static let alreadyExists = Code(base: .alreadyExists)
        /// A bounded queue refused a message because it is full.
        public static let queueFull = Code(base: .queueFull)
        /// A mandatory message matched no queue.
        public static let unroutable = Code(base: .unroutable)
        /// The broker does not offer this operation.
        public static let unsupported = Code(base: .unsupported)
        /// The operation was cancelled.
        public static let cancelled = Code(base: .cancelled)
        /// The object (subscription, publisher, broker) was closed.
        public static let closed = Code(base: .closed)
        /// The remote side of a request failed while handling it.
        public static let remoteFailure = Code(base: .remoteFailure)
        /// No route of a router matches the message's topic.
        public static let noRoute = Code(base: .noRoute)
        /// A message could not be decoded.
        public static let decodeFailed = Code(base: .decodeFailed)
        /// An access rule denied the operation.
        public static let accessDenied = Code(base: .accessDenied)
        /// A message failed an integrity check (for example a wrong authentication tag).
        public static let integrity = Code(base: .integrity)

        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A sentence for people: what went wrong and, where it helps, what to do.
    public var message: String
    /// The broker's own code (`NOT_FOUND`, `WRONGTYPE`, `UNKNOWN_TOPIC_OR_PART`, ...), when the broker said no.
    public var brokerCode: String?
    /// The broker's own text, when the broker said no.
    public var brokerReason: String?
    /// Whether the same operation may succeed if tried again later.
    public var isRetriable: Bool
    /// Where the error was raised.
    public var file: String
    /// Where the error was raised.
    public var line: UInt

    /// Creates an error.
    ///
    /// ```swift
    /// throw MessagingError(.invalidArgument, "prefetch must be at least 1, got 0")
    /// ```
    public init(
        _ code: Code,
        _ message: String,
        brokerCode: String? = nil,
        brokerReason: String? = nil,
        isRetriable: Bool? = nil,
        file: String = #fileID,
        line: UInt = #line
    ) {
        self.code = code
        self.message = message
        self.brokerCode = brokerCode
        self.brokerReason = brokerReason
        self.isRetriable = isRetriable ?? Self.defaultRetriable(code)
        self.file = file
        self.line = line
    }

    private static func defaultRetriable(_ code: Code) -> Bool {
        switch code.base {
        case .notConnected, .connectionFailed, .timeout, .queueFull, .remoteFailure: return true
        default: return false
        }
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let brokerCode, let brokerReason {
            text += " (broker: \(brokerCode) \(brokerReason))"
        } else if let reason = brokerReason ?? brokerCode {
            text += " (broker: \(reason))"
        }
        return text
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.brokerCode == rhs.brokerCode
            && lhs.brokerReason == rhs.brokerReason
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
    }
}
