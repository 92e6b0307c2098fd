import AgentBoxAPI
import AgentBoxSandbox
import Synchronization

/// How many workspaces this server keeps awake at once, and which of the awake ones nothing holds.
///
/// Each awake workspace costs the server file descriptors (its sandbox's control socket and egress listener, one per
/// shell), and the process's limit on them cannot be raised past its hard limit. Without a budget, the boot past that
/// limit fails half-way, wherever the descriptors ran out, as an internal error, and so may an accept or a store
/// write of a workspace already awake. So a boot takes a slot first:
/// - when one is free, it boots;
/// - else the workspace idle longest (awake with nothing holding it, waiting out its idle grace) is put to sleep early,
///   and the boot waits for a slot to come free (the first; another boot may have been first);
/// - else, while workspaces are on their way to sleep, it waits for one of them (bounded);
/// - else every awake workspace is in use (a shell, a process, a session, a request holds it), and the boot is
///   refused with `unavailable`, which says so.
///
/// A slot is held from the start of a boot until the workspace is asleep again (``WorkspaceRuntime`` takes and gives it
/// back around its lifecycle, and in its deinit should it go while holding one). Runtimes are told apart by identity,
/// not by key: an old runtime of a key (a deleted workspace, a lease lost) may still be stopping beside a new one.
final class AwakeBudget: Sendable {
    /// The most workspaces awake (or booting, or stopping) at once.
    let capacity: Int

    private struct IdleRuntime: Sendable {
        weak var runtime: WorkspaceRuntime?
    }

    private struct State: Sendable {
        var taken = 0
        /// The awake workspaces nothing holds, longest idle first.
        var idle = RecentlyUsed<ObjectIdentifier, IdleRuntime>(capacity: .max)
        /// Holders of slots on their way to sleep: their slots come free soon.
        var stopping: Set<ObjectIdentifier> = []
        /// Raised (and replaced) at every slot given back.
        var gave = Alarm()
    }

    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// The slots taken now.
    var taken: Int { state.withLock { $0.taken } }

    /// What an attempt to take a slot came to.
    struct Attempt {
        /// A slot was taken.
        var took: Bool
        /// Raised at the next slot given back after this attempt.
        var gave: Alarm
        /// The workspace idle longest, taken out of the idle ones: to put to sleep.
        var idle: WorkspaceRuntime?
        /// Whether slots are on their way back (their workspaces stop).
        var releasing: Bool
    }

    /// Takes a slot when one is free; else says what may free one.
    func attempt() -> Attempt {
        state.withLock { state in
            if state.taken < capacity {
                state.taken += 1
                return Attempt(took: true, gave: state.gave, idle: nil, releasing: false)
            }
            var idle: WorkspaceRuntime?
            while idle == nil, let (_, entry) = state.idle.removeOldest() { idle = entry.runtime }
            return Attempt(took: false, gave: state.gave, idle: idle, releasing: !state.stopping.isEmpty)
        }
    }

    /// Gives back the slot `runtime` took.
    func give(_ runtime: ObjectIdentifier) {
        let gave = state.withLock { state in
            precondition(state.taken > 0, "an awake slot given back twice")
            state.taken -= 1
            state.idle.remove(runtime)
            state.stopping.remove(runtime)
            defer { state.gave = Alarm() }
            return state.gave
        }
        gave.raise("a slot came free")
    }

    /// `runtime` is awake and nothing holds it: it is the first to sleep early when a boot needs its slot.
    func noteIdle(_ runtime: WorkspaceRuntime) {
        state.withLock { $0.idle.put(IdleRuntime(runtime: runtime), for: ObjectIdentifier(runtime)) }
    }

    /// `runtime` is held again: it is not to be put to sleep for another's boot.
    func noteBusy(_ runtime: ObjectIdentifier) {
        _ = state.withLock { $0.idle.remove(runtime) }
    }

    /// `runtime`, which holds a slot, is on its way to sleep.
    func noteStopping(_ runtime: ObjectIdentifier) {
        state.withLock { state in
            state.idle.remove(runtime)
            state.stopping.insert(runtime)
        }
    }
}
