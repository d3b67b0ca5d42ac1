/// A first-in, first-out queue over an array with a moving head: O(1) amortized at both ends.
/// (The adapter's target does not depend on swift-collections' `Deque`.)
struct FIFO<Element> {
    private var storage: [Element] = []
    private var head = 0

    var isEmpty: Bool { head == storage.count }
    var count: Int { storage.count - head }
    var first: Element? { isEmpty ? nil : storage[head] }
    /// The elements, first to last.
    var elements: ArraySlice<Element> { storage[head...] }

    mutating func append(_ element: Element) {
        storage.append(element)
    }

    mutating func append(contentsOf elements: some Sequence<Element>) {
        storage.append(contentsOf: elements)
    }

    @discardableResult
    mutating func popFirst() -> Element? {
        guard !isEmpty else { return nil }
        let element = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64, head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return element
    }

    @discardableResult
    mutating func removeFirst() -> Element {
        guard let element = popFirst() else { preconditionFailure("removeFirst on an empty FIFO") }
        return element
    }

    mutating func removeAll() {
        storage.removeAll()
        head = 0
    }
}
