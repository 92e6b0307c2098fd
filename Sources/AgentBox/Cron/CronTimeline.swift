import AgentBoxAPI
import Foundation
import HeapModule
import Synchronization

/// One job, named across workspaces.
struct CronJobRef: Hashable, Sendable, Comparable {
    var key: WorkspaceKey
    var id: String

    static func < (lhs: CronJobRef, rhs: CronJobRef) -> Bool {
        (lhs.key.rawValue, lhs.id) < (rhs.key.rawValue, rhs.id)
    }
}

/// A run the scheduler is to execute: a slot claimed in the store, or a run asked for by hand.
struct CronLaunch: Sendable {
    var ref: CronJobRef
    var run: CronRun
}

/// What the cron scheduler holds in memory: when each job's next slot comes (one heap over every workspace, so one
/// timer serves them all), which jobs are running or have a run waiting, and the runs asked for by hand that wait
/// for the scheduler to take them.
///
/// The store is the truth (a job's `nextRunAt`, claimed slot by slot); this is the index that says when to look.
/// An entry whose time no longer matches ``scheduled`` is stale and skipped when it comes up, so rescheduling is
/// O(log n) with no search.
final class CronTimeline: Sendable {
    private struct Entry: Comparable {
        var due: Date
        var ref: CronJobRef
        static func < (lhs: Entry, rhs: Entry) -> Bool { (lhs.due, lhs.ref) < (rhs.due, rhs.ref) }
    }

    /// Whether a new run of a job may start now.
    enum Admission: Equatable {
        /// Start it.
        case run
        /// Its previous run is running: it waits (overlap `queue`).
        case queue
        /// Its previous run is running: it does not run (overlap `skip`, or the one waiting place is taken).
        case skip
    }

    private struct State {
        var heap = Heap<Entry>()
        var scheduled: [CronJobRef: Date] = [:]
        var running: [CronJobRef: Int] = [:]
        var queued: [CronJobRef: CronLaunch] = [:]
        var launches: [CronLaunch] = []
        /// The scheduler's loop, waiting for the next slot or a change.
        var waiter: CheckedContinuation<Void, Never>?
        /// A change came while the loop was not waiting.
        var changed = false
    }

    private let state = Mutex(State())

    init() {}

    /// The number of jobs waiting for a slot.
    var scheduledCount: Int { state.withLock { $0.scheduled.count } }

