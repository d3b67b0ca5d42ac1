/// The 24 bytes the runner writes at the start of every payload: who sent it, its sequence
/// number, and when it was meant to be sent. Consumers read it back to measure end-to-end latency
/// from the intended send time and to find duplicates and losses.
struct MessageStamp: Equatable {
    static let size = 24
    static let magic: UInt32 = 0x4A44_4752 // "JDGR"

    var producer: UInt32
    var sequence: UInt64
    /// Nanoseconds since the run's epoch (a monotonic clock shared by the process).
    var intendedNanos: UInt64

    func write(into payload: inout [UInt8]) {
        payload.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: Self.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: producer.littleEndian, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: sequence.littleEndian, toByteOffset: 8, as: UInt64.self)
            raw.storeBytes(of: intendedNanos.littleEndian, toByteOffset: 16, as: UInt64.self)
        }
    }

    init(producer: UInt32, sequence: UInt64, intendedNanos: UInt64) {
        self.producer = producer
        self.sequence = sequence
        self.intendedNanos = intendedNanos
    }

    /// Reads a stamp; `nil` for payloads this run did not write.
    init?(_ payload: [UInt8]) {
        guard payload.count >= Self.size else { return nil }
        let fields: (UInt32, UInt32, UInt64, UInt64) = payload.withUnsafeBytes { raw in
            (UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self)),
             UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self)),
             UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
             UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        }
        guard fields.0 == Self.magic else { return nil }
        producer = fields.1
        sequence = fields.2
        intendedNanos = fields.3
    }
}
