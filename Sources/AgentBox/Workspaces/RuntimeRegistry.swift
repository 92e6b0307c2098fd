import AgentBoxAPI
import Synchronization

/// The loaded ``WorkspaceRuntime``s, one per workspace, held in memory only while they are in use.
///
/// A runtime is *resident* (held strongly here) while it is in use (``WorkspaceRuntime/isInUse``: awake, booting,
/// stopping, an activity, an event subscriber, a file watch) and for ``retention`` after that, so that a client that
/// reconnects a moment later still gets the recent events replayed. Then ``reap()`` lets it go: the registry keeps
/// only a weak reference, the runtime is freed once the last request holding it ends, and the next action on the
/// workspace loads a new one from the store. A sleeping workspace so costs the server nothing.
///
/// The weak reference keeps one actor per workspace without a lease protocol: while anyone still holds a runtime, a
/// lookup finds that same runtime (which, used again, becomes resident again); only once it is gone can a new one be
/// loaded. A freed runtime forgets what a restart forgets: its ring of recent events (workspace events are not
/// persisted) and its memory of exited processes. Its event numbers continue above the stored bound.
final class RuntimeRegistry: Sendable {
    private struct Entry {
        weak var runtime: WorkspaceRuntime?
        /// Set while the runtime is resident.
        var resident: WorkspaceRuntime?
        /// When the runtime stopped being in use, while it is resident and unused.
        var unusedSince: ContinuousClock.Instant?
        /// When the entry was put in `unused`, while it waits there.
        var queuedAt: ContinuousClock.Instant?
    }

    private struct Table {
        var entries: [WorkspaceKey: Entry] = [:]
        /// The table's size after the last sweep of freed entries: the next sweep runs when it has doubled.
        var sweptCount = 0
        /// Keys of resident runtimes that stopped being used, in that order (so their deadlines are in order too).
        var unused: [WorkspaceKey] = []
        var unusedHead = 0
    }

    /// How long a runtime stays resident after its last use.
    let retention: Duration
    private let table = Mutex(Table())
    /// Wakes ``reap()`` when the first unused runtime is queued.
    private let signal: AsyncStream<Void>.Continuation
    private let signals: AsyncStream<Void>