    /// Sets when `ref`'s next slot comes (`nil`: it waits for none) and wakes the loop if that is sooner.
    func schedule(_ ref: CronJobRef, at due: Date?) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.scheduled[ref] != due else { return nil }
            let earliest = state.heap.min?.due
            state.scheduled[ref] = due
            guard let due else { return nil }
            state.heap.insert(Entry(due: due, ref: ref))
            // Stale entries are dropped as they surface; rebuild when they outnumber the live ones, so that a job
            // rescheduled again and again cannot grow the heap without bound.
            if state.heap.count > 2 * state.scheduled.count + 64 {
                state.heap = Heap(state.scheduled.map { Entry(due: $0.value, ref: $0.key) })
            }
            guard earliest.map({ due < $0 }) ?? true else { return nil }
            return Self.takeWaiter(&state)
        }
        waiter?.resume()
    }

    /// Forgets every job of workspace `key` (it was destroyed).
    func forget(workspace key: WorkspaceKey) {
        state.withLock { state in
            for ref in state.scheduled.keys where ref.key == key { state.scheduled[ref] = nil }
            for ref in state.queued.keys where ref.key == key { state.queued[ref] = nil }
        }
    }

    /// The earliest slot, stale entries dropped on the way.
    var nextDue: Date? {
        state.withLock { state in
            while let top = state.heap.min, state.scheduled[top.ref] != top.due { state.heap.removeMin() }
            return state.heap.min?.due
        }
    }

    /// Takes every slot due at or before `now`: each job with its slot, which it no longer waits for here (the
    /// caller claims it and schedules the job's next slot).
    func takeDue(now: Date) -> [(ref: CronJobRef, slot: Date)] {
        state.withLock { state in
            var due: [(CronJobRef, Date)] = []
            while let top = state.heap.min, top.due <= now {
                state.heap.removeMin()
                guard state.scheduled[top.ref] == top.due else { continue }
                state.scheduled[top.ref] = nil
                due.append((top.ref, top.due))
            }
            return due
        }
    }

    /// Hands a run asked for by hand to the scheduler's loop.
    func launch(_ launch: CronLaunch) {
        let waiter = state.withLock { state in
            state.launches.append(launch)
            return Self.takeWaiter(&state)
        }
        waiter?.resume()
    }

    /// The runs handed over since the last call.
    func takeLaunches() -> [CronLaunch] {
        state.withLock { state in
            defer { state.launches = [] }
            return state.launches
        }
    }

    /// Decides whether a new run of `ref` starts, waits or is skipped, given its overlap policy: a run that starts
    /// is counted as running, and one that waits takes the job's one waiting place. `makeLaunch` builds the run
    /// for the decision.
    func admit(_ ref: CronJobRef, overlap: CronOverlap, _ makeLaunch: (Admission) -> CronLaunch) -> (Admission, CronLaunch) {
        state.withLock { state in
            let busy = state.running[ref, default: 0] > 0
            let admission: Admission
            switch (busy, overlap) {
            case (false, _), (true, .allow):
                state.running[ref, default: 0] += 1
                admission = .run
            case (true, .skip): admission = .skip
            case (true, .queue): admission = state.queued[ref] == nil ? .queue : .skip
            }
            let launch = makeLaunch(admission)
            if admission == .queue { state.queued[ref] = launch }
            return (admission, launch)
        }
    }

    /// Takes back an admission whose claim failed.
    func withdraw(_ ref: CronJobRef, _ admission: Admission, runId: String) {
        state.withLock { state in
            switch admission {
            case .run: Self.decrement(&state, ref)
            case .queue: if state.queued[ref]?.run.runId == runId { state.queued[ref] = nil }
            case .skip: break
            }
        }
    }

    /// Ends a run of `ref`; the run that waited for it, if any, is returned, counted as running.
    func finish(_ ref: CronJobRef) -> CronLaunch? {
        state.withLock { state in
            if let next = state.queued.removeValue(forKey: ref) { return next }
            Self.decrement(&state, ref)
            return nil
        }
    }

    /// Whether a run of `ref` is running.
    func isRunning(_ ref: CronJobRef) -> Bool {
        state.withLock { $0.running[ref, default: 0] > 0 }
    }

    /// Waits until `deadline` or until the timeline changes (a sooner slot, a launch), whichever comes first, or
    /// until the task is cancelled. One caller at a time: the scheduler's loop.
    func wait(until deadline: Date?) async {
        let timer = deadline.map { deadline in
            Task { [weak self] in
                let delay = deadline.timeIntervalSinceNow
                if delay > 0 {
                    // At most five minutes at a time: slots are wall-clock times, and the wall clock may be set.
                    do { try await Task.sleep(for: .milliseconds(Int64(min(delay, 300) * 1000) + 1)) } catch { return }
                }
                self?.poke()
            }
        }
        defer { timer?.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.changed || Task.isCancelled {
                        state.changed = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            poke()
        }
    }

    /// Wakes the waiting loop (or tells it, when it is not waiting, that something changed).
    func poke() {
        let waiter = state.withLock { Self.takeWaiter(&$0) }
        waiter?.resume()
    }

    private static func takeWaiter(_ state: inout State) -> CheckedContinuation<Void, Never>? {
        guard let waiter = state.waiter else {
            state.changed = true
            return nil
        }
        state.waiter = nil
        return waiter
    }

    private static func decrement(_ state: inout State, _ ref: CronJobRef) {
        let count = state.running[ref, default: 0] - 1
        state.running[ref] = count > 0 ? count : nil
    }
}
