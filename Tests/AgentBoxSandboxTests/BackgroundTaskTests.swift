@testable import AgentBox
import AgentBoxAPI
import Foundation
import Testing

/// What a workspace starts in the background ends with it: a stop or a destroy leaves no task of it running.
@Suite("Background tasks of a workspace", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(1)))
struct BackgroundTaskTests {
    @Test func aStopEndsTheSandboxWatcherAndTheFollowersAfterTheyForwardTheExit() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let runtime = try await manager.runtime(for: try await manager.create(key: key("owned")).workspace.key)
            let process = try await runtime.spawn(SpawnRequest(command: "sleep", args: ["60"]))
            let followed = try await runtime.followOutput(process.id)
            let running = await runtime.backgroundTaskCounts
            #expect(running.sandbox == 1, "the watcher of the sandbox's end")
            #expect(running.followers == 1)

            await runtime.sleep()
            let stopped = await runtime.backgroundTaskCounts
            #expect(stopped.sandbox == 0 && stopped.followers == 0)
            // The follower was not cut off: it forwarded the exit before the stop ended it.
            var last: WorkspaceEvent?
            for await item in followed { last = item.event }
            #expect(last?.name == "processExit")
            await manager.shutdown()
        }
    }

    @Test func aDestroyEndsAFollowerOfAnExitedWorkspaceAndTheEventStreams() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let runtime = try await manager.runtime(for: try await manager.create(key: key("gone")).workspace.key)
            let events = await runtime.events()
            let process = try await runtime.spawn(SpawnRequest(command: "sleep", args: ["60"]))
            let followed = try await runtime.followOutput(process.id)
            try await manager.destroy(key: key("gone"))
            let left = await runtime.backgroundTaskCounts
            #expect(left.sandbox == 0 && left.followers == 0)
            #expect(await runtime.subscriberCount == 0)
            for await _ in followed {}
            for await _ in events {}
            await manager.shutdown()
        }
    }

    @Test func aCancelledWaitWithATimeoutReturnsAtOnce() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let runtime = try await manager.runtime(for: try await manager.create(key: key("waiting")).workspace.key)
            let process = try await runtime.spawn(SpawnRequest(command: "sleep", args: ["60"]))
            let waiter = Task { try await runtime.wait(process.id, timeout: .seconds(50)) }
            try await Task.sleep(for: .milliseconds(100))
            let clock = ContinuousClock()
            let cancelled = clock.now
            waiter.cancel()
            await #expect(throws: AgentBoxError.self) { try await waiter.value }
            #expect(clock.now - cancelled < .seconds(20), "the waiter did not stay until its deadline")
            await manager.shutdown()
        }
    }
}
