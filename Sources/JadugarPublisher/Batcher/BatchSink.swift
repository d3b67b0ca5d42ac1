/// Where a ``Batcher``'s I/O thread writes batches: one adapter's connection to its broker.
///
/// The batcher calls every method on its own I/O thread, one call at a time, so a sink may own a
/// blocking C connection outright and needs no locks. It is never called on Swift's cooperative
/// thread pool.
///
/// ```swift
/// struct RedisStreamSink: BatchSink {
///     let connection: RedisConnection
///     mutating func write(_ batch: inout Batch<Envelope>) throws {
///         let replies = try connection.pipeline(batch.items.map(\.xaddCommand))
///         for (index, reply) in replies.enumerated() where reply.isError {
///             batch.fail(at: index, with: RedisError(reply))
///         }
///     }
/// }
/// ```
///
/// - Important: `write(_:)` may block (that is what the I/O thread is for), but every moment it
///   blocks, submitters' items wait in the buffer.
public protocol BatchSink<Item> {
    /// What the batcher carries, typically an encoded envelope.
    associatedtype Item: Sendable

    /// Writes one batch of 1 to `maxBatch` items and reports each item's fate.
    ///
    /// Items the sink neither resolves nor takes with ``Batch/takeCompletion(at:)`` succeed when
    /// this returns, and fail with the thrown error when it throws.
    ///
    /// ```swift
    /// mutating func write(_ batch: inout Batch<Envelope>) throws {
    ///     for envelope in batch.items { try channel.publish(envelope) }
    /// }
    /// ```
    ///
    /// - Parameter batch: The items, lent for this call.
    /// - Throws: Any error, which fails the items still pending.
    mutating func write(_ batch: inout Batch<Item>) throws

    /// Called on the I/O thread when it has nothing to write, before it sleeps.
    ///
    /// A sink that still holds completions (awaiting publisher confirms) reads what the broker sent
    /// here and returns how soon it wants to be called again.
    ///
    /// ```swift
    /// mutating func idle() -> Duration? {
    ///     readConfirms()
    ///     return unconfirmed.isEmpty ? nil : .milliseconds(1)
    /// }
    /// ```
    ///
    /// - Returns: The longest the I/O thread may sleep before calling again, or `nil` to sleep
    ///   until the next submit. Default: `nil`.
    mutating func idle() -> Duration?

    /// Called once on the I/O thread after the last batch, when the batcher shuts down.
    ///
    /// Resolve every completion still held (wait for the last confirms, or fail them), then release
    /// the connection.
    ///
    /// ```swift
    /// mutating func close() {
    ///     waitForConfirms(timeout: .seconds(5))
    ///     for completion in unconfirmed.values { completion.fail(ChannelClosed()) }
    /// }
    /// ```
    mutating func close()
}

extension BatchSink {
    /// Sleeps until the next submit.
    ///
    /// ```swift
    /// _ = sink.idle() // nil
    /// ```
    public mutating func idle() -> Duration? { nil }

    /// Does nothing.
    ///
    /// ```swift
    /// sink.close()
    /// ```
    public mutating func close() {}
}

/// A sink made of a closure that writes the items of each batch.
///
/// Returning confirms every item of the batch; throwing fails them all with the thrown error.
///
/// ```swift
/// let sink = ClosureBatchSink<String> { items in
///     try file.write(items.joined(separator: "\n"))
/// }
/// ```
public struct ClosureBatchSink<Item: Sendable>: BatchSink {
    private let body: (inout [Item]) throws -> Void

    /// Creates a sink from a closure, which the I/O thread calls with each batch's items.
    ///
    /// ```swift
    /// let sink = ClosureBatchSink<Int> { numbers in total += numbers.reduce(0, +) }
    /// ```
    ///
    /// - Parameter body: Writes a batch. It may reorder or empty the array; results still apply
    ///   to the whole batch.
    public init(_ body: @escaping (inout [Item]) throws -> Void) {
        self.body = body
    }

    /// Calls the closure with the batch's items.
    ///
    /// ```swift
    /// try sink.write(&batch)
    /// ```
    ///
    /// - Parameter batch: The batch.
    /// - Throws: What the closure throws.
    public mutating func write(_ batch: inout Batch<Item>) throws {
        try self.body(&batch.storage)
    }
}
