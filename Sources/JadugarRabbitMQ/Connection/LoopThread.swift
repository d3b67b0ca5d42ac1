#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts a detached POSIX thread, outside Swift's cooperative pool, where blocking rabbitmq-c
/// calls may run.
enum LoopThread {
    /// Runs `body` on a new thread named `name` (truncated to 15 bytes on Linux). Nobody joins it.
    static func spawn(name: String, _ body: @escaping @Sendable () -> Void) {
        // Retained here, released by the thread: the thread owns its closure for its lifetime.
        let context = Unmanaged.passRetained(Context(name: name, body: body)).toOpaque()
        #if canImport(Darwin)
        var thread: pthread_t? = nil
        #else
        var thread = pthread_t()
        #endif
        let result = pthread_create(&thread, nil, loopThreadMain, context)
        guard result == 0 else {
            Unmanaged<Context>.fromOpaque(context).release()
            fatalError("pthread_create failed for RabbitMQ thread '\(name)': error \(result)")
        }
        #if canImport(Darwin)
        pthread_detach(thread!)
        #else
        pthread_detach(thread)
        #endif
    }

    fileprivate final class Context {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
}

#if canImport(Darwin)
private func loopThreadMain(_ argument: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
    let context = Unmanaged<LoopThread.Context>.fromOpaque(argument).takeRetainedValue()
    _ = pthread_setname_np(context.name)
    context.body()
    return nil
}
#else
private func loopThreadMain(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let context = Unmanaged<LoopThread.Context>.fromOpaque(argument!).takeRetainedValue()
    setThreadName(context.name)
    context.body()
    return nil
}

/// Glibc declares `pthread_setname_np` only under `_GNU_SOURCE`; look it up at run time instead.
private func setThreadName(_ name: String) {
    typealias SetName = @convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32
    guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "pthread_setname_np") else { return }
    let setName = unsafeBitCast(symbol, to: SetName.self)
    _ = setName(pthread_self(), String(decoding: name.utf8.prefix(15), as: UTF8.self))
}
#endif
