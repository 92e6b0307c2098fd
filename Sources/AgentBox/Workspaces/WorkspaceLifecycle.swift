import AgentBoxAPI

/// Where a workspace is in its life (sleeping → booting → running → stopping → sleeping) and what holds it awake.
///
/// A plain value with no tasks and no clock: ``WorkspaceRuntime`` owns one and does the work (booting the sandbox,
/// stopping it, the idle timer) around its transitions. Every change of phase goes through ``apply(_:)``, which
/// refuses a transition the phase does not allow, so the allowed paths are written once, here.
struct WorkspaceLifecycle {
    /// The lifecycle phase. `stopping` shows as `running` on the API until the sandbox is gone.
    enum Phase: Sendable, Equatable {
        case sleeping, booting, running, stopping

        /// The phase as the API shows it.
        var state: WorkspaceState {
            switch self {
            case .sleeping: .sleeping
            case .booting: .booting
            case .running, .stopping: .running
            }
        }
    }

    /// A change of phase.
    enum Transition: Sendable, Equatable, CaseIterable {
        /// sleeping → booting: the first activity arrived.
        case boot
        /// booting → running: the sandbox is up.
        case booted
        /// booting → sleeping: the sandbox could not start.
        case bootFailed
        /// running → stopping: asked to sleep, idle, destroyed, or the sandbox ended.
        case stop
        /// stopping → sleeping: the sandbox is gone and its processes drained.
        case stopped

        /// The phase this transition leaves from, and the one it leads to.
        var path: (from: Phase, to: Phase) {
            switch self {
            case .boot: (.sleeping, .booting)
            case .booted: (.booting, .running)
            case .bootFailed: (.booting, .sleeping)
            case .stop: (.running, .stopping)
            case .stopped: (.stopping, .sleeping)
            }
        }
    }

    private(set) var phase: Phase = .sleeping
    /// The activities holding the workspace awake.
    private(set) var activities: Set<UInt64> = []
    private var nextActivityID: UInt64 = 0
    /// Counts boots, so that a watcher of an old sandbox cannot stop a newer one.
    private(set) var generation = 0
    /// Set once the workspace is destroyed: it never boots again.
    private(set) var destroyed = false

    /// Whether `transition` may be applied in the current phase.
    func allows(_ transition: Transition) -> Bool {
        transition.path.from == phase
    }

    /// Moves to the phase `transition` leads to; returns false (and changes nothing) when the current phase does
    /// not allow it.
    @discardableResult
    mutating func apply(_ transition: Transition) -> Bool {
        guard allows(transition) else { return false }
        phase = transition.path.to
        switch transition {
        case .boot: generation += 1
        case .stopped: activities.removeAll()
        case .booted, .bootFailed, .stop: break
        }
        return true
    }

    /// Records a new activity and returns its number.
    mutating func beginActivity() -> UInt64 {
        defer { nextActivityID += 1 }
        activities.insert(nextActivityID)
        return nextActivityID
    }

    /// Forgets the activity `id`; false when it was not held (ended twice, or cleared by a stop).
    mutating func endActivity(_ id: UInt64) -> Bool {
        activities.remove(id) != nil
    }

    /// Marks the workspace destroyed.
    mutating func destroy() {
        destroyed = true
    }

    /// Whether the workspace runs with nothing holding it awake: the moment to arm the idle timer.
    var isIdle: Bool { phase == .running && activities.isEmpty }

    /// Whether the lifecycle holds the runtime in memory: any phase but sleeping, or an activity.
    var holdsRuntime: Bool { phase != .sleeping || !activities.isEmpty }
}
