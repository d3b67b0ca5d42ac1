/// The items the I/O thread hands a ``BatchSink`` in one call, with a completion for each.
///
/// The sink writes ``items`` to the broker and reports each item's fate: ``succeed(at:)`` or
/// ``fail(at:with:)`` when it knows at once (a Redis pipeline's replies), or
/// ``takeCompletion(at:)`` to resolve it later (RabbitMQ publisher confirms). When `write(_:)`
/// returns, the items it neither resolved nor took succeed; when it throws, they fail with the
/// thrown error.
///
/// ```swift
/// mutating func write(_ batch: inout Batch<Envelope>) throws {
///     try connection.pipeline(batch.items)
///     for (index, reply) in try connection.readReplies(batch.count).enumerated() {
///         if let error = reply.error { batch.fail(at: index, with: error) }
///     }
/// }
/// ```
///
/// - Important: A batch is lent to the sink for one `write(_:)` call on the I/O thread; it cannot be
///   copied or kept. Its storage is reused for the next batch, so handing it over allocates nothing.
public struct Batch<Item>: ~Copyable {
    @usableFromInline
    var storage: [Item]

    /// One per item; `nil` once the item is resolved or its completion taken.
    @usableFromInline
    var completions: [BatchCompletion?]

    init(capacity: Int) {
        self.storage = []
        self.storage.reserveCapacity(capacity)
        self.completions = []
        self.completions.reserveCapacity(capacity)
    }

    /// Creates a batch of fire-and-forget items, for testing a sink on its own.
    ///
    /// ```swift
    /// var batch = Batch(["a", "b"])
    /// try sink.write(&batch)
    /// ```
    ///
    /// - Parameter items: The batch's items; nobody awaits their results.
    public init(_ items: [Item]) {
        self.storage = items
        self.completions = Array(repeating: BatchCompletion(nil), count: items.count)
    }

    /// The items, in submission order.
    ///
    /// ```swift
    /// for envelope in batch.items { try connection.send(envelope) }
    /// ```
    public var items: [Item] { self.storage }

    /// The number of items.
    ///
    /// ```swift
    /// let replies = try connection.readReplies(batch.count)
    /// ```
    public var count: Int { self.storage.count }

    /// The item at `index`.
    ///
    /// ```swift
    /// let first = batch[0]
    /// ```
    ///
    /// - Parameter index: A position in `0..<count`.
    public subscript(index: Int) -> Item { self.storage[index] }

    /// Whether the item at `index` has been resolved or its completion taken.
    ///
    /// ```swift
    /// if !batch.isResolved(at: index) { batch.succeed(at: index) }
    /// ```
    ///
    /// - Parameter index: A position in `0..<count`.
    /// - Returns: `true` once ``succeed(at:)``, ``fail(at:with:)`` or ``takeCompletion(at:)`` was called for it.
    public func isResolved(at index: Int) -> Bool {
        self.completions[index] == nil
    }

    /// Reports that the broker accepted the item at `index`.
    ///
    /// ```swift
    /// batch.succeed(at: index)
    /// ```
    ///
    /// - Parameter index: A position in `0..<count`.
    /// - Important: Traps if the item was already resolved or taken.
    public mutating func succeed(at index: Int) {
        self.takeCompletion(at: index).succeed()
    }

    /// Reports that the item at `index` failed; its submitter's `await` throws `error`.
    ///
    /// ```swift
    /// batch.fail(at: index, with: reply.error)
    /// ```
    ///
    /// - Parameters:
    ///   - index: A position in `0..<count`.
    ///   - error: The broker's reason, passed through unchanged.
    /// - Important: Traps if the item was already resolved or taken.
    public mutating func fail(at index: Int, with error: any Error) {
        self.takeCompletion(at: index).fail(error)
    }

    /// Takes the completion of the item at `index`, to resolve it after `write(_:)` returns.
    ///
    /// ```swift
    /// unconfirmed[nextDeliveryTag] = batch.takeCompletion(at: index)
    /// ```
    ///
    /// - Parameter index: A position in `0..<count`.
    /// - Returns: The completion; the sink now owns it and must resolve it exactly once.
    /// - Important: Traps if the item was already resolved or taken.
    public mutating func takeCompletion(at index: Int) -> BatchCompletion {
        guard let completion = self.completions[index] else {
            preconditionFailure("Batch item \(index) of \(self.count) was already resolved or its completion taken")
        }
        self.completions[index] = nil
        return completion
    }

    mutating func append(_ entry: __owned _BatchEntry<Item>) {
        self.storage.append(entry.item)
        self.completions.append(BatchCompletion(entry.continuation))
    }

    /// Resolves every item still pending with `result`; called when `write(_:)` returns or throws,
    /// or at shutdown without draining.
    mutating func resolveRemaining(with result: Result<Void, any Error>) {
        for index in self.completions.indices {
            if let completion = self.completions[index] {
                self.completions[index] = nil
                completion.complete(with: result)
            }
        }
    }

    /// Empties the batch, keeping its storage for the next one.
    mutating func removeAll() {
        self.storage.removeAll(keepingCapacity: true)
        self.completions.removeAll(keepingCapacity: true)
    }
}

/// What travels through the ring: the item and, for `submit(_:)`, the continuation of its submitter.
@usableFromInline
struct _BatchEntry<Item> {
    @usableFromInline
    var item: Item
    @usableFromInline
    var continuation: CheckedContinuation<Void, any Error>?

    @inlinable
    init(item: Item, continuation: CheckedContinuation<Void, any Error>?) {
        self.item = item
        self.continuation = continuation
    }
}

extension _BatchEntry: Sendable where Item: Sendable {}
