import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import Foundation
import Logging
import Synchronization

/// A session's transcript: numbers its events, writes them to the store and only then hands them out.
///
/// Events are written in groups (whatever accumulated while the previous write ran), and an event is published
/// (to the workspace's stream and to this session's readers) only once it is in the store: an event anyone saw is
/// on disk. When writing falls behind by ``maxUnwritten`` events, ``append(_:_:_:)`` waits for the store, which
/// holds back the agent's output (its reader waits).
///
/// When the store refuses a group ``attempts`` times, the group stays queued, unpublished, and ``failure`` is
/// raised; the next event (or ``checkWritable()``) tries again, and a write that succeeds lowers it. The session
/// watches ``failure`` to end its turn and refuses prompts while it is raised.
///
/// The write loop is a task that outlives the call that queued the first event; this writer owns it, and
/// ``flush()`` awaits it (it is not cancelled: what is queued is written).
actor TranscriptWriter {
    nonisolated let sessionId: String
    private let store: any Store
    private let logger: Logger
    /// Hands out stored events (to the workspace's event stream).
    private let publish: @Sendable ([SessionEvent]) async -> Void

    /// Raised while stored events wait for a store that refuses them; its reason is the store's error.
    nonisolated let failure = Alarm()

    /// The seq the next event gets.
    private(set) var nextSeq: Int64
    /// The last stored event's seq.
    private(set) var durableSeq: Int64
    private var unwritten: [SessionEvent] = []
    private var writing: Task<Void, Never>?
    private var durableWaiters: [(seq: Int64, continuation: CheckedContinuation<Bool, Never>, id: UInt64)] = []
    private var nextWaiterID: UInt64 = 0

    /// The latest durable events, encoded, which readers take from here (or from the store when they are further
    /// behind): one copy for every reader, so memory does not grow with their number or their slowness.
    private var recent: RecentEvents
    /// Readers waiting for the next stored events: behind a lock, so that a cancelled reader leaves at once.
    private nonisolated let readers = Mutex<(waiting: [UInt64: CheckedContinuation<Void, Never>], next: UInt64)>(([:], 0))
    /// The session is gone: readers end.
    private var ended = false
    /// The server is stopping: readers end once they have caught up.
    private var draining = false

    /// Events recorded but not yet written beyond which recording waits for the store (or, while the store
    /// fails, beyond which events are dropped rather than held).
    static let maxUnwritten = 4096
    /// How many times a group is offered to the store before ``failure`` is raised.
    static let attempts = 3

    init(
        sessionId: String, lastSeq: Int64, store: any Store, recentCapacity: Int, recentByteCapacity: Int, logger: Logger,
        publish: @escaping @Sendable ([SessionEvent]) async -> Void
    ) {
        self.sessionId = sessionId
        self.store = store
        self.logger = logger
        self.publish = publish
        nextSeq = lastSeq + 1
        durableSeq = lastSeq
        recent = RecentEvents(capacity: recentCapacity, byteCapacity: recentByteCapacity)
    }

    /// The seq of the last event queued.
    var lastSeq: Int64 { nextSeq - 1 }

    // MARK: Writing

    /// Numbers an event and queues it for the store; returns its seq. Waits only when the store falls far behind.
    /// Returns `nil` when the event was dropped: the store fails and ``maxUnwritten`` events already wait.
    @discardableResult
    func append(_ sender: SessionEventSender, _ type: String, _ payload: JSONValue) async -> Int64? {
        if failure.reason != nil, unwritten.count >= Self.maxUnwritten {
            logger.error("dropped a session event: the store refuses events and the queue is full", metadata: ["event.type": "\(type)"])
            return nil
        }
        let seq = nextSeq
        nextSeq += 1
        unwritten.append(SessionEvent(seq: seq, at: Date(), sender: sender, type: type, payload: payload))
        startWriting()
        if unwritten.count >= Self.maxUnwritten { _ = await waitUntilDurable(seq) }
        return seq
    }

    /// Returns `true` once the events up to `seq` are stored, `false` as soon as the store refuses them (at once
    /// when it refused them and no write is under way).
    @discardableResult
    func waitUntilDurable(_ seq: Int64) async -> Bool {
        guard seq > durableSeq else { return true }
        guard failure.reason == nil || writing != nil else { return false }
        let id = nextWaiterID
        nextWaiterID += 1
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in durableWaiters.append((seq, continuation, id)) }
    }

    /// ``waitUntilDurable(_:)`` for at most `limit`, and no longer than the caller's task is not cancelled: `false`
    /// when either ends the wait first (a reader that answers with what is stored rather than wait for a stalled store).
    func waitUntilDurable(_ seq: Int64, atMost limit: Duration) async -> Bool {
        guard seq > durableSeq else { return true }
        guard failure.reason == nil || writing != nil else { return false }
        let id = nextWaiterID
        nextWaiterID += 1
        let timer = Task { [weak self] in
            try? await Task.sleep(for: limit)
            await self?.giveUp(waiter: id)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                // Cancelled before it was registered: the handler's give-up may already have run, and found nothing.
                if Task.isCancelled { return continuation.resume(returning: false) }
                durableWaiters.append((seq, continuation, id))
            }
        } onCancel: {
            Task { await self.giveUp(waiter: id) }
        }
    }

    /// Ends the wait of waiter `id` with `false`, if it still waits.
    private func giveUp(waiter id: UInt64) {
        guard let index = durableWaiters.firstIndex(where: { $0.id == id }) else { return }
        durableWaiters.remove(at: index).continuation.resume(returning: false)
    }

    /// Throws `unavailable` while events wait for a store that refuses them, after offering them once more.
    func checkWritable() async throws {
        guard failure.reason != nil else { return }
        await flush()
        guard failure.reason == nil else {
            throw AgentBoxError(.unavailable, "session '\(sessionId)' cannot store its events; it takes no prompts until the store accepts them")
        }
    }

    /// Offers what is queued to the store (again, when it refused it) and returns once the write loop has nothing
    /// left to do: everything queued is stored, or the store refused it.
    func flush() async {
        startWriting()
        while let writing { await writing.value }
    }

    private func startWriting() {
        guard writing == nil, !unwritten.isEmpty else { return }
        writing = Task { await self.writeLoop() }
    }

    /// Writes what accumulated, in one transaction, then hands it out; repeats while more came meanwhile.
    private func writeLoop() async {
        while !unwritten.isEmpty {
            let batch = unwritten
            unwritten.removeAll(keepingCapacity: true)
            var encoded: [EncodedSessionEvent] = []
            encoded.reserveCapacity(batch.count)
            let records = batch.map { event in
                let payload = event.payload.jsonBytes
                // As a reader of the store will see it: the time goes through the store as seconds since 1970.
                var stored = event
                stored.at = Date(timeIntervalSince1970: event.at.timeIntervalSince1970)
                encoded.append(EncodedSessionEvent(stored, payloadJSON: payload))
                return SessionEventRecord(
                    sessionId: sessionId, seq: event.seq, at: event.at, kind: event.type,
                    payload: String(decoding: payload, as: UTF8.self), sender: event.sender.rawValue)
            }
            if let refusal = await write(records) {
                // Unpublished and kept, in order, ahead of what came meanwhile: the next attempt writes them all.
                unwritten.insert(contentsOf: batch, at: 0)
                fail(refusal)
                break
            }
            failure.lower()
            durableSeq = batch[batch.count - 1].seq
            recent.append(contentsOf: encoded)
            wakeReaders()
            var ready: [CheckedContinuation<Bool, Never>] = []
            durableWaiters.removeAll { waiter in
                guard waiter.seq <= durableSeq else { return false }
                ready.append(waiter.continuation)
                return true
            }
            for continuation in ready { continuation.resume(returning: true) }
            await publish(batch)
        }
        writing = nil
    }

    /// Offers `records` to the store up to ``attempts`` times; returns the last error when it refused them all.
    private func write(_ records: [SessionEventRecord]) async -> String? {
        var attempt = 0
        while true {
            do {
                try await store.appendSessionEvents(records)
                return nil
            } catch {
                attempt += 1
                logger.error("could not store session events", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                if attempt >= Self.attempts { return "\(error)" }
                try? await Task.sleep(for: .milliseconds(50 * attempt))
            }
        }
    }

    private func fail(_ reason: String) {
        failure.raise(reason)
        let waiting = durableWaiters
        durableWaiters.removeAll()
        for waiter in waiting { waiter.continuation.resume(returning: false) }
    }

    // MARK: Reading

    /// What a reader gets for the events after its cursor.
    enum Pull {
        /// The next stored events, in order, from `cursor + 1` on.
        case events([EncodedSessionEvent])
        /// They are no longer (or not yet) held in memory: read the store.
        case behind
        /// The session is gone, or the server is stopping.
        case ended
    }

    /// Up to `limit` stored events after `cursor`; waits for the next write when there are none yet. Cancellable.
    func events(after cursor: Int64, limit: Int) async -> Pull {
        while true {
            if ended { return .ended }
            if durableSeq > cursor {
                guard let slice = recent.events(after: cursor, limit: limit) else { return .behind }
                return .events(Array(slice))
            }
            if draining || Task.isCancelled { return .ended }
            let reader = readers.withLock { readers in
                defer { readers.next += 1 }
                return readers.next
            }
            // Registered in this actor turn, so a write that completes later wakes it.
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let cancelled = readers.withLock { readers in
                        if Task.isCancelled { return true }
                        readers.waiting[reader] = continuation
                        return false
                    }
                    if cancelled { continuation.resume() }
                }
            } onCancel: {
                readers.withLock { $0.waiting.removeValue(forKey: reader) }?.resume()
            }
        }
    }

    /// An idle session without readers keeps no events in memory (readers catch up from the store): a server with
    /// many old sessions holds little for each.
    func forgetRecentUnlessRead() {
        if readers.withLock({ $0.waiting.isEmpty }) { recent.removeAll() }
    }

    /// Ends the readers at once (the session is gone); they do not come back.
    func end() {
        ended = true
        wakeReaders()
    }

    /// Ends the readers once they have caught up (the server is draining its connections).
    func drain() {
        draining = true
        wakeReaders()
    }

    private func wakeReaders() {
        let waiting = readers.withLock { readers in
            defer { readers.waiting.removeAll() }
            return Array(readers.waiting.values)
        }
        for continuation in waiting { continuation.resume() }
    }
}
