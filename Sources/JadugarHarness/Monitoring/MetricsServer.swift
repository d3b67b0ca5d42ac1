import CoreMetrics
import Foundation
import Prometheus
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Serves Prometheus's text exposition of every swift-metrics metric at `GET /metrics`, on loopback.
///
/// A deliberately small HTTP/1.0 responder on a thread of its own: one request per connection,
/// no keep-alive, which is all a Prometheus scrape needs.
///
/// ```swift
/// MetricsServer.bootstrapMetrics()
/// let server = try MetricsServer(port: 9464)
/// server.start()
/// // curl http://127.0.0.1:9464/metrics
/// ```
public final class MetricsServer: Sendable {
    /// The registry every Jadugar metric lands in once ``bootstrapMetrics()`` ran.
    public static let registry = PrometheusCollectorRegistry()
    private static let bootstrapped = Mutex(false)

    /// Makes swift-metrics record into ``registry``; later calls do nothing.
    public static func bootstrapMetrics() {
        let first = bootstrapped.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        if first { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }
    }

    private let socket: Int32
    /// The port it listens on (the one the kernel chose when asked for 0).
    public let port: Int
    private let stopped = Atomic<Bool>(false)

    /// Binds a listening socket on `host:port` (port 0 picks a free one).
    ///
    /// - Throws: ``MetricsServerError`` with the system's reason when the port cannot be bound.
    public init(port: Int, host: String = "127.0.0.1") throws {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MetricsServerError(message: "socket(): \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw MetricsServerError(message: "'\(host)' is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw MetricsServerError(message: "cannot listen on \(host):\(port): \(reason)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        socket = fd
        self.port = Int(UInt16(bigEndian: actual.sin_port))
    }

    /// Starts answering scrapes on a thread of its own.
    public func start() {
        let thread = Thread { [self] in self.serve() }
        thread.name = "jadugar.metrics"
        thread.start()
    }

    /// Stops listening.
    public func stop() {
        guard stopped.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
    }

    private func serve() {
        while !stopped.load(ordering: .acquiring) {
            let client = accept(socket, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return
            }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var request = [UInt8](repeating: 0, count: 4096)
            let count = recv(client, &request, request.count, 0)
            let line = count > 0 ? String(decoding: request[..<count], as: UTF8.self).split(separator: "\r\n").first.map(String.init) ?? "" : ""
            let response: [UInt8]
            if line.hasPrefix("GET /metrics") {
                let body = Self.registry.emitToBuffer()
                response = Array("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + body
            } else {
                let body = Array("not found: scrape /metrics\n".utf8)
                response = Array("HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + body
            }
            var sent = 0
            while sent < response.count {
                let n = response[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                sent += n
            }
            close(client)
        }
    }
}

/// The metrics endpoint could not start.
public struct MetricsServerError: Error, CustomStringConvertible {
    /// What went wrong.
    public var message: String
    public var description: String { message }
}
