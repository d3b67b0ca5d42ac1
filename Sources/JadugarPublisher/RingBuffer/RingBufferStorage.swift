import Atomics

/// Bytes between two counters that different threads write, so that they never share a cache line.
///
/// 128 rather than 64 because x86 prefetches cache lines in adjacent pairs, and Apple silicon uses
/// 128-byte lines.
@usableFromInline
let _ringPadding = 128

/// The set bit in a Vyukov ring's enqueue position once the ring is closed.
///
/// Positions count up from zero by one per element and never come near 2^62.
@usableFromInline
let _ringClosedBit = 1 << 62

/// The smallest power of two that is at least `minimum` (and at least 2).
@usableFromInline
func _ringCapacity(_ minimum: Int) -> Int {
    precondition(minimum > 0, "ring buffer capacity must be positive, got \(minimum)")
    precondition(minimum <= 1 << 40, "ring buffer capacity \(minimum) is unreasonably large")
    var capacity = 2
    while capacity < minimum { capacity <<= 1 }
    return capacity
}

/// Two words of the ring's control state, each alone on its own pair of cache lines.
///
/// Word `0` sits at offset 0 (the producers' line) and word `1` at offset ``_ringPadding`` (the
/// consumer's line); each line also has room for a plain `Int` right behind the atomic.
@usableFromInline
struct _RingHeader {
    @usableFromInline
    let base: UnsafeMutableRawPointer

    init() {
        self.base = UnsafeMutableRawPointer.allocate(byteCount: 2 * _ringPadding, alignment: _ringPadding)
        for line in 0..<2 {
            let word = self.base + line * _ringPadding
            word.initializeMemory(as: Int.AtomicRepresentation.self, to: .init(0))
            (word + MemoryLayout<Int.AtomicRepresentation>.stride).initializeMemory(as: Int.self, to: 0)
        }
    }

    /// The atomic counter on line `line` (0 or 1).
    @inlinable
    func atomic(_ line: Int) -> UnsafeAtomic<Int> {
        UnsafeAtomic(at: (self.base + line &* _ringPadding).assumingMemoryBound(to: Int.AtomicRepresentation.self))
    }

    /// The plain `Int` on line `line`, for a value only one thread touches (a cached copy).
    @inlinable
    func plain(_ line: Int) -> UnsafeMutablePointer<Int> {
        (self.base + (line &* _ringPadding &+ MemoryLayout<Int.AtomicRepresentation>.stride))
            .assumingMemoryBound(to: Int.self)
    }

    func deallocate() {
        self.base.deallocate()
    }
}

/// The slots of a bounded Vyukov queue: each holds a sequence number and, when full, an element.
///
/// A slot at position `p` (index `p & mask`) is free for the producer of position `p` when its
/// sequence is `p`, holds that producer's element when its sequence is `p + 1`, and is released to
/// the producer of the next lap by storing `p + capacity`. The sequence number is the only
/// synchronisation: a producer's release store of `p + 1` publishes the element to the consumer's
/// acquire load, and the consumer's release store of `p + capacity` hands the slot back.
///
/// The sequence and the element share one stride, so one cache line brings both.
@usableFromInline
struct _VyukovSlots<Element> {
    @usableFromInline
    let base: UnsafeMutableRawPointer
    @usableFromInline
    let stride: Int
    @usableFromInline
    let elementOffset: Int
    @usableFromInline
    let capacity: Int
    @usableFromInline
    let mask: Int

    init(capacity: Int) {
        let sequenceSize = MemoryLayout<Int.AtomicRepresentation>.stride
        let elementAlignment = MemoryLayout<Element>.alignment
        let elementOffset = (sequenceSize + elementAlignment - 1) / elementAlignment * elementAlignment
        let alignment = max(MemoryLayout<Int.AtomicRepresentation>.alignment, elementAlignment)
        let end = elementOffset + MemoryLayout<Element>.size
        self.stride = (end + alignment - 1) / alignment * alignment
        self.elementOffset = elementOffset
        self.capacity = capacity
        self.mask = capacity - 1
        self.base = UnsafeMutableRawPointer.allocate(byteCount: self.stride * capacity, alignment: max(64, alignment))
        for index in 0..<capacity {
            let slot = self.base + index * self.stride
            slot.initializeMemory(as: Int.AtomicRepresentation.self, to: .init(index))
            // Bound but left uninitialised: an element lives here only between push and pop.
            (slot + elementOffset).bindMemory(to: Element.self, capacity: 1)
        }
    }

