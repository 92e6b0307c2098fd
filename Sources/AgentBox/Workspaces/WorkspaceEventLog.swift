import AgentBoxAPI
import AgentBoxStore
import Logging

/// A workspace's event stream: numbers its events (in blocks reserved in the store, so that numbers never repeat
/// across restarts), hands them to the subscribers through an ``EventHub``, and removes the subscribers that left.
///
/// Owned by a ``WorkspaceRuntime`` and touched only on its actor: its async methods run on the caller's actor
/// (`nonisolated(nonsending)`). It owns two background tasks, ended by ``finish()``: the reservation of numbers under
/// way, and the drainer of ended subscriptions.
final class WorkspaceEventLog {
    private var hub: EventHub
    private var nextSeq: Int64
    private var seqBound: Int64
    private static let seqBlock: Int64 = 1024
    /// A reservation of event numbers under way, started ahead of need by a boot (see ``reserveAheadIfLow()``).
    private var pendingReservation: Task<Int64, any Error>?
    /// Subscriptions whose consumers left, and the task that removes them (started with the first subscription).
    private let ended = EndedSubscriptions()
    private var drainer: Task<Void, Never>?
    private let store: any Store
    private let key: WorkspaceKey
    private let logger: Logger

    /// A log whose numbers continue above `seqBound`: numbers up to the stored bound may have been handed out
    /// before a crash. With `unusedFrom`, the numbers from there up to `seqBound` were reserved for this log and never
    /// handed out (a workspace just made with a first block of numbers): it starts there.
    init(
        seqBound: Int64, unusedFrom: Int64? = nil, replayCapacity: Int, subscriberCapacity: Int, store: any Store, key: WorkspaceKey,
        logger: Logger
    ) {
        self.hub = EventHub(replayCapacity: replayCapacity, subscriberCapacity: subscriberCapacity)
        self.nextSeq = min(unusedFrom ?? seqBound + 1, seqBound + 1)
        self.seqBound = seqBound
        self.store = store
        self.key = key
        self.logger = logger
    }

    /// How many subscribers are attached.
    var subscriberCount: Int { hub.subscriberCount }

    /// Numbers `event` and delivers it to the subscribers.
    nonisolated(nonsending) func publish(_ event: WorkspaceEvent) async {
        if nextSeq > seqBound { await extendSequence() }
        let envelope = WorkspaceEventEnvelope(seq: nextSeq, event: event)
        nextSeq += 1
        hub.publish(envelope)
    }

    /// When the numbers left are few (always, for a new workspace), starts the store write that reserves more now,
    /// so that it runs beside other work (a boot's sandbox launch) instead of after it.
    func reserveAheadIfLow() {
        if nextSeq + 16 > seqBound { reserveSequence() }
    }

    /// Reserves event numbers until `nextSeq` is covered. A reservation started ahead (by a boot) is used first; when
    /// more numbers were handed out since it started than it reserved, another block is reserved.
    private nonisolated(nonsending) func extendSequence() async {
        while nextSeq > seqBound {
            let task = reserveSequence()
            do {
                seqBound = max(seqBound, try await task.value)
            } catch {
                // The workspace's record is gone (destroyed concurrently) or the store failed: numbering continues
                // in memory so that live subscribers still see the event.
                logger.warning("could not reserve event numbers", metadata: ["error": "\(error)"])
                seqBound = max(seqBound, nextSeq + Self.seqBlock - 1)
            }
            if pendingReservation == task { pendingReservation = nil }
        }
    }

    /// Starts reserving event numbers (one store write) unless a reservation is under way; does not wait.
    @discardableResult
    private func reserveSequence() -> Task<Int64, any Error> {
        if let pendingReservation { return pendingReservation }
        let store = store
        let key = key
        let block = Self.seqBlock
        let task = Task { try await store.reserveEventSequence(key: key, count: block) }
        pendingReservation = task
        return task
    }

    /// The events from now on, preceded by the remembered ones numbered above `after`. When subscribers leave,
    /// `removeEnded` is called (from the drainer's task) for the owner to call ``removeEndedSubscriptions()`` on its
    /// actor.
    func subscribe(after: Int64?, removeEnded: @escaping @Sendable () async -> Void) -> AsyncStream<WorkspaceEventEnvelope> {
        let ended = ended
        let stream = hub.subscribe(after: after) { id in ended.add(id) }
        if drainer == nil {
            let wakeups = ended.wakeups
            drainer = Task {
                for await _ in wakeups { await removeEnded() }
            }
        }
        return stream
    }

    /// Removes the subscribers that left.
    func removeEndedSubscriptions() {
        for id in ended.take() { hub.unsubscribe(id) }
    }

    /// Ends every subscription (the workspace is gone, or the server is stopping).
    func finishSubscriptions() {
        hub.finishAll()
    }

    /// Ends the log's background tasks (the workspace is destroyed) and returns them, for the caller to await.
    func finish() -> (drainer: Task<Void, Never>?, reservation: Task<Int64, any Error>?) {
        ended.finish()
        defer { drainer = nil }
        return (drainer, pendingReservation)
    }
}
