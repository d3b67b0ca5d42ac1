/// The error thrown by the publisher core: ring buffers, batcher and connection pool.
///
/// Branch on ``code`` to tell the cases apart, and on ``isRetriable`` to decide whether trying the
/// same operation again can succeed. Errors raised by a broker (a sink or a connection factory) are
/// passed through unchanged; this type only describes what the publisher core itself refuses.
///
/// ```swift
/// do {
///     try batcher.submitNoWait(envelope)
/// } catch let error as PublisherError where error.code == .bufferFull {
///     metrics.dropped.increment()
/// }
/// ```
public struct PublisherError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as an extensible set of codes.
    ///
    /// New codes may be added in minor releases, so `switch` over it with a `default` branch.
    ///
    /// ```swift
    /// if error.code == .closed { return }
    /// ```
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case bufferFull
            case closed
            case shutdown
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// The bounded buffer was full and the backpressure policy is to fail fast.
        ///
        /// Retriable: space frees as soon as the I/O thread writes the next batch.
        ///
        /// ```swift
        /// if error.code == .bufferFull { try await Task.sleep(for: .milliseconds(1)) }
        /// ```
        public static let bufferFull = Code(.bufferFull)

        /// The batcher or pool had already been shut down when the operation started.
        ///
        /// ```swift
        /// if error.code == .closed { logger.debug("publisher is closed") }
        /// ```
        public static let closed = Code(.closed)

        /// The item was accepted but the batcher was shut down without draining before it was written.
        ///
        /// ```swift
        /// if error.code == .shutdown { deadLetters.append(message) }
        /// ```
        public static let shutdown = Code(.shutdown)

        /// The code's name, such as `bufferFull`.
        ///
        /// ```swift
        /// print(PublisherError.Code.closed) // "closed"
        /// ```
        public var description: String {
            switch self.base {
            case .bufferFull: "bufferFull"
            case .closed: "closed"
            case .shutdown: "shutdown"
            }
        }
    }

    /// What went wrong.
    ///
    /// ```swift
    /// if error.code == .bufferFull { ... }
    /// ```
    public var code: Code

    /// A human-readable explanation, including the limits involved.
    ///
    /// ```swift
    /// logger.warning("\(error.message)")
    /// ```
    public var message: String

    /// Whether the same operation may succeed if tried again later.
    ///
    /// `bufferFull` is retriable; `closed` and `shutdown` are not, because this publisher will not
    /// accept work again.
    ///
    /// ```swift
    /// if error.isRetriable { try await retry() }
    /// ```
    public var isRetriable: Bool

    /// The file in which the error was raised.
    ///
    /// ```swift
    /// print(error.file, error.line)
    /// ```
    public var file: String

    /// The line on which the error was raised.
    ///
    /// ```swift
    /// print(error.file, error.line)
    /// ```
    public var line: Int

    /// Creates an error.
    ///
    /// ```swift
    /// throw PublisherError(code: .closed, message: "publisher was shut down")
    /// ```
    ///
    /// - Parameters:
    ///   - code: What went wrong.
    ///   - message: A human-readable explanation.
    ///   - isRetriable: Whether trying again may succeed. Default: true only for `bufferFull`.
    ///   - file: Where the error was raised. Default: the caller's file.
    ///   - line: Where the error was raised. Default: the caller's line.
    public init(
        code: Code,
        message: String,
        isRetriable: Bool? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.isRetriable = isRetriable ?? (code == .bufferFull)
        self.file = file
        self.line = line
    }

    /// A one-line summary: code, message and source location.
    ///
    /// ```swift
    /// print(error) // "PublisherError.closed: batcher is shut down (JadugarPublisher/Batcher.swift:120)"
    /// ```
    public var description: String {
        "PublisherError.\(self.code): \(self.message) (\(self.file):\(self.line))"
    }
}

extension PublisherError {
    static func closed(_ what: String, file: String = #fileID, line: Int = #line) -> PublisherError {
        PublisherError(code: .closed, message: "the \(what) is shut down and accepts no more work", file: file, line: line)
    }

    static func shutdown(file: String = #fileID, line: Int = #line) -> PublisherError {
        PublisherError(
            code: .shutdown,
            message: "the batcher was shut down without draining before this item was written",
            file: file,
            line: line
        )
    }
}
