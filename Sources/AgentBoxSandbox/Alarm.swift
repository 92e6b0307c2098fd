import Synchronization

/// A condition its owner raises, with a reason, and lowers; tasks wait for it to be raised.
///
/// A turn's watchdogs are child tasks that wait on alarms: one for a cancel request (then the grace period
/// runs), one for the transcript's store failing; a sandbox's end and its park are alarms too. Waiting is cancellable
/// and needs no task of its own, so a watchdog ends with the turn that spawned it.
public final class Alarm: Sendable {
    private struct State {
        var reason: String?
        var waiters: [UInt64: CheckedContinuation<String?, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Why it is raised; `nil` when it is not.
    public var reason: String? { state.withLock { $0.reason } }

    /// Raises it: every waiter returns `reason`, and so do later waits until it is lowered.
    public func raise(_ reason: String) {
        let waiting = state.withLock { state -> [CheckedContinuation<String?, Never>] in
            state.reason = reason
            let waiting = Array(state.waiters.values)
            state.waiters.removeAll()
            return waiting
        }
        for continuation in waiting { continuation.resume(returning: reason) }
    }

    /// Lowers it: later waits wait for the next raise.
    public func lower() {
        state.withLock { $0.reason = nil }
    }

    /// Returns the reason once it is raised (at once when it is), or `nil` when the waiting task is cancelled.
    public func wait() async -> String? {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
                let now: String?? = state.withLock { state in
                    if let reason = state.reason { return .some(reason) }
                    // Checked under the lock that the cancellation handler takes, so no waiter is left behind.
                    if Task.isCancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return .none
                }
                if case .some(let value) = now { continuation.resume(returning: value) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: nil)
        }
    }

    /// Returns the reason once it is raised, or `nil` after `timeout` (or when the waiting task is cancelled).
    public func wait(atMost timeout: Duration) async -> String? {
        await outcome(of: { await self.wait() }, within: timeout, otherwise: nil)
    }
}

/// What `operation` returns, or `fallback` once `limit` has passed first (the operation is then cancelled).
public func outcome<T: Sendable>(of operation: @escaping @Sendable () async -> T, within limit: Duration, otherwise fallback: T) async -> T {
    await withTaskGroup(of: T.self) { group in
        group.addTask { await operation() }
        group.addTask {
            try? await Task.sleep(for: limit)
            return fallback
        }
        let first = await group.next() ?? fallback
        group.cancelAll()
        return first
    }
}
