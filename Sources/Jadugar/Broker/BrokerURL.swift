import Foundation

/// A parsed broker URL: `scheme://[user[:password]@]host[:port][,host:port...][/path][?query]`.
///
/// The password is kept out of every description: ``redacted`` is what logs, errors and reports print.
///
/// ```swift
/// let url = try BrokerURL("amqp://app:secret@127.0.0.1:5672/orders")
/// url.scheme // "amqp"
/// url.redacted // "amqp://app:***@127.0.0.1:5672/orders"
/// ```
public struct BrokerURL: Sendable, Hashable, CustomStringConvertible {
    /// The scheme, lowercased: `memory`, `redis`, `rediss`, `amqp`, `amqps`, `kafka`.
    public var scheme: String
    /// The user name, percent-decoded.
    public var user: String?
    /// The password, percent-decoded. Never printed.
    public var password: String?
    /// Hosts with ports; several for clusters.
    public var hosts: [(host: String, port: Int?)] {
        get { hostList.map { ($0.host, $0.port) } }
        set { hostList = newValue.map { HostPort(host: $0.host, port: $0.port) } }
    }
    private var hostList: [HostPort]
    /// The path without its leading slash, percent-decoded (AMQP vhost, Redis db, memory broker name).
    public var path: String
    /// Query parameters.
    public var query: [String: String]
    private let original: String

    private struct HostPort: Hashable, Sendable {
        var host: String
        var port: Int?
    }

    /// The first host, or `""` when there is none (`memory://`).
    public var host: String { hostList.first?.host ?? "" }
    /// The first host's port.
    public var port: Int? { hostList.first?.port }

    /// Parses a URL.
    ///
    /// - Throws: ``MessagingError`` with code ``MessagingError/Code/invalidURL`` saying what is wrong
    ///   (the message never contains the password).
    public init(_ string: String) throws {
        original = string
        guard let schemeEnd = string.range(of: "://") else {
            throw MessagingError(.invalidURL, "'\(Self.redact(string))' is not a broker URL; expected scheme://host:port, for example redis://127.0.0.1:6379")
        }
        let scheme = string[..<schemeEnd.lowerBound].lowercased()
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == "." }) else {
            throw MessagingError(.invalidURL, "'\(Self.redact(string))' has an invalid scheme")
        }
        self.scheme = scheme
        var rest = string[schemeEnd.upperBound...]
        var queryPart: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            queryPart = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var pathPart: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            pathPart = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var authority = rest
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = String(userInfo[..<colon]).removingPercentEncoding ?? String(userInfo[..<colon])
                let secret = userInfo[userInfo.index(after: colon)...]
                password = String(secret).removingPercentEncoding ?? String(secret)
            } else {
                user = String(userInfo).removingPercentEncoding ?? String(userInfo)
            }
            if user?.isEmpty == true { user = nil }
        }
        var hosts: [HostPort] = []
        if !authority.isEmpty {
            for entry in authority.split(separator: ",", omittingEmptySubsequences: false) {
                hosts.append(try Self.parseHost(entry, url: string))
            }
        }
        hostList = hosts
        path = String(pathPart).removingPercentEncoding ?? String(pathPart)
        var query: [String: String] = [:]
        for pair in queryPart.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            query[key] = value
        }
        self.query = query
    }

    private static func parseHost(_ entry: Substring, url: String) throws -> HostPort {
        if entry.isEmpty {
            throw MessagingError(.invalidURL, "'\(redact(url))' has an empty host")
        }
        var host = entry
        var portText: Substring?
        if entry.hasPrefix("[") {
            guard let close = entry.firstIndex(of: "]") else {
                throw MessagingError(.invalidURL, "'\(redact(url))' has an unclosed IPv6 address")
            }
            host = entry[entry.index(after: entry.startIndex)..<close]
            let after = entry[entry.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty {
                throw MessagingError(.invalidURL, "'\(redact(url))' has text after the IPv6 address")
            }
        } else if let colon = entry.lastIndex(of: ":") {
            host = entry[..<colon]
            portText = entry[entry.index(after: colon)...]
        }
        if host.isEmpty {
            throw MessagingError(.invalidURL, "'\(redact(url))' has an empty host")
        }
        var port: Int?
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw MessagingError(.invalidURL, "'\(redact(url))' has an invalid port '\(portText)'; expected a number from 1 to 65535")
            }
            port = value
        }
        return HostPort(host: String(host), port: port)
    }

    /// The URL with its password replaced by `***`: safe for logs, errors and reports.
    public var redacted: String { Self.redact(original) }

    public var description: String { redacted }

    /// Replaces the password of any URL-like string with `***`.
    ///
    /// ```swift
    /// BrokerURL.redact("redis://:hunter2@localhost") // "redis://:***@localhost"
    /// ```
    public static func redact(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://") else {
            // Not a URL we can take apart: hide everything that could be a user and password.
            guard let at = text.lastIndex(of: "@") else { return text }
            return "***" + text[at...]
        }
        let afterScheme = text[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else { return text }
        return String(text[..<authority.index(after: colon)]) + "***" + String(text[at...])
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.original == rhs.original }
    public func hash(into hasher: inout Hasher) { hasher.combine(original) }
}
