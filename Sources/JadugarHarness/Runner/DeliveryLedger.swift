import Synchronization

/// What one subscription received: a bit per (producer, sequence), so duplicates and losses are exact.
final class DeliveryLedger: Sendable {
    private struct State {
        var bits: [UInt32: [UInt64]] = [:]
        var distinct = 0
        var duplicates = 0
        var lastDelivery: ContinuousClock.Instant = .now
    }
    private let state = Mutex(State())

    /// Records a delivery; returns `false` for a duplicate.
    @discardableResult
    func record(producer: UInt32, sequence: UInt64) -> Bool {
        let word = Int(sequence >> 6), bit = UInt64(1) << (sequence & 63)
        return state.withLock { state in
            state.lastDelivery = .now
            var words = state.bits.removeValue(forKey: producer) ?? []
            if words.count <= word { words.append(contentsOf: repeatElement(0, count: word - words.count + 1)) }
            let fresh = words[word] & bit == 0
            words[word] |= bit
            state.bits[producer] = words
            if fresh { state.distinct += 1 } else { state.duplicates += 1 }
            return fresh
        }
    }

    var distinct: Int { state.withLock { $0.distinct } }
    var duplicates: Int { state.withLock { $0.duplicates } }
    var lastDelivery: ContinuousClock.Instant { state.withLock { $0.lastDelivery } }

    /// How many of the confirmed messages never arrived here.
    func missing(from confirmed: DeliveryLedger) -> Int {
        let received = state.withLock { $0.bits }
        let sent = confirmed.state.withLock { $0.bits }
        var missing = 0
        for (producer, words) in sent {
            let mine = received[producer] ?? []
            for (index, word) in words.enumerated() {
                let have = index < mine.count ? mine[index] : 0
                missing += (word & ~have).nonzeroBitCount
            }
        }
        return missing
    }
}
