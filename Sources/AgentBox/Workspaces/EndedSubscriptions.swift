import Synchronization

/// Event subscriptions whose consumers stopped listening, on their way from the stream's termination (any thread)
/// to the runtime's actor, which removes them from its ``EventHub``.
///
/// One task per runtime drains them (``WorkspaceEventLog`` starts it with the first subscription and ends it on
/// destroy), woken by a signal that holds at most one wake-up: a burst of disconnects costs one hop to the actor.
final class EndedSubscriptions: Sendable {
    private let ids = Mutex<[UInt64]>([])
    private let wake: AsyncStream<Void>.Continuation
    /// Yields when ids are waiting; ends with ``finish()``.
    let wakeups: AsyncStream<Void>

    init() {
        (wakeups, wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    deinit { wake.finish() }

    /// The subscription `id` ended.
    func add(_ id: UInt64) {
        ids.withLock { $0.append(id) }
        wake.yield()
    }

    /// The ended subscriptions not yet removed.
    func take() -> [UInt64] {
        ids.withLock { ids in
            defer { ids.removeAll() }
            return ids
        }
    }

    /// Ends the wake-ups once the last is consumed: the drainer ends.
    func finish() {
        wake.finish()
    }
}
