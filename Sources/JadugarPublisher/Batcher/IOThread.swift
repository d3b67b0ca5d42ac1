#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#else
#error("unsupported platform: the I/O thread needs pthreads")
#endif

/// Starts a detached POSIX thread: a real kernel thread, outside Swift's cooperative pool, where
/// blocking C calls may run.
enum _IOThread {
    /// Starts `body` on a new thread named `name`. The thread ends when `body` returns; nobody joins it.
    static func spawn(name: String, _ body: @escaping @Sendable () -> Void) {
        // Retained here and released by the thread: the thread owns its closure for its lifetime.
        let context = Unmanaged.passRetained(_IOThreadContext(name: name, body: body)).toOpaque()
        #if canImport(Darwin)
        var thread: pthread_t? = nil
        #else
        var thread = pthread_t()
        #endif
        let result = pthread_create(&thread, nil, _ioThreadMain, context)
        guard result == 0 else {
            Unmanaged<_IOThreadContext>.fromOpaque(context).release()
            fatalError("pthread_create failed for I/O thread '\(name)': error \(result)")
        }
        #if canImport(Darwin)
        pthread_detach(thread!)
        #else
        pthread_detach(thread)
        #endif
    }
}

private final class _IOThreadContext {
    let name: String
    let body: @Sendable () -> Void

    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

#if canImport(Darwin)
private func _ioThreadMain(_ argument: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
    let context = Unmanaged<_IOThreadContext>.fromOpaque(argument).takeRetainedValue()
    _ = pthread_setname_np(context.name)
    context.body()
    return nil
}
#else
private func _ioThreadMain(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let context = Unmanaged<_IOThreadContext>.fromOpaque(argument!).takeRetainedValue()
    _setCurrentThreadName(context.name)
    context.body()
    return nil
}
#endif

#if !canImport(Darwin)
/// Glibc declares `pthread_setname_np` only under `_GNU_SOURCE`, which Swift's Glibc module does not
/// define, and this target has no C shim; so look the function up at run time. A missing symbol
/// (another libc) just leaves the thread unnamed.
private func _setCurrentThreadName(_ name: String) {
    typealias SetName = @convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32
    guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "pthread_setname_np") else { return }
    let setName = unsafeBitCast(symbol, to: SetName.self)
    // Linux limits thread names to 15 bytes plus the terminator.
    _ = setName(pthread_self(), String(decoding: name.utf8.prefix(15), as: UTF8.self))
}
#endif
