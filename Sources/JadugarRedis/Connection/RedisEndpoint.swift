import Jadugar

/// Where and how to log in: the parts of a `redis://[user:password@]host:port[/db]` URL.
///
/// The password is never printed: ``address`` and ``redacted`` are what errors and logs show.
struct RedisEndpoint: Sendable, Hashable {
    var host: String
    var port: Int
    var user: String?
    var password: String?
    var database: Int
    /// The URL with the password masked.
    var redacted: String

    /// `host:port`, for messages.
    var address: String { "\(host):\(port)" + (database == 0 ? "" : "/\(database)") }

    static let defaultPort = 6379

    init(host: String, port: Int = RedisEndpoint.defaultPort, user: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.redacted = "redis://\(password == nil ? "" : "\(user ?? ""):***@")\(host):\(port)/\(database)"
    }

    /// Reads a parsed URL.
    ///
    /// - Throws: ``MessagingError`` with ``MessagingError/Code/unsupportedScheme`` for anything but
    ///   `redis`, ``MessagingError/Code/unsupported`` for `rediss` (no TLS in hiredis 0.14) and
    ///   for several hosts, ``MessagingError/Code/invalidURL`` for a database that is not a number.
    init(url: BrokerURL) throws {
        switch url.scheme {
        case "redis":
            break
        case "rediss":
            throw MessagingError(.unsupported, "\(url.redacted): TLS (rediss://) is not supported; Debian's hiredis 0.14 has no TLS. Use redis:// on a trusted network or a TLS tunnel")
        default:
            throw MessagingError(.unsupportedScheme, "\(url.redacted) is not a Redis URL; expected redis://[user:password@]host:port[/db]")
        }
        if url.hosts.count > 1 {
            throw MessagingError(.unsupported, "\(url.redacted) names \(url.hosts.count) hosts; the Redis adapter talks to one server (no Cluster or Sentinel)")
        }
        let host = url.host.isEmpty ? "127.0.0.1" : url.host
        var database = 0
        let path = url.path.trimmingSlashes
        if !path.isEmpty {
            guard let value = Int(path), value >= 0 else {
                throw MessagingError(.invalidURL, "\(url.redacted): the path '/\(path)' must be a database number, for example redis://127.0.0.1:6379/0")
            }
            database = value
        }
        self.host = host
        self.port = url.port ?? Self.defaultPort
        self.user = url.user
        self.password = url.password
        self.database = database
        self.redacted = url.redacted
    }
}

extension String {
    fileprivate var trimmingSlashes: String {
        var text = Substring(self)
        while text.hasPrefix("/") { text = text.dropFirst() }
        while text.hasSuffix("/") { text = text.dropLast() }
        return String(text)
    }
}
