import Crypto
import Jadugar
import JadugarSecurity
import Testing

@Suite("Payload encryption", .timeLimit(.minutes(1)))
struct EncryptionTests {
    func keyring() throws -> Keyring {
        try Keyring(keys: ["k1": SymmetricKey(size: .bits256)], current: "k1")
    }

    @Test("seal and open round-trip; the sealed payload hides the plaintext")
    func roundTrip() throws {
        let encryption = PayloadEncryption(keyring: try keyring())
        let message = Message(topic: "payments", string: "card 4111 1111 1111 1111")
        let sealed = try encryption.seal(message)
        #expect(sealed.payload != message.payload)
        #expect(!sealed.payload.windows(ofCount: 4).contains(Array("4111".utf8)[...]))
        #expect(sealed.metadata.headers[PayloadEncryption.keyIDHeader] == "k1")
        let opened = try encryption.open(sealed)
        #expect(opened.payload == message.payload)
        #expect(opened.metadata.contentType == message.metadata.contentType)
        #expect(opened.metadata.headers[PayloadEncryption.keyIDHeader] == nil)
    }

    @Test("tampering with the payload, the topic, the id or the key id fails the integrity check")
    func tampering() throws {
        let encryption = PayloadEncryption(keyring: try keyring())
        let sealed = try encryption.seal(Message(topic: "payments", string: "x"))
        var flipped = sealed
        flipped.payload[flipped.payload.count / 2] ^= 0x01
        var moved = sealed
        moved.topic = "other"
        var renamed = sealed
        renamed.id = Message.makeID()
        var unknownKey = sealed
        unknownKey.metadata.headers[PayloadEncryption.keyIDHeader] = "k9"
        var truncated = sealed
        truncated.payload = Array(truncated.payload.prefix(5))
        for bad in [flipped, moved, renamed, unknownKey, truncated] {
            #expect(throws: MessagingError.self) { try encryption.open(bad) }
            do { _ = try encryption.open(bad) } catch let error as MessagingError { #expect(error.code == .integrity) }
        }
    }

    @Test("key rotation: new messages use the new key, old ones still open; a retired key no longer opens")
    func rotation() throws {
        let keyring = try keyring()
        let encryption = PayloadEncryption(keyring: keyring)
        let old = try encryption.seal(Message(topic: "t", string: "old"))
        try keyring.rotate(to: "k2", key: SymmetricKey(size: .bits256))
        let new = try encryption.seal(Message(topic: "t", string: "new"))
        #expect(new.metadata.headers[PayloadEncryption.keyIDHeader] == "k2")
        #expect(try encryption.open(old).payloadString == "old")
        #expect(try encryption.open(new).payloadString == "new")
        #expect(throws: MessagingError.self) { try keyring.retire("k2") }
        try keyring.retire("k1")
        #expect(throws: MessagingError.self) { try encryption.open(old) }
        #expect(throws: MessagingError.self) { try Keyring(keys: ["short": SymmetricKey(size: .bits128)], current: "short") }
        #expect(throws: MessagingError.self) { try Keyring(keys: ["a": SymmetricKey(size: .bits256)], current: "b") }
    }

    @Test("through a broker: subscribers get plaintext, the broker only ciphertext, tampered messages go to the dead-letter queue with reason integrity")
    func throughBroker() async throws {
        let name = "encrypted-\(Message.makeID())"
        let keyring = try keyring()
        let raw = InMemoryBroker(sharedName: name)
        let secure = MessageManager(broker: EncryptedBroker(wrapping: InMemoryBroker(sharedName: name), keyring: keyring))
        try await raw.connect()
        try await secure.connect()
        let received = Recorder<String>()
        let subscription = try await secure.subscribe("secret.*", options: SubscribeOptions(group: "vault")) { received.append($0.payloadString ?? "?") }
        try await secure.publish("secret.a", Message(string: "plain text"))
        #expect(await eventually { received.values == ["plain text"] })

        // What the broker holds is ciphertext.
        try await secure.enqueue("box", Message(string: "hidden"))
        let stored = try #require(try await raw.get(queue: "box"))
        #expect(stored.message.payloadString != "hidden")
        try await stored.nack(requeue: true)
        #expect(try await secure.dequeue("box")?.payloadString == "hidden")

        // A forged message (sealed payload altered in transit) is dead-lettered, never handled.
        var forged = try PayloadEncryption(keyring: keyring).seal(Message(topic: "secret.b", string: "pay 1 €"))
        forged.payload[forged.payload.count - 1] ^= 0xFF
        try await raw.publish(forged, options: .default)
        let dead = DeadLetterHandler(MessageManager(broker: raw), options: DeadLetterOptions(queue: "vault.dlq"))
        #expect(try await eventually { try await dead.getStats().byReason["integrity"] == 1 })
        #expect(received.values == ["plain text"])
        await subscription.cancel()
    }
}

@Suite("Access control", .timeLimit(.minutes(1)))
struct AccessControlTests {
    let policy = AccessPolicy(rules: [
        .deny("billing", .subscribe, "payments.card.#"),
        .allow("billing", [.publish, .subscribe], "payments.#"),
        .allow("auditor", .subscribe, "#"),
        .allow("*", .subscribe, "public.*"),
    ])

    @Test("rules: first match decides, deny wins when listed first, default deny", arguments: [
        ("billing", AccessPolicy.Action.publish, "payments.refund", true),
        ("billing", .subscribe, "payments.#", true),
        ("billing", .subscribe, "payments.card.visa", false),
        ("billing", .subscribe, "payments.card.#", false),
        ("billing", .publish, "hr.salaries", false),
        ("billing", .subscribe, "#", false),
        ("auditor", .subscribe, "anything.at.all", true),
        ("auditor", .publish, "payments.refund", false),
        ("guest", .subscribe, "public.news", true),
        ("guest", .subscribe, "public.*", true),
        ("guest", .subscribe, "public.#", false),
        ("guest", .publish, "public.news", false),
    ])
    func rules(principal: String, action: AccessPolicy.Action, topic: String, allowed: Bool) {
        do {
            try policy.authorize(principal, action, topic: topic)
            #expect(allowed)
        } catch let error as MessagingError {
            #expect(!allowed, "\(error)")
            #expect(error.code == .accessDenied)
            #expect(error.message.contains(principal) && error.message.contains(topic))
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test("a broker wrapped for a principal refuses what the policy denies, before the broker sees it")
    func broker() async throws {
        let name = "acl-\(Message.makeID())"
        let billing = MessageManager(broker: AccessControlledBroker(wrapping: InMemoryBroker(sharedName: name), principal: "billing", policy: policy))
        try await billing.connect()
        try await billing.publish("payments.refund", Message())
        await #expect(throws: MessagingError.self) { try await billing.publish("hr.salaries", Message()) }
        await #expect(throws: MessagingError.self) { _ = try await billing.subscribe("payments.card.#") { _ in } }
        let ok = try await billing.subscribe("payments.#", options: SubscribeOptions(group: "billing")) { _ in }
        await ok.cancel()
        await #expect(throws: MessagingError.self) { _ = try await billing.dequeue("hr-queue") }
    }
}
