import Crypto
import Foundation
import Jadugar
import Synchronization

/// Named AES-256 keys: one seals new messages, all of them open old ones, so keys rotate without
/// losing messages in flight.
///
/// ```swift
/// let keyring = try Keyring(keys: ["2026-11": SymmetricKey(size: .bits256)], current: "2026-11")
/// try keyring.rotate(to: "2026-12", key: SymmetricKey(size: .bits256)) // old messages still open
/// ```
public final class Keyring: Sendable {
    // SymmetricKey is not Sendable, so the lock keeps raw key bytes.
    private struct State {
        var keys: [String: [UInt8]]
        var current: String
    }
    private let state: Mutex<State>

    /// Creates a keyring.
    ///
    /// - Throws: ``MessagingError/Code/invalidArgument`` when `current` is not among `keys` or a key is not 256 bits.
    public init(keys: [String: SymmetricKey], current: String) throws {
        try Self.check(keys, current: current)
        state = Mutex(State(keys: keys.mapValues(Self.bytes), current: current))
    }

    private static func check(_ keys: [String: SymmetricKey], current: String) throws {
        guard keys[current] != nil else {
            throw MessagingError(.invalidArgument, "the current key id '\(current)' is not in the keyring (ids: \(keys.keys.sorted().joined(separator: ", ")))")
        }
        for (id, key) in keys where key.bitCount != 256 {
            throw MessagingError(.invalidArgument, "key '\(id)' has \(key.bitCount) bits; AES-256-GCM needs 256")
        }
        for id in keys.keys where id.isEmpty || id.contains(where: { $0.isWhitespace }) {
            throw MessagingError(.invalidArgument, "key id '\(id)' is empty or contains white space")
        }
    }

    /// Adds a key and makes it the one that seals; older keys keep opening.
    public func rotate(to id: String, key: SymmetricKey) throws {
        try Self.check([id: key], current: id)
        let bytes = Self.bytes(key)
        state.withLock { state in
            state.keys[id] = bytes
            state.current = id
        }
    }

    /// Removes a key that no message in flight uses any more.
    public func retire(_ id: String) throws {
        try state.withLock { state in
            guard id != state.current else { throw MessagingError(.invalidArgument, "key '\(id)' seals new messages; rotate to another key first") }
            state.keys.removeValue(forKey: id)
        }
    }

    /// The id of the key that seals.
    public var currentID: String { state.withLock { $0.current } }

    func sealingKey() -> (String, SymmetricKey) {
        let (id, bytes) = state.withLock { ($0.current, $0.keys[$0.current]!) }
        return (id, SymmetricKey(data: bytes))
    }

    func key(_ id: String) -> SymmetricKey? {
        state.withLock { $0.keys[id] }.map { SymmetricKey(data: $0) }
    }

    private static func bytes(_ key: SymmetricKey) -> [UInt8] {
        key.withUnsafeBytes { Array($0) }
    }
}
