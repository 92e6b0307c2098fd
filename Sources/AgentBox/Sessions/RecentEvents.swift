/// The latest stored events of a session, oldest first, at most `capacity` of them and `byteCapacity` bytes (see
/// ``cost(of:)``): a ring whose seqs are consecutive.
struct RecentEvents {
    let capacity: Int
    let byteCapacity: Int
    private var storage: [EncodedSessionEvent] = []
    private(set) var bytes = 0

    init(capacity: Int, byteCapacity: Int) {
        self.capacity = capacity
        self.byteCapacity = byteCapacity
    }

    var count: Int { storage.count }
    var firstSeq: Int64? { storage.first?.seq }

    /// What an event held here costs: its JSON, and about as much again for its parsed form.
    static func cost(of event: EncodedSessionEvent) -> Int { 2 * event.json.count + 64 }

    mutating func append(contentsOf events: [EncodedSessionEvent]) {
        if let last = storage.last, let first = events.first, first.seq != last.seq + 1 { removeAll() }
        storage.append(contentsOf: events)
        for event in events { bytes += Self.cost(of: event) }
        // Trim in steps of a quarter, so that trimming (a copy) happens once per many writes.
        guard storage.count > capacity + capacity / 4 || bytes > byteCapacity + byteCapacity / 4 else { return }
        var drop = max(0, storage.count - capacity)
        for event in storage[..<drop] { bytes -= Self.cost(of: event) }
        while drop < storage.count, bytes > byteCapacity {
            bytes -= Self.cost(of: storage[drop])
            drop += 1
        }
        storage.removeFirst(drop)
    }

    mutating func removeAll() {
        storage.removeAll()
        bytes = 0
    }

    /// Up to `limit` events after `cursor`, or `nil` when the one after `cursor` is not held.
    func events(after cursor: Int64, limit: Int) -> ArraySlice<EncodedSessionEvent>? {
        guard let first = storage.first, first.seq <= cursor + 1, let last = storage.last, last.seq > cursor else { return nil }
        let start = Int(cursor + 1 - first.seq)
        return storage[start..<min(storage.count, start + limit)]
    }
}
