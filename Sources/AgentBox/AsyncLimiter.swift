import Synchronization

/// At most `limit` holders at a time; the rest wait in order (an async semaphore, first come first served).
final class AsyncLimiter: Sendable {
    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
        var head = 0
    }

    private let state: Mutex<State>

    init(limit: Int) { state = Mutex(State(free: max(limit, 1))) }

    /// Waits for a place. Not cancellable: what waits (a cron run that was claimed, a connection accepted) must get
    /// its place to end properly.
    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.free > 0 {
                    state.free -= 1
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Gives a place back, to the longest waiter if any.
    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.head < state.waiting.count else {
                state.free += 1
                return nil
            }
            let next = state.waiting[state.head]
            state.head += 1
            if state.head == state.waiting.count {
                state.waiting = []
                state.head = 0
            }
            return next
        }
        next?.resume()
    }
}
