import DequeModule

/// The offsets of one assigned partition between the last commit and the fetch position, and
/// which of them are done (acknowledged, dead-lettered, retried elsewhere, or skipped).
///
/// Only the contiguous done prefix is committed, so a message whose handler has not finished is
/// never committed past: after a crash or a rebalance it is fetched again (at-least-once).
struct PartitionTracker: Sendable {
    /// Fetched offsets not yet below the commit point, in fetch (so increasing) order, each with
    /// whether it is done. Offsets are usually contiguous, which makes lookup O(1).
    private var entries = Deque<(offset: Int64, done: Bool)>()
    /// The next offset to fetch: highest fetched + 1.
    private(set) var position: Int64?
    /// The last offset handed to a commit (the next offset to consume).
    private(set) var committed: Int64 = -1
    /// The partition reached its end and nothing arrived since.
    var atEnd = false

    /// Notes a fetched record.
    mutating func fetched(_ offset: Int64) {
        entries.append((offset, false))
        position = offset + 1
        atEnd = false
    }

    /// Notes the end of the partition at `offset` (the next offset to be written).
    mutating func reachedEnd(at offset: Int64) {
        atEnd = true
        if offset >= 0, position == nil || offset > position! { position = offset }
    }

    mutating func markDone(_ offset: Int64) {
        guard let index = index(of: offset) else { return }
        entries[index].done = true
    }

    private func index(of offset: Int64) -> Int? {
        guard let first = entries.first?.offset, offset >= first else { return nil }
        let guess = Int(offset - first)
        if guess < entries.count, entries[guess].offset == offset { return guess }
        // Gaps (compaction, transaction markers): binary search.
        var low = 0
        var high = entries.count - 1
        while low <= high {
            let middle = (low + high) / 2
            let value = entries[middle].offset
            if value == offset { return middle }
            if value < offset { low = middle + 1 } else { high = middle - 1 }
        }
        return nil
    }

    /// Moves over the done prefix and returns the offset to commit when it advanced past the last commit.
    mutating func nextCommit() -> Int64? {
        while let first = entries.first, first.done {
            entries.removeFirst()
        }
        guard let point = entries.first?.offset ?? position, point > committed else { return nil }
        committed = point
        return point
    }

    /// Offsets done but not yet committed.
    var pendingDone: [Int64] { entries.filter(\.done).map(\.offset) }
}
