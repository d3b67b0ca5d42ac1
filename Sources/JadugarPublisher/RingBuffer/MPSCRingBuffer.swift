import Atomics

/// A bounded, lock-free queue for many producers and one consumer.
///
/// The ring holds at most ``capacity`` elements (the requested capacity rounded up to a power of
/// two). Producers claim a slot with one compare-and-swap and publish their element with a release
/// store of the slot's sequence number (Dmitry Vyukov's bounded queue); the consumer takes elements
/// in the order their slots were claimed. No operation takes a lock or allocates: all the memory is
/// allocated once, in `init`.
///
/// Closing the ring (``close()``) makes every later ``tryPush(_:)`` fail while the consumer can
/// still take what was pushed before; this is how the batcher shuts down without losing items.
///
/// ```swift
/// let ring = MPSCRingBuffer<Int>(minimumCapacity: 1024)
/// _ = ring.tryPush(1)                      // from any thread
/// var batch: [Int] = []
/// ring.popBatch(into: &batch, max: 64)     // from the one consumer thread
/// ```
///
/// - Important: Any number of threads or tasks may call ``tryPush(_:)`` at once, but only one
///   thread at a time may call ``tryPop()`` or ``popBatch(into:max:)``: the consumer's position is
///   owned by the consumer and is not protected against a second one. Use ``MPMCRingBuffer`` when
///   several threads consume. A push that finds the ring full fails rather than waits; a pop can
///   find the ring empty while a producer that claimed an earlier slot has not yet published, and
///   then sees that element on a later call.
public final class MPSCRingBuffer<Element> {
    @usableFromInline
    let slots: _VyukovSlots<Element>

    /// Line 0: the enqueue position, claimed by producers with a CAS, with ``_ringClosedBit`` once
    /// closed. Line 1: the dequeue position, written only by the consumer.
    @usableFromInline
    let header: _RingHeader

    /// The most elements the ring holds at once: the requested capacity rounded up to a power of two.
    ///
    /// ```swift
    /// MPSCRingBuffer<Int>(minimumCapacity: 1000).capacity // 1024
    /// ```
    public var capacity: Int { self.slots.capacity }

    /// Creates an empty ring that holds at least `minimumCapacity` elements.
    ///
    /// ```swift
    /// let ring = MPSCRingBuffer<Envelope>(minimumCapacity: 4096)
    /// ```
    ///
    /// - Parameter minimumCapacity: The least number of elements the ring must hold; rounded up to
    ///   a power of two, and to at least 2.
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
    /// if !ring.tryPush(envelope) { throw PublisherError(code: .bufferFull, message: "full") }
    /// ```
    ///
    /// - Parameter element: The element to add.
    /// - Returns: `true` if the element was added; `false` if the ring was full or closed (check
    ///   ``isClosed`` to tell which: once closed, a ring stays closed).
    /// - Important: Safe to call from any number of threads at once.
    @inlinable
    public func tryPush(_ element: __owned Element) -> Bool {
        self.slots.push(element, enqueue: self.header.atomic(0))
    }

    /// Removes and returns the element at the head, or `nil` if none is ready.
    ///
    /// ```swift
    /// while let envelope = ring.tryPop() { write(envelope) }
    /// ```
    ///
    /// - Returns: The oldest published element, or `nil`.
    /// - Important: Only one thread at a time may consume.
    @inlinable
    public func tryPop() -> Element? {
        let dequeue = self.header.atomic(1)
        let position = dequeue.load(ordering: .relaxed)
        guard let element = self.slots.popOwned(at: position) else { return nil }
        dequeue.store(position &+ 1, ordering: .relaxed)
        return element
    }

    /// Moves up to `max` ready elements, oldest first, to the end of `buffer`.
    ///
    /// Stops early at the first slot that is not yet published. Appending allocates only when
    /// `buffer` must grow, so a buffer reused with `removeAll(keepingCapacity: true)` makes the
    /// steady state allocation-free.
    ///
    /// ```swift
    /// var batch: [Envelope] = []
    /// batch.reserveCapacity(64)
    /// let taken = ring.popBatch(into: &batch, max: 64)
    /// ```
    ///
    /// - Parameters:
    ///   - buffer: Where the elements are appended.
    ///   - max: The most elements to take.
    /// - Returns: How many elements were appended.
    /// - Important: Only one thread at a time may consume.
    @inlinable
    @discardableResult
    public func popBatch(into buffer: inout [Element], max: Int) -> Int {
        self.consume(max: max) { buffer.append($0) }
    }

    /// Hands up to `max` ready elements, oldest first, to `body`; the consumer's position is
    /// written once at the end.
    @inlinable
    func consume(max: Int, _ body: (__owned Element) -> Void) -> Int {
        let dequeue = self.header.atomic(1)
        let start = dequeue.load(ordering: .relaxed)
        var position = start
        let end = start &+ max
        while position != end, let element = self.slots.popOwned(at: position) {
            body(element)
            position &+= 1
        }
        if position != start {
            dequeue.store(position, ordering: .relaxed)
        }
        return position &- start
    }

    /// Refuses every later push, while the consumer can still take what is in the ring.
    ///
    /// Pushes that had already claimed a slot finish and their elements stay poppable. Closing twice
    /// is harmless.
    ///
    /// ```swift
    /// ring.close()
    /// assert(!ring.tryPush(1))
    /// ```
    ///
    /// - Important: Safe to call from any thread.
    public func close() {
        _ = self.header.atomic(0).loadThenBitwiseOr(with: _ringClosedBit, ordering: .sequentiallyConsistent)
    }

    /// Whether ``close()`` has been called.
    ///
    /// ```swift
    /// if !ring.tryPush(x) && ring.isClosed { throw PublisherError(code: .closed, message: "closed") }
    /// ```
    public var isClosed: Bool {
        self.header.atomic(0).load(ordering: .acquiring) & _ringClosedBit != 0
    }

    /// The number of elements in the ring, including those whose producer has claimed a slot but
    /// not yet published.
    ///
    /// A snapshot: other threads may change it before you use it.
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
    /// if ring.isEmpty { park() }
    /// ```
    public var isEmpty: Bool { self.count == 0 }

    /// Whether a producer has claimed a slot the consumer has not taken yet, published or not.
    ///
    /// For the consumer: sequentially consistent, so that it pairs with a producer's claim in the
    /// batcher's parking protocol.
    @usableFromInline
    var hasClaimedElements: Bool {
        let enqueued = self.header.atomic(0).load(ordering: .sequentiallyConsistent) & ~_ringClosedBit
        return enqueued != self.header.atomic(1).load(ordering: .relaxed)
    }
}

/// The ring is `Sendable` because every cross-thread access to a slot is ordered by that slot's
/// atomic sequence number (see `_VyukovSlots`), and the positions are atomics. The one invariant
/// the type cannot check is that a single thread consumes at a time (documented on the type).
extension MPSCRingBuffer: @unchecked Sendable where Element: Sendable {}
