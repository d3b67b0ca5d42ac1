/// How a ``Batcher`` buffers and groups items.
///
/// ```swift
/// var configuration = BatcherConfiguration()
/// configuration.capacity = 8192
/// configuration.maxBatch = 128
/// configuration.maxDelay = .microseconds(200)
/// configuration.backpressure = .failFast
/// ```
public struct BatcherConfiguration: Sendable {
    /// The most items buffered between submitters and the I/O thread; rounded up to a power of two.
    ///
    /// Default: 4096.
    ///
    /// ```swift
    /// configuration.capacity = 16_384
    /// ```
    public var capacity: Int

    /// The most items handed to the sink in one batch. Clamped to the capacity.
    ///
    /// Default: 64.
    ///
    /// ```swift
    /// configuration.maxBatch = 256
    /// ```
    public var maxBatch: Int

    /// How long the I/O thread waits, after taking the first item of a batch, for the batch to fill
    /// before writing what it has. Zero writes as soon as the buffer runs dry.
    ///
    /// Default: `.zero`.
    ///
    /// ```swift
    /// configuration.maxDelay = .microseconds(500)
    /// ```
    public var maxDelay: Duration

    /// What a submit does when the buffer is full.
    ///
    /// Default: ``BackpressurePolicy/suspend``.
    ///
    /// ```swift
    /// configuration.backpressure = .failFast
    /// ```
    public var backpressure: BackpressurePolicy

    /// The I/O thread's name, as debuggers and `top -H` show it (truncated to 15 bytes on Linux).
    ///
    /// Default: `"jadugar-io"`.
    ///
    /// ```swift
    /// configuration.threadName = "redis-publish"
    /// ```
    public var threadName: String

    /// Creates a configuration.
    ///
    /// ```swift
    /// let configuration = BatcherConfiguration(maxBatch: 32, maxDelay: .microseconds(100))
    /// ```
    ///
    /// - Parameters:
    ///   - capacity: The buffer's capacity. Default: 4096.
    ///   - maxBatch: The largest batch. Default: 64.
    ///   - maxDelay: The longest wait for a batch to fill. Default: `.zero`.
    ///   - backpressure: The policy when full. Default: `.suspend`.
    ///   - threadName: The I/O thread's name. Default: `"jadugar-io"`.
    public init(
        capacity: Int = 4096,
        maxBatch: Int = 64,
        maxDelay: Duration = .zero,
        backpressure: BackpressurePolicy = .suspend,
        threadName: String = "jadugar-io"
    ) {
        self.capacity = capacity
        self.maxBatch = maxBatch
        self.maxDelay = maxDelay
        self.backpressure = backpressure
        self.threadName = threadName
    }
}

extension Duration {
    /// The duration in whole nanoseconds, clamped to `0...Int64.max`.
    var clampedNanoseconds: UInt64 {
        let (seconds, attoseconds) = self.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        if seconds >= Int64.max / 1_000_000_000 { return UInt64(Int64.max) }
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }
}
