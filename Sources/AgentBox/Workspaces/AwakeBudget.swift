import AgentBoxAPI
import AgentBoxSandbox
import Synchronization

/// How many workspaces this server keeps awake at once, and which of the awake ones nothing holds.
///
/// Each awake workspace costs the server file descriptors (its sandbox's control socket, egress listener and output
/// pipe, one per shell), and the process's limit on them cannot be raised past its hard limit. Without a budget, the
/// boot past that limit fails half-way, wherever the descriptors ran out, as an internal error, and so may an accept
/// or a store write of a workspace already awake. So a boot takes a slot first:
/// - when one is free, it boots;
/// - else the workspace idle longest (awake with nothing holding it, waiting out its idle grace) is put to sleep early,
///   and its slot goes to the boot;
/// - else every awake workspace is in use (a shell, a process, a session, a request holds it), and the boot is
///   refused with `unavailable`, which says so.
///
/// A slot is held from the start of a boot until the workspace is asleep again (``WorkspaceRuntime`` takes and gives it
/// back around its lifecycle).
final class AwakeBudget: Sendable {
    /// The most workspaces awake (or booting, or stopping) at once.
    let capacity: Int

    private struct IdleRuntime: Sendable {
        weak var runtime: WorkspaceRuntime?
    }

    private struct State: Sendable {
        var taken = 0
        /// The awake workspaces nothing holds, longest idle first.
        var idle = RecentlyUsed<WorkspaceKey, IdleRuntime>(capacity: .max)
    }

    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// The slots taken now.
    var taken: Int { state.withLock { $0.taken } }

    /// Takes a slot when one is free.
    func take() -> Bool {
        state.withLock { state in
            guard state.taken < capacity else { return false }
            state.taken += 1
            return true
        }
    }

    /// Gives back a slot taken with ``take()``.
    func give(_ key: WorkspaceKey) {
        state.withLock { state in
            precondition(state.taken > 0, "an awake slot given back twice")
            state.taken -= 1
            state.idle.remove(key)
        }
    }

    /// `runtime` is awake and nothing holds it: it is the first to sleep early when a boot needs its slot.
    func noteIdle(_ runtime: WorkspaceRuntime) {
        state.withLock { $0.idle.put(IdleRuntime(runtime: runtime), for: runtime.key) }
    }

    /// The workspace `key` is held again (or is stopping): it is not to be put to sleep for another's boot.
    func noteBusy(_ key: WorkspaceKey) {
        _ = state.withLock { $0.idle.remove(key) }
    }

    /// Takes the workspace idle longest out of the idle ones.
    func takeLongestIdle() -> WorkspaceRuntime? {
        state.withLock { state in
            while let (_, idle) = state.idle.removeOldest() {
                if let runtime = idle.runtime { return runtime }
            }
            return nil
        }
    }
}
