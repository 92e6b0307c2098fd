@testable import AgentBox
import AgentBoxAPI
import Testing

/// The lifecycle as a value: its phases, the transitions each allows, and what holds a workspace awake.
@Suite("Workspace lifecycle state machine")
struct WorkspaceLifecycleStateTests {
    typealias Phase = WorkspaceLifecycle.Phase
    typealias Transition = WorkspaceLifecycle.Transition

    /// Drives a fresh lifecycle to `phase` along the allowed path.
    static func lifecycle(in phase: Phase) -> WorkspaceLifecycle {
        var lifecycle = WorkspaceLifecycle()
        let path: [Transition] =
            switch phase {
            case .sleeping: []
            case .booting: [.boot]
            case .running: [.boot, .booted]
            case .stopping: [.boot, .booted, .stop]
            }
        for step in path { lifecycle.apply(step) }
        #expect(lifecycle.phase == phase)
        return lifecycle
    }

    static let allowed: [Phase: Set<Transition>] = [
        .sleeping: [.boot], .booting: [.booted, .bootFailed], .running: [.stop], .stopping: [.stopped],
    ]

    @Test(arguments: [Phase.sleeping, .booting, .running, .stopping])
    func eachPhaseAllowsOnlyItsTransitions(phase: Phase) {
        for transition in Transition.allCases {
            var lifecycle = Self.lifecycle(in: phase)
            let expected = Self.allowed[phase]!.contains(transition)
            #expect(lifecycle.allows(transition) == expected, "\(transition) from \(phase)")
            let applied = lifecycle.apply(transition)
            #expect(applied == expected, "\(transition) from \(phase)")
            #expect(lifecycle.phase == (expected ? transition.path.to : phase), "a refused transition changes nothing")
        }
    }

    @Test func aFullCycleReturnsToSleepAndCountsBoots() {
        var lifecycle = WorkspaceLifecycle()
        #expect(lifecycle.generation == 0)
        for step: Transition in [.boot, .booted, .stop, .stopped, .boot, .bootFailed, .boot] {
            let applied = lifecycle.apply(step)
            #expect(applied, "\(step)")
        }
        #expect(lifecycle.phase == .booting)
        #expect(lifecycle.generation == 3, "every boot, failed or not, is a new generation")
    }

    @Test func theAPIShowsStoppingAsRunning() {
        #expect(Phase.sleeping.state == .sleeping)
        #expect(Phase.booting.state == .booting)
        #expect(Phase.running.state == .running)
        #expect(Phase.stopping.state == .running)
    }

    @Test func activitiesHoldTheWorkspaceAndAStopClearsThem() {
        var lifecycle = Self.lifecycle(in: .running)
        #expect(lifecycle.isIdle)
        let first = lifecycle.beginActivity()
        let second = lifecycle.beginActivity()
        #expect(first != second)
        #expect(!lifecycle.isIdle)
        let ended = lifecycle.endActivity(first)
        let endedTwice = lifecycle.endActivity(first)
        #expect(ended)
        #expect(!endedTwice, "an activity ends once")
        #expect(!lifecycle.isIdle)
        lifecycle.apply(.stop)
        #expect(!lifecycle.isIdle, "a stopping workspace is not idle")
        lifecycle.apply(.stopped)
        #expect(lifecycle.activities.isEmpty)
        let endedAfterStop = lifecycle.endActivity(second)
        #expect(!endedAfterStop, "a stop ended it")
        #expect(!lifecycle.holdsRuntime)
    }

    @Test(arguments: [Phase.sleeping, .booting, .running, .stopping])
    func whatHoldsTheRuntime(phase: Phase) {
        var lifecycle = Self.lifecycle(in: phase)
        #expect(lifecycle.holdsRuntime == (phase != .sleeping))
        _ = lifecycle.beginActivity()
        #expect(lifecycle.holdsRuntime, "an activity holds it in any phase")
    }

    @Test func destroyedIsForever() {
        var lifecycle = Self.lifecycle(in: .running)
        lifecycle.destroy()
        #expect(lifecycle.destroyed)
        lifecycle.apply(.stop)
        lifecycle.apply(.stopped)
        #expect(lifecycle.phase == .sleeping)
        #expect(lifecycle.destroyed)
    }
}

/// The owned background tasks: each removes itself when done; the owner cancels and awaits the rest.
@Suite("Owned tasks")
struct OwnedTasksTests {
    @MainActor @Test func cancelAllEndsEveryTask() async {
        let tasks = OwnedTasks()
        for _ in 0..<3 {
            tasks.start { _ in
                try? await Task.sleep(for: .seconds(60))
            }
        }
        #expect(tasks.count == 3)
        let clock = ContinuousClock()
        let started = clock.now
        for task in tasks.cancelAll() { await task.value }
        #expect(clock.now - started < .seconds(30))
        #expect(tasks.count == 0)
    }

    @MainActor @Test func aFinishedTaskIsForgotten() async {
        let tasks = OwnedTasks()
        let (ended, continuation) = AsyncStream<UInt64>.makeStream()
        let task = tasks.start { id in continuation.yield(id) }
        await task.value
        var iterator = ended.makeAsyncIterator()
        let id = await iterator.next()
        tasks.finished(id!)
        #expect(tasks.count == 0)
        #expect(tasks.running.isEmpty)
    }
}