    @inlinable
    func sequence(_ position: Int) -> UnsafeAtomic<Int> {
        UnsafeAtomic(
            at: (self.base + (position & self.mask) &* self.stride).assumingMemoryBound(to: Int.AtomicRepresentation.self)
        )
    }

    @inlinable
    func element(_ position: Int) -> UnsafeMutablePointer<Element> {
        (self.base + ((position & self.mask) &* self.stride &+ self.elementOffset)).assumingMemoryBound(to: Element.self)
    }

    /// Claims the slot at the enqueue position with a CAS and publishes `element` in it.
    ///
    /// The successful CAS is sequentially consistent: the batcher's parking protocol relies on a
    /// producer's claim being ordered before its check of the consumer's "sleeping" flag.
    @inlinable
    func push(_ element: __owned Element, enqueue: UnsafeAtomic<Int>) -> Bool {
        var position = enqueue.load(ordering: .relaxed)
        while true {
            if position & _ringClosedBit != 0 { return false }
            let difference = self.sequence(position).load(ordering: .acquiring) &- position
            if difference == 0 {
                let (exchanged, original) = enqueue.weakCompareExchange(
                    expected: position,
                    desired: position &+ 1,
                    successOrdering: .sequentiallyConsistent,
                    failureOrdering: .relaxed
                )
                if exchanged { break }
                position = original
            } else if difference < 0 {
                // The slot still holds the element pushed one lap ago: the ring is full.
                return false
            } else {
                // Another producer claimed this position first; catch up.
                position = enqueue.load(ordering: .relaxed)
            }
        }
        self.element(position).initialize(to: element)
        self.sequence(position).store(position &+ 1, ordering: .releasing)
        return true
    }

    /// Takes the element at `position` if it has been published; for a ring with one consumer,
    /// which owns `position`.
    @inlinable
    func popOwned(at position: Int) -> Element? {
        let sequence = self.sequence(position)
        guard sequence.load(ordering: .acquiring) == position &+ 1 else { return nil }
        let element = self.element(position).move()
        sequence.store(position &+ self.capacity, ordering: .releasing)
        return element
    }

    /// Claims the dequeue position with a CAS and takes its element; for a ring with several consumers.
    @inlinable
    func popShared(dequeue: UnsafeAtomic<Int>) -> Element? {
        var position = dequeue.load(ordering: .relaxed)
        while true {
            let difference = self.sequence(position).load(ordering: .acquiring) &- (position &+ 1)
            if difference == 0 {
                let (exchanged, original) = dequeue.weakCompareExchange(
                    expected: position,
                    desired: position &+ 1,
                    successOrdering: .relaxed,
                    failureOrdering: .relaxed
                )
                if exchanged { break }
                position = original
            } else if difference < 0 {
                return nil
            } else {
                position = dequeue.load(ordering: .relaxed)
            }
        }
        let element = self.element(position).move()
        self.sequence(position).store(position &+ self.capacity, ordering: .releasing)
        return element
    }

    /// Destroys the elements still published between the two positions and frees the slots.
    ///
    /// Only for `deinit`, when no other thread can hold the ring.
    func destroy(from dequeuePosition: Int, to enqueuePosition: Int) {
        var position = dequeuePosition
        while position < enqueuePosition {
            if self.sequence(position).load(ordering: .relaxed) == position &+ 1 {
                self.element(position).deinitialize(count: 1)
            }
            position += 1
        }
        self.base.deallocate()
    }
}