    init(retention: Duration) {
        self.retention = retention
        (signals, signal) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    deinit { signal.finish() }

    /// The runtime of `key` if one is loaded (resident, or still held by a request).
    func runtime(_ key: WorkspaceKey) -> WorkspaceRuntime? {
        table.withLock { $0.entries[key]?.runtime }
    }

    /// Stores `candidate` as the runtime of its key, unless a live runtime of the same workspace (`id`) is there: then
    /// returns that one. Two loads racing so end with one actor. A runtime loaded for a glance (a snapshot) and not
    /// used goes with the request that loaded it.
    func insert(_ candidate: WorkspaceRuntime) -> WorkspaceRuntime {
        table.withLock { table in
            if let existing = table.entries[candidate.key]?.runtime, existing.id == candidate.id { return existing }
            table.entries[candidate.key] = Entry(runtime: candidate, resident: candidate.isInUse ? candidate : nil)
            if table.entries.count >= max(1024, 2 * table.sweptCount) {
                table.entries = table.entries.filter { $0.value.runtime != nil }
                table.sweptCount = table.entries.count
            }
            return candidate
        }
    }

    /// Keeps `runtime`, which nothing uses yet, resident for ``retention`` (a workspace just made: its first action
    /// is likely to follow, and finds it loaded).
    func retain(_ runtime: WorkspaceRuntime) {
        let first = table.withLock { table -> Bool in
            guard var entry = table.entries[runtime.key], entry.runtime === runtime, entry.resident == nil else { return false }
            defer { table.entries[runtime.key] = entry }
            entry.resident = runtime
            return Self.startRetention(of: &entry, key: runtime.key, in: &table)
        }
        if first { signal.yield() }
    }

    /// Marks the resident `entry` unused from now and queues it for ``reap()`` unless it is queued already; true when
    /// it is the only one queued (the reaper is then woken).
    private static func startRetention(of entry: inout Entry, key: WorkspaceKey, in table: inout Table) -> Bool {
        let now = ContinuousClock.now
        entry.unusedSince = now
        guard entry.queuedAt == nil else { return false }
        entry.queuedAt = now
        table.unused.append(key)
        return table.unused.count - table.unusedHead == 1
    }

    /// Removes `runtime` (its workspace is destroyed); a later load of its key makes a new one.
    func remove(_ runtime: WorkspaceRuntime) {
        table.withLock { table in
            if table.entries[runtime.key]?.runtime === runtime { table.entries[runtime.key] = nil }
        }
    }

    /// Makes `runtime` resident when it is in use, or starts its retention when it is not. The runtime calls this
    /// after every change of what holds it; the flag is read under this lock, so the last call wins with the state
    /// as it is then.
    func update(_ runtime: WorkspaceRuntime) {
        let first = table.withLock { table -> Bool in
            guard var entry = table.entries[runtime.key], entry.runtime === runtime else { return false }
            defer { table.entries[runtime.key] = entry }
            if runtime.isInUse {
                entry.resident = runtime
                entry.unusedSince = nil
                return false
            }
            guard entry.resident != nil, entry.unusedSince == nil else { return false }
            return Self.startRetention(of: &entry, key: runtime.key, in: &table)
        }
        if first { signal.yield() }
    }

    /// Lets go of the runtimes unused for ``retention``; returns when the next one is due, or nil when none waits.
    func release(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        releaseCounting(now: now).due
    }

    private func releaseCounting(now: ContinuousClock.Instant) -> (due: ContinuousClock.Instant?, count: Int) {
        // Freed after the lock: a runtime's deinit must not run under it.
        var released: [WorkspaceRuntime] = []
        defer { released.removeAll() }
        let due = table.withLock { table -> ContinuousClock.Instant? in
            // The queue is in `queuedAt` order. An entry used and left unused again after it was queued goes to the
            // back with its new time, so the head's deadline is always the earliest.
            while table.unusedHead < table.unused.count {
                let key = table.unused[table.unusedHead]
                table.unusedHead += 1
                guard var entry = table.entries[key], let queuedAt = entry.queuedAt else { continue }
                guard let since = entry.unusedSince else {
                    entry.queuedAt = nil  // used again
                    table.entries[key] = entry
                    continue
                }
                if since > queuedAt {
                    entry.queuedAt = since
                    table.entries[key] = entry
                    table.unused.append(key)
                    continue
                }
                if since + retention > now {
                    table.unusedHead -= 1
                    if table.unusedHead >= 1024, table.unusedHead * 2 >= table.unused.count {
                        table.unused.removeFirst(table.unusedHead)
                        table.unusedHead = 0
                    }
                    return since + retention
                }
                if let resident = entry.resident { released.append(resident) }
                entry.resident = nil
                entry.unusedSince = nil
                entry.queuedAt = nil
                table.entries[key] = entry
            }
            table.unused.removeAll(keepingCapacity: table.unused.count < 4096)
            table.unusedHead = 0
            return nil
        }
        return (due, released.count)
    }

    /// Lets go of unused runtimes as their retention ends, until cancelled. Run by ``WorkspaceManagerService``.
    /// `released` is told after each round that let some go.
    func reap(released: (Int) -> Void = { _ in }) async {
        var wakeups = signals.makeAsyncIterator()
        while !Task.isCancelled {
            let (due, count) = releaseCounting(now: .now)
            if count > 0 { released(count) }
            if let due {
                do { try await Task.sleep(until: due, clock: .continuous) } catch { return }
            } else if await wakeups.next() == nil {
                return
            }
        }
    }

    /// Every loaded runtime.
    var all: [WorkspaceRuntime] {
        table.withLock { $0.entries.values.compactMap(\.runtime) }
    }

    /// How many runtimes are resident, and how many are loaded at all (for tests and metrics).
    var counts: (resident: Int, loaded: Int) {
        table.withLock { table in
            (table.entries.values.count { $0.resident != nil }, table.entries.values.count { $0.runtime != nil })
        }
    }
}
