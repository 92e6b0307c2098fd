import Synchronization

/// The open file watches of one workspace, by number: how to stop each. Bounded by ``capacity``.
///
/// Watches are opened and ended without the workspace's actor (a watch does not wait for a busy workspace, and one
/// ends from its stream's termination), so this part keeps its own lock.
final class FileWatches: Sendable {
    /// The most watches one workspace may have open at once.
    let capacity: Int
    private let table = Mutex<(next: UInt64, stops: [UInt64: @Sendable () -> Void])>((0, [:]))

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Reserves a number for a watch about to start; nil when ``capacity`` watches are open.
    func reserve() -> UInt64? {
        table.withLock { table in
            guard table.stops.count < capacity else { return nil }
            table.next += 1
            table.stops[table.next] = {}  // reserved until the watch runs
            return table.next
        }
    }

    /// Sets how to stop the watch `id`, unless it ended meanwhile.
    func started(_ id: UInt64, stop: @escaping @Sendable () -> Void) {
        table.withLock { table in
            if table.stops[id] != nil { table.stops[id] = stop }
        }
    }

    /// Forgets the watch `id` (it ended, or failed to start).
    func remove(_ id: UInt64) {
        _ = table.withLock { $0.stops.removeValue(forKey: id) }
    }

    /// Whether any watch is open or starting.
    var isEmpty: Bool { table.withLock { $0.stops.isEmpty } }

    /// Ends every open watch (each removes itself as its stream ends).
    func stopAll() {
        for stop in table.withLock({ Array($0.stops.values) }) { stop() }
    }
}
