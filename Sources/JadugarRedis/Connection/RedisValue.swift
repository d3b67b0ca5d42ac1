import Foundation
import Jadugar

/// A Redis (RESP2) reply, copied out of hiredis's reply tree so that it outlives it.
enum RedisValue: Sendable, Hashable {
    case string([UInt8])
    case status(String)
    case integer(Int64)
    case array([RedisValue])
    case null
    case error(String)

    /// A bulk or status reply as text.
    var text: String? {
        switch self {
        case .string(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        case .integer(let value): String(value)
        default: nil
        }
    }

    /// An integer reply, or a bulk string that holds one (Lua returns numbers either way).
    var int: Int? {
        switch self {
        case .integer(let value): Int(value)
        case .string, .status: text.flatMap { Int($0) }
        default: nil
        }
    }

    var bytes: [UInt8]? {
        if case .string(let bytes) = self { return bytes }
        if case .status(let text) = self { return Array(text.utf8) }
        return nil
    }

    /// The elements of an array reply; `[]` for a null reply (an empty read).
    var elements: [RedisValue] {
        switch self {
        case .array(let elements): elements
        default: []
        }
    }

    var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

/// Turns Redis's error replies and hiredis's connection errors into ``MessagingError``s that keep
/// Redis's own code and words.
enum RedisErrors {
    /// The error for an error reply: the first word is Redis's code (`WRONGTYPE`, `NOAUTH`, `OOM`,
    /// or one of the adapter library's own: `NOT_FOUND`, `PRECONDITION_FAILED`, ...).
    static func reply(_ text: String, while doing: String) -> MessagingError {
        let code = String(text.prefix { $0 != " " })
        // Redis appends " script: <sha>, on @user_script:<line>." to errors raised in a script.
        var words = text.dropFirst(code.count).drop { $0 == " " }
        if let cut = words.range(of: " script: ") { words = words[..<cut.lowerBound] }
        let sentence = String(words)
        switch code {
        case "NOAUTH":
            return MessagingError(.authenticationFailed, "\(doing): Redis requires a password; put it in the URL (redis://user:password@host:port)", brokerCode: code, brokerReason: text)
        case "WRONGPASS":
            return MessagingError(.authenticationFailed, "\(doing): Redis refused the user name or password", brokerCode: code, brokerReason: text)
        case "NOPERM":
            return MessagingError(.accessDenied, "\(doing): the Redis user lacks a permission: \(sentence)", brokerCode: code, brokerReason: text)
        case "ERR" where sentence.hasPrefix("The user executing the script can't run this command"):
            // An ACL refusal inside the adapter's function library: Redis reports it as ERR, not NOPERM.
            return MessagingError(.accessDenied, "\(doing): the Redis user lacks a permission: \(sentence)", brokerCode: code, brokerReason: text)
        case "NOT_FOUND", "NOGROUP":
            return MessagingError(.notFound, "\(doing): \(sentence)", brokerCode: code, brokerReason: text)
        case "PRECONDITION_FAILED":
            return MessagingError(.alreadyExists, "\(doing): \(sentence)", brokerCode: code, brokerReason: text)
        case "RESOURCE_LOCKED", "ACCESS_REFUSED":
            return MessagingError(.accessDenied, "\(doing): \(sentence)", brokerCode: code, brokerReason: text)
        case "REJECT_PUBLISH":
            return MessagingError(.queueFull, "\(doing): \(sentence)", brokerCode: code, brokerReason: text)
        case "NO_ROUTE":
            return MessagingError(.unroutable, "\(doing): \(sentence)", brokerCode: code, brokerReason: text)
        case "NOT_OUTSTANDING":
            return MessagingError(.brokerError, "\(doing): \(sentence)", brokerCode: code, brokerReason: text, isRetriable: false)
        case "OOM", "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "READONLY", "CLUSTERDOWN", "NOREPLICAS":
            return MessagingError(.brokerError, "\(doing): Redis refused for now: \(text)", brokerCode: code, brokerReason: text, isRetriable: true)
        default:
            return MessagingError(.brokerError, "\(doing): Redis replied with an error: \(text)", brokerCode: code.isEmpty ? nil : code, brokerReason: text)
        }
    }

    /// The error for a lost or unusable connection.
    static func connectionLost(_ endpoint: RedisEndpoint, _ detail: String) -> MessagingError {
        MessagingError(.connectionFailed, "lost the connection to Redis at \(endpoint.address): \(detail)", brokerReason: detail, isRetriable: true)
    }

    /// The error for an operation on a broker that is not connected.
    static func notConnected(_ operation: String) -> MessagingError {
        MessagingError(.notConnected, "cannot \(operation): the Redis broker is not connected; call connect() first")
    }
}
