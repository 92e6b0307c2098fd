@testable import AgentBox
import AgentBoxAPI
import Foundation
import Synchronization
import Testing

@Suite("The budget of awake workspaces", .timeLimit(.minutes(1)))
struct AwakeBudgetTests {
    @Test func aWakePastTheBudgetSleepsTheLongestIdleOrIsRefusedWhenAllAreInUse() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, maxAwake: 2)
            for name in ["a", "b", "c"] { _ = try await manager.create(key: key(name)) }
            let a = try await manager.runtime(for: key("a"))
            let b = try await manager.runtime(for: key("b"))
            let c = try await manager.runtime(for: key("c"))

            // a then b awake and idle: c's wake puts a (idle longest) to sleep, not b.
            try await a.wake()
            try await b.wake()
            try await c.wake()
            #expect(a.snapshot.state == .sleeping)
            #expect(b.snapshot.state == .running)
            #expect(c.snapshot.state == .running)
            #expect(manager.awakeBudget?.taken == 2)

            // b and c held (a shell, a process): a's wake is refused, and says why; nothing awake is touched.
            let heldB = try await b.beginActivity()
            let heldC = try await c.beginActivity()
            let refused = await #expect(throws: AgentBoxError.self) { try await a.wake() }
            #expect(refused?.code == .unavailable)
            #expect(refused?.message.contains("at most 2 workspaces awake") == true, "\(refused?.message ?? "")")
            #expect(a.snapshot.state == .sleeping)
            #expect(b.snapshot.state == .running && c.snapshot.state == .running)
            #expect(manager.awakeBudget?.taken == 2, "a refused boot holds no slot")

            // Once b is let go, a's wake takes b's slot; c, still held, stays awake.
            await b.endActivity(heldB)
            try await a.wake()
            #expect(a.snapshot.state == .running)
            #expect(b.snapshot.state == .sleeping)
            #expect(c.snapshot.state == .running)

            // A workspace put to sleep explicitly gives its slot back at once.
            await c.endActivity(heldC)
            _ = try await manager.sleep(key: key("c"))
            #expect(manager.awakeBudget?.taken == 1)
            try await b.wake()
            #expect(a.snapshot.state == .running, "a free slot: nobody is put to sleep")
            #expect(manager.awakeBudget?.taken == 2)
            await manager.shutdown()
            #expect(manager.awakeBudget?.taken == 0)
        }
    }

    /// A wake while the only slot's workspace is on its way to sleep waits for it, rather than being refused.
    @Test func aWakeWaitsForAWorkspaceThatIsGoingToSleep() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, maxAwake: 1)
            for name in ["a", "b"] { _ = try await manager.create(key: key(name)) }
            let a = try await manager.runtime(for: key("a"))
            let b = try await manager.runtime(for: key("b"))
            try await a.wake()
            // a's stop takes a while (as an agent's gentle stop does).
            await a.setStopHook("slow") { try? await Task.sleep(for: .milliseconds(300)) }
            let sleeping = Task { await a.sleep() }
            try await Task.sleep(for: .milliseconds(50))
            try await b.wake()
            #expect(b.snapshot.state == .running)
            await sleeping.value
            #expect(a.snapshot.state == .sleeping)
            #expect(manager.awakeBudget?.taken == 1)
            await manager.shutdown()
        }
    }

    @Test func manyWakesAtOnceNeverHoldMoreThanTheBudget() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, maxAwake: 3)
            let names = (0..<12).map { "w\($0)" }
            var runtimes: [WorkspaceRuntime] = []
            for name in names {
                _ = try await manager.create(key: key(name))
                runtimes.append(try await manager.runtime(for: key(name)))
            }
            // Each wake holds its workspace while it runs, then lets it go: at most 3 are awake at once, the rest
            // either take an idle one's slot or are refused; none fails otherwise.
            let mostAwake = MostAwake()
            let all = runtimes
            let outcomes = await withTaskGroup(of: String.self) { group in
                for runtime in all {
                    group.addTask {
                        do {
                            try await runtime.withActivity {
                                let awake = all.filter { $0.snapshot.state != .sleeping }.count
                                mostAwake.count.withLock { $0 = max($0, awake) }
                                try await Task.sleep(for: .milliseconds(20))
                            }
                            return "ok"
                        } catch let error as AgentBoxError where error.code == .unavailable {
                            return "refused"
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(outcomes.allSatisfy { $0 == "ok" || $0 == "refused" }, "\(outcomes)")
            #expect(outcomes.contains("ok"))
            #expect(mostAwake.count.withLock { $0 } <= 3)
            #expect((manager.awakeBudget?.taken ?? 99) <= 3)
            let awake = try await manager.list(limit: 100).items.filter { $0.state != .sleeping }
            #expect(awake.count <= 3, "\(awake.map(\.key))")
            await manager.shutdown()
        }
    }

    @Test func theServersBudgetFollowsItsDescriptorLimit() {
        #expect(AgentBoxConfiguration.awakeCapacity(forDescriptorLimit: 20_000) == 5_833)
        #expect(AgentBoxConfiguration.awakeCapacity(forDescriptorLimit: 1_048_576) == 305_834)
        #expect(AgentBoxConfiguration.awakeCapacity(forDescriptorLimit: 1_024) == 1)
        // The server's defaults: 64 parked sandboxes, a pool of 4, 4 blanks.
        #expect(AgentBoxConfiguration.awakeCapacity(forDescriptorLimit: 20_000, otherSandboxes: 72) == 5_761)
        // A server that raised its limit to the kernel's most (root): memory bounds it, one per 4 MiB.
        #expect(AgentBoxConfiguration.awakeCapacity(forDescriptorLimit: 1_048_576, otherSandboxes: 72, memoryBytes: 24 << 30) == 6_144)
        #expect(AgentBoxConfiguration.awakeCapacity(forDescriptorLimit: 20_000, otherSandboxes: 72, memoryBytes: 24 << 30) == 5_761)
        #expect(AgentBoxConfiguration.awakeCapacity(forDescriptorLimit: 20_000, memoryBytes: 1 << 20) == 1)
    }
}

private final class MostAwake: Sendable {
    let count = Mutex(0)
}
