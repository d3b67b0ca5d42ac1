#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU time and peak resident memory of this process.
enum ProcessStats {
    #if os(Linux)
    private static let who = __rusage_who_t(RUSAGE_SELF.rawValue)
    #else
    private static let who = RUSAGE_SELF
    #endif

    /// User plus system CPU seconds so far.
    static var cpuSeconds: Double {
        var usage = rusage()
        getrusage(who, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }

    /// The peak resident set size, in bytes.
    static var peakRSSBytes: UInt64 {
        var usage = rusage()
        getrusage(who, &usage)
        #if os(Linux)
        return UInt64(usage.ru_maxrss) * 1024
        #else
        return UInt64(usage.ru_maxrss)
        #endif
    }
}
