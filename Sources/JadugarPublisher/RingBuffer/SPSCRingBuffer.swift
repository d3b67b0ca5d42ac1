import Atomics

/// A bounded, lock-free queue for exactly one producer and one consumer.
///
/// Cheaper than ``MPSCRingBuffer`` when only one thread pushes: no compare-and-swap and no per-slot
/// sequence numbers. The producer owns the head index and the consumer the tail index; each keeps a
/// cached copy of the other's index and reloads it (acquire) only when the cache says the ring is
/// full or empty, so in the steady state each side touches the other's cache line once per lap or
/// per batch rather than once per element.
///
/// ```swift
/// let ring = SPSCRingBuffer<Int>(minimumCapacity: 1024)
/// _ = ring.tryPush(42)          // on the producer thread
/// let value = ring.tryPop()     // on the consumer thread
/// ```
///
/// - Important: At most one thread at a time may push and at most one thread at a time may pop
///   (they may be different threads, running at once). A second concurrent producer or consumer
///   corrupts the ring.
public final class SPSCRingBuffer<Element> {
    /// Line 0: the head index (atomic, written by the producer) and the producer's cached tail.
    /// Line 1: the tail index (atomic, written by the consumer) and the consumer's cached head.
    @usableFromInline
    let header: _RingHeader

    @usableFromInline
    let elements: UnsafeMutablePointer<Element>

    @usableFromInline
    let mask: Int

    /// The most elements the ring holds at once: the requested capacity rounded up to a power of two.
    ///
    /// ```swift
    /// SPSCRingBuffer<Int>(minimumCapacity: 100).capacity // 128
    /// ```
    public let capacity: Int

    /// Creates an empty ring that holds at least `minimumCapacity` elements.
    ///
    /// ```swift
    /// let ring = SPSCRingBuffer<Envelope>(minimumCapacity: 4096)
    /// ```
    ///
    /// - Parameter minimumCapacity: The least number of elements; rounded up to a power of two.
    public init(minimumCapacity: Int) {
        self.capacity = _ringCapacity(minimumCapacity)
        self.mask = self.capacity - 1
        self.elements = .allocate(capacity: self.capacity)
        self.header = _RingHeader()
    }

    deinit {
        var tail = self.header.atomic(1).load(ordering: .relaxed)
        let head = self.header.atomic(0).load(ordering: .relaxed)
        while tail != head {
            (self.elements + (tail & self.mask)).deinitialize(count: 1)
            tail &+= 1
        }
        self.elements.deallocate()
        self.header.deallocate()
    }

    /// Adds an element at the head if there is room.
    ///
    /// ```swift
    /// while !ring.tryPush(value) { /* back off */ }
    /// ```
    ///
    /// - Parameter element: The element to add.
    /// - Returns: `true` if added, `false` if the ring was full.
    /// - Important: Only the one producer may call this.
    @inlinable
    public func tryPush(_ element: __owned Element) -> Bool {
        let head = self.header.atomic(0).load(ordering: .relaxed)
        let cachedTail = self.header.plain(0)
        if head &- cachedTail.pointee == self.capacity {
            cachedTail.pointee = self.header.atomic(1).load(ordering: .acquiring)
            if head &- cachedTail.pointee == self.capacity { return false }
        }
        (self.elements + (head & self.mask)).initialize(to: element)
        self.header.atomic(0).store(head &+ 1, ordering: .releasing)
        return true
    }

    /// Removes and returns the oldest element, or `nil` if the ring is empty.
    ///
    /// ```swift
    /// while let value = ring.tryPop() { handle(value) }
    /// ```
    ///
    /// - Returns: The oldest element, or `nil`.
    /// - Important: Only the one consumer may call this.
    @inlinable
    public func tryPop() -> Element? {
        let tail = self.header.atomic(1).load(ordering: .relaxed)
        let cachedHead = self.header.plain(1)
        if tail == cachedHead.pointee {
            cachedHead.pointee = self.header.atomic(0).load(ordering: .acquiring)
            if tail == cachedHead.pointee { return nil }
        }
        let element = (self.elements + (tail & self.mask)).move()
        self.header.atomic(1).store(tail &+ 1, ordering: .releasing)
        return element
    }

    /// Moves up to `max` elements, oldest first, to the end of `buffer`, publishing the freed
    /// space to the producer once.
    ///
    /// ```swift
    /// var batch: [Envelope] = []
    /// ring.popBatch(into: &batch, max: 64)
    /// ```
    ///
    /// - Parameters:
    ///   - buffer: Where the elements are appended.
    ///   - max: The most elements to take.
    /// - Returns: How many elements were appended.
    /// - Important: Only the one consumer may call this.
    @inlinable
    @discardableResult
    public func popBatch(into buffer: inout [Element], max: Int) -> Int {
        let tail = self.header.atomic(1).load(ordering: .relaxed)
        let cachedHead = self.header.plain(1)
        var available = cachedHead.pointee &- tail
        if available < max {
            cachedHead.pointee = self.header.atomic(0).load(ordering: .acquiring)
            available = cachedHead.pointee &- tail
        }
        let taken = Swift.min(available, max)
        guard taken > 0 else { return 0 }
        for offset in 0..<taken {
            buffer.append((self.elements + ((tail &+ offset) & self.mask)).move())
        }
        self.header.atomic(1).store(tail &+ taken, ordering: .releasing)
        return taken
    }

    /// The number of elements in the ring: a snapshot.
    ///
    /// ```swift
    /// gauge.record(ring.count)
    /// ```
    public var count: Int {
        let tail = self.header.atomic(1).load(ordering: .relaxed)
        let head = self.header.atomic(0).load(ordering: .relaxed)
        return Swift.min(Swift.max(head &- tail, 0), self.capacity)
    }

    /// Whether the ring is empty, in the sense of ``count``.
    ///
    /// ```swift
    /// if ring.isEmpty { park() }
    /// ```
    public var isEmpty: Bool { self.count == 0 }
}

/// The ring is `Sendable` because each index is an atomic written by one side only: the producer
/// publishes an element with a release store of the head that the consumer loads with acquire, and
/// the consumer hands a slot back with a release store of the tail that the producer loads with
/// acquire. Each cached index is touched by its own side only. The invariant the type cannot check
/// is one producer and one consumer at a time (documented on the type).
extension SPSCRingBuffer: @unchecked Sendable where Element: Sendable {}
