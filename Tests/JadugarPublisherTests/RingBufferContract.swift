import Foundation
import JadugarPublisher
import Testing

/// The operations every ring shares, so that one set of single-threaded checks covers all three.
protocol TestableRing<Element>: AnyObject {
    associatedtype Element
    init(minimumCapacity: Int)
    var capacity: Int { get }
    var count: Int { get }
    var isEmpty: Bool { get }
    func tryPush(_ element: __owned Element) -> Bool
    func tryPop() -> Element?
    @discardableResult func popBatch(into buffer: inout [Element], max: Int) -> Int
}

extension MPSCRingBuffer: TestableRing {}
extension MPMCRingBuffer: TestableRing {}
extension SPSCRingBuffer: TestableRing {}

/// Single-threaded behaviour every ring must have.
enum RingContract {
    static func roundsCapacityUpToPowerOfTwo<R: TestableRing>(_: R.Type) where R.Element == Int {
        #expect(R(minimumCapacity: 1).capacity == 2)
        #expect(R(minimumCapacity: 2).capacity == 2)
        #expect(R(minimumCapacity: 3).capacity == 4)
        #expect(R(minimumCapacity: 1000).capacity == 1024)
        #expect(R(minimumCapacity: 1024).capacity == 1024)
    }

    static func fillsDrainsAndWrapsInOrder<R: TestableRing>(_: R.Type) where R.Element == Int {
        let ring = R(minimumCapacity: 8)
        #expect(ring.tryPop() == nil)
        #expect(ring.isEmpty)
        var next = 0
        var expected = 0
        // Many laps, with the ring full and empty in turn, so that every slot is reused.
        for _ in 0..<50 {
            while ring.tryPush(next) { next += 1 }
            #expect(ring.count == 8)
            #expect(!ring.tryPush(-1), "a full ring must refuse")
            for _ in 0..<5 {
                #expect(ring.tryPop() == expected)
                expected += 1
            }
            #expect(ring.count == 3)
            var batch: [Int] = []
            #expect(ring.popBatch(into: &batch, max: 2) == 2)
            #expect(batch == [expected, expected + 1])
            expected += 2
            #expect(ring.popBatch(into: &batch, max: 100) == 1)
            #expect(batch == [expected - 2, expected - 1, expected])
            expected += 1
            #expect(ring.tryPop() == nil)
            #expect(ring.isEmpty)
        }
        #expect(next == 400)
    }

    static func destroysWhatItStillHolds<R: TestableRing>(_: R.Type) async where R.Element == Tracked {
        let deinits = Counter()
        do {
            let ring = R(minimumCapacity: 16)
            for value in 0..<10 { #expect(ring.tryPush(Tracked(value, deinits: deinits))) }
            var popped: [Tracked] = []
            ring.popBatch(into: &popped, max: 3)
            #expect(popped.map(\.value) == [0, 1, 2])
            popped.removeAll()
            #expect(deinits.value == 3, "popped elements are released once, by their new owner")
        }
        #expect(deinits.value == 10, "the ring's deinit must destroy the 7 elements it still held")
    }
}

@Suite("Ring buffers: single-threaded contract")
struct RingBufferContractTests {
    @Test func mpscRoundsCapacity() { RingContract.roundsCapacityUpToPowerOfTwo(MPSCRingBuffer<Int>.self) }
    @Test func mpmcRoundsCapacity() { RingContract.roundsCapacityUpToPowerOfTwo(MPMCRingBuffer<Int>.self) }
    @Test func spscRoundsCapacity() { RingContract.roundsCapacityUpToPowerOfTwo(SPSCRingBuffer<Int>.self) }

    @Test func mpscFillsDrainsAndWraps() { RingContract.fillsDrainsAndWrapsInOrder(MPSCRingBuffer<Int>.self) }
    @Test func mpmcFillsDrainsAndWraps() { RingContract.fillsDrainsAndWrapsInOrder(MPMCRingBuffer<Int>.self) }
    @Test func spscFillsDrainsAndWraps() { RingContract.fillsDrainsAndWrapsInOrder(SPSCRingBuffer<Int>.self) }

    @Test func mpscDestroysRemainingElements() async { await RingContract.destroysWhatItStillHolds(MPSCRingBuffer<Tracked>.self) }
    @Test func mpmcDestroysRemainingElements() async { await RingContract.destroysWhatItStillHolds(MPMCRingBuffer<Tracked>.self) }
    @Test func spscDestroysRemainingElements() async { await RingContract.destroysWhatItStillHolds(SPSCRingBuffer<Tracked>.self) }

    @Test func closedRingRefusesPushesButYieldsWhatItHeld() {
        let ring = MPSCRingBuffer<Int>(minimumCapacity: 4)
        #expect(ring.tryPush(1))
        #expect(ring.tryPush(2))
        #expect(!ring.isClosed)
        ring.close()
        ring.close()
        #expect(ring.isClosed)
        #expect(!ring.tryPush(3))
        #expect(ring.count == 2)
        #expect(ring.tryPop() == 1)
        #expect(ring.tryPop() == 2)
        #expect(ring.tryPop() == nil)
        #expect(!ring.tryPush(4))

        let shared = MPMCRingBuffer<Int>(minimumCapacity: 4)
        #expect(shared.tryPush(1))
        shared.close()
        #expect(shared.isClosed)
        #expect(!shared.tryPush(2))
        #expect(shared.tryPop() == 1)
        #expect(shared.tryPop() == nil)
    }
}
