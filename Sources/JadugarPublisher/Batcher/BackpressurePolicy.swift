/// What a submit does when the batcher's buffer is full.
///
/// ```swift
/// var configuration = BatcherConfiguration()
/// configuration.backpressure = .failFast
/// ```
public struct BackpressurePolicy: Hashable, Sendable, CustomStringConvertible {
    private enum Base: Hashable, Sendable {
        case suspend
        case failFast
    }

    private let base: Base

    private init(_ base: Base) {
        self.base = base
    }

    /// `submit(_:)` suspends the calling task, without blocking its thread, until there is room.
    ///
    /// Waiting submitters are admitted in the order they arrived, and a new submitter queues behind
    /// them rather than overtaking. `submitNoWait(_:)` never waits: it still throws
    /// ``PublisherError/Code/bufferFull``.
    ///
    /// ```swift
    /// configuration.backpressure = .suspend
    /// ```
    public static let suspend = BackpressurePolicy(.suspend)

    /// Submits throw ``PublisherError`` with code ``PublisherError/Code/bufferFull`` at once.
    ///
    /// ```swift
    /// configuration.backpressure = .failFast
    /// ```
    public static let failFast = BackpressurePolicy(.failFast)

    /// The policy's name.
    ///
    /// ```swift
    /// print(BackpressurePolicy.suspend) // "suspend"
    /// ```
    public var description: String {
        switch self.base {
        case .suspend: "suspend"
        case .failFast: "failFast"
        }
    }
}
