import Crypto
import Foundation
import Jadugar

/// Seals and opens message payloads with AES-256-GCM.
///
/// The payload becomes nonce ‖ ciphertext ‖ tag; the header `x-jadugar-key-id` names the key.
/// The message id, topic, correlation id and content type are authenticated as associated data,
/// so a payload moved to another message or topic fails to open. A message that fails to open
/// throws ``MessagingError/Code/integrity``, which a subscription dead-letters at once with reason
/// `integrity`.
///
/// ```swift
/// let encryption = PayloadEncryption(keyring: keyring)
/// let sealed = try encryption.seal(Message(topic: "payments", string: "4111…"))
/// let opened = try encryption.open(sealed)
/// ```
public struct PayloadEncryption: Sendable {
    /// The header that names the key.
    public static let keyIDHeader = "x-jadugar-key-id"
    /// The header that marks a sealed payload and its algorithm.
    public static let algorithmHeader = "x-jadugar-encryption"
    /// The algorithm's name in ``algorithmHeader``.
    public static let algorithm = "aes-256-gcm"
    private static let originalContentType = "x-jadugar-original-content-type"

    /// The keys.
    public let keyring: Keyring

    /// Creates the transform.
    public init(keyring: Keyring) {
        self.keyring = keyring
    }

    /// Encrypts a message's payload with the current key.
    public func seal(_ message: Message) throws -> Message {
        var sealed = message
        let (id, key) = keyring.sealingKey()
        if let contentType = message.metadata.contentType { sealed.metadata.headers[Self.originalContentType] = contentType }
        sealed.metadata.contentType = "application/octet-stream"
        sealed.metadata.headers[Self.keyIDHeader] = id
        sealed.metadata.headers[Self.algorithmHeader] = Self.algorithm
        do {
            let box = try AES.GCM.seal(message.payload, using: key, authenticating: Self.associatedData(sealed))
            guard let combined = box.combined else { throw MessagingError(.integrity, "AES-GCM produced no combined representation") }
            sealed.payload = Array(combined)
        } catch let error as MessagingError {
            throw error
        } catch {
            throw MessagingError(.integrity, "sealing message \(message.id) failed: \(error)")
        }
        return sealed
    }

    /// Decrypts a sealed message; a message that was never sealed passes through unchanged.
    ///
    /// - Throws: ``MessagingError/Code/integrity`` when the key is unknown or the message was altered.
    public func open(_ message: Message) throws -> Message {
        guard message.metadata.headers[Self.algorithmHeader] != nil else { return message }
        guard message.metadata.headers[Self.algorithmHeader] == Self.algorithm else {
            throw MessagingError(.integrity, "message \(message.id) is sealed with '\(message.metadata.headers[Self.algorithmHeader]!)', not \(Self.algorithm)")
        }
        guard let id = message.metadata.headers[Self.keyIDHeader] else {
            throw MessagingError(.integrity, "message \(message.id) is sealed but names no key (\(Self.keyIDHeader) is missing)")
        }
        guard let key = keyring.key(id) else {
            throw MessagingError(.integrity, "message \(message.id) is sealed with key '\(id)', which the keyring does not hold")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: message.payload)
            let plain = try AES.GCM.open(box, using: key, authenticating: Self.associatedData(message))
            var opened = message
            opened.payload = Array(plain)
            opened.metadata.contentType = message.metadata.headers[Self.originalContentType]
            for header in [Self.keyIDHeader, Self.algorithmHeader, Self.originalContentType] { opened.metadata.headers.removeValue(forKey: header) }
            return opened
        } catch {
            throw MessagingError(.integrity, "message \(message.id) failed its integrity check with key '\(id)': it was altered or sealed for another message")
        }
    }

    /// What the tag covers besides the payload.
    private static func associatedData(_ message: Message) -> Data {
        let fields = [message.id, message.topic, message.metadata.correlationId ?? "", message.metadata.headers[keyIDHeader] ?? ""]
        return Data(fields.joined(separator: "\u{1F}").utf8)
    }
}
