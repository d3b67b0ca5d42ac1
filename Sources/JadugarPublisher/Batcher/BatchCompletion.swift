/// The pending result of one submitted item, taken from a ``Batch`` to be resolved later.
///
/// A sink that learns an item's fate only after `write(_:)` returns (RabbitMQ publisher confirms,
/// for instance) takes the item's completion with ``Batch/takeCompletion(at:)``, keeps it, and
/// resolves it when the broker answers, from any thread.
///
/// ```swift
/// var pending: [UInt64: BatchCompletion] = [:]
/// // in write(_:)
/// pending[deliveryTag] = batch.takeCompletion(at: index)
/// // when the broker confirms
/// pending.removeValue(forKey: tag)?.succeed()
/// ```
///
/// - Important: Resolve each completion exactly once. Resolving one twice traps (the submitter's
///   continuation is checked); never resolving one leaves its submitter waiting forever, so a sink
///   resolves everything it still holds in ``BatchSink/close()``.
public struct BatchCompletion: Sendable {
    @usableFromInline
    let continuation: CheckedContinuation<Void, any Error>?

    @inlinable
    init(_ continuation: CheckedContinuation<Void, any Error>?) {
        self.continuation = continuation
    }

    /// Whether a caller is waiting for this result (it used `submit(_:)`), rather than having
    /// submitted fire-and-forget.
    ///
    /// ```swift
    /// if completion.isAwaited { pendingConfirms += 1 }
    /// ```
    public var isAwaited: Bool { self.continuation != nil }

    /// Reports that the broker accepted the item: the submitter's `await` returns.
    ///
    /// ```swift
    /// completion.succeed()
    /// ```
    public func succeed() {
        self.continuation?.resume()
    }

    /// Reports that the broker refused the item or the write failed: the submitter's `await` throws.
    ///
    /// ```swift
    /// completion.fail(RedisError(reply))
    /// ```
    ///
    /// - Parameter error: The reason, passed to the submitter unchanged.
    public func fail(_ error: any Error) {
        self.continuation?.resume(throwing: error)
    }

    /// Reports a result.
    ///
    /// ```swift
    /// completion.complete(with: .success(()))
    /// ```
    ///
    /// - Parameter result: Success, or the failure's reason.
    public func complete(with result: Result<Void, any Error>) {
        self.continuation?.resume(with: result)
    }
}
