#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value that is only read or written while holding a pthread mutex, in the manner of
/// swift-nio's `NIOLockedValueBox`.
///
/// Used instead of Synchronization's `Mutex` because on Linux (Swift 6.3) ThreadSanitizer does not
/// see the happens-before edges of `Mutex`'s futex-based lock, which lives in an uninstrumented
/// library, and reports every access to the protected value as a race. ThreadSanitizer intercepts
/// `pthread_mutex_lock`/`unlock`, so with this box the sanitizer checks the code that uses it.
///
/// `@unchecked Sendable` when the value is `Sendable`: the value is reachable only through
/// `withLock`, which holds the mutex for the whole access.
final class LockedValueBox<Value> {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        self.mutex = .allocate(capacity: 1)
        self.mutex.initialize(to: pthread_mutex_t())
        let result = pthread_mutex_init(self.mutex, nil)
        precondition(result == 0, "pthread_mutex_init failed: \(result)")
    }

    deinit {
        pthread_mutex_destroy(self.mutex)
        self.mutex.deinitialize(count: 1)
        self.mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value. Never call back into the same box from `body`.
    @inline(__always)
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        return try body(&self.value)
    }
}

extension LockedValueBox: @unchecked Sendable where Value: Sendable {}
