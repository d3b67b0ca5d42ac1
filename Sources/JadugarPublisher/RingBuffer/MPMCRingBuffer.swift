import Atomics

/// A bounded, lock-free queue for many producers and many consumers.
///
/// The same algorithm as ``MPSCRingBuffer`` (Dmitry Vyukov's bounded queue), except that consumers
/// also claim their slot with a compare-and-swap, which costs a little on every pop. Use it when
/// several threads take work from one ring; prefer ``MPSCRingBuffer`` when one thread does.
///
/// ```swift
/// let ring = MPMCRingBuffer<Int>(minimumCapacity: 1024)
/// _ = ring.tryPush(1)          // from any thread
/// let next = ring.tryPop()     // from any thread
/// ```
///
/// - Important: Every method is safe to call from any number of threads at once. Elements come out
///   in the order their slots were claimed; two consumers may finish their pops in either order.
public final class MPMCRingBuffer<Element> {
    @usableFromInline
    let slots: _VyukovSlots<Element>

    /// Line 0: the enqueue position (with ``_ringClosedBit`` once closed). Line 1: the dequeue position.
    @usableFromInline
    let header: _RingHeader

    /// The most elements the ring holds at once: the requested capacity rounded up to a power of two.
    ///
    /// ```swift
    /// MPMCRingBuffer<Int>(minimumCapacity: 3).capacity // 4
    /// ```
    public var capacity: Int { self.slots.capacity }

    /// Creates an empty ring that holds at least `minimumCapacity` elements.
    ///
    /// ```swift
    /// let work = MPMCRingBuffer<Job>(minimumCapacity: 256)
    /// ```
    ///
    /// - Parameter minimumCapacity: The least number of elements; rounded up to a power of two.
    public init(minimumCapacity: Int) {
        self.slots = _VyukovSlots(capacity: _ringCapacity(minimumCapacity))
        self.header = _RingHeader()
    }

    deinit {
        let enqueued = self.header.atomic(0).load(ordering: .relaxed) & ~_ringClosedBit
        self.slots.destroy(from: self.header.atomic(1).load(ordering: .relaxed), to: enqueued)
        self.header.deallocate()
    }

    /// Adds an element at the tail if there is room and the ring is open.
    ///
    /// ```swift
    /// guard ring.tryPush(job) else { return .rejected }
    /// ```
    ///
    /// - Parameter element: The element to add.
    /// - Returns: `true` if added; `false` if the ring was full or closed.
    @inlinable
    public func tryPush(_ element: __owned Element) -> Bool {
        self.slots.push(element, enqueue: self.header.atomic(0))
    }

    /// Removes and returns the element at the head, or `nil` if none is ready.
    ///
    /// ```swift
    /// while let job = ring.tryPop() { job.run() }
    /// ```
    ///
    /// - Returns: The oldest published element, or `nil`.
    @inlinable
    public func tryPop() -> Element? {
        self.slots.popShared(dequeue: self.header.atomic(1))
    }

    /// Moves up to `max` ready elements to the end of `buffer`, one claimed pop at a time.
    ///
    /// ```swift
    /// var jobs: [Job] = []
    /// ring.popBatch(into: &jobs, max: 16)
    /// ```
    ///
    /// - Parameters:
    ///   - buffer: Where the elements are appended.
    ///   - max: The most elements to take.
    /// - Returns: How many elements were appended.
    @inlinable
    @discardableResult
    public func popBatch(into buffer: inout [Element], max: Int) -> Int {
        var taken = 0
        while taken < max, let element = self.slots.popShared(dequeue: self.header.atomic(1)) {
            buffer.append(element)
            taken &+= 1
        }
        return taken
    }

    /// Refuses every later push, while consumers can still take what is in the ring.
    ///
    /// ```swift
    /// ring.close()
    /// ```
    public func close() {
        _ = self.header.atomic(0).loadThenBitwiseOr(with: _ringClosedBit, ordering: .sequentiallyConsistent)
    }

    /// Whether ``close()`` has been called.
    ///
    /// ```swift
    /// if ring.isClosed { return }
    /// ```
    public var isClosed: Bool {
        self.header.atomic(0).load(ordering: .acquiring) & _ringClosedBit != 0
    }

    /// The number of claimed, not yet taken elements: a snapshot.
    ///
    /// ```swift
    /// gauge.record(ring.count)
    /// ```
    public var count: Int {
        let dequeued = self.header.atomic(1).load(ordering: .relaxed)
        let enqueued = self.header.atomic(0).load(ordering: .relaxed) & ~_ringClosedBit
        return Swift.min(Swift.max(enqueued &- dequeued, 0), self.capacity)
    }

    /// Whether the ring is empty, in the sense of ``count``.
    ///
    /// ```swift
    /// if ring.isEmpty { return }
    /// ```
    public var isEmpty: Bool { self.count == 0 }
}

/// The ring is `Sendable` because both positions are atomics claimed with compare-and-swap and every
/// cross-thread access to a slot is ordered by that slot's atomic sequence number.
extension MPMCRingBuffer: @unchecked Sendable where Element: Sendable {}
