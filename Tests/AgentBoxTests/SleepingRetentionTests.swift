import AgentBox
import AgentBoxAPI
import AgentBoxStore
import Foundation
import Logging
import Testing

/// A sleeping workspace that nobody uses costs the server nothing once its retention is over (issue 18).
@Suite("Sleeping workspaces leave memory")
struct SleepingRetentionTests {
    private func makeManager(_ directory: URL, retention: Duration) throws -> WorkspaceManager {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        var configuration = AgentBoxConfiguration(dataDirectory: directory)
        configuration.sleepingRetention = retention
        return try WorkspaceManager.open(configuration: configuration, store: SQLiteStore.open(in: directory), logger: logger)
    }

    /// Waits (bounded) until `condition` holds; the reaper runs on its own clock.
    private func eventually(_ condition: () async -> Bool) async -> Bool {
        for _ in 0..<200 {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(25))
        }
        return await condition()
    }

    @Test func aSleptWorkspacesRuntimeIsFreedAfterItsRetentionAndLoadsAgain() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, retention: .milliseconds(200))
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await manager.runBackgroundWork() }
                _ = try await manager.create(key: key("nap"))
                // Creating does not load the workspace at all.
                #expect(manager.loadedRuntimes.loaded == 0)
                weak var first: WorkspaceRuntime?
                var lastSeq: Int64 = 0
                do {
                    let runtime = try await manager.runtime(for: key("nap"))
                    first = runtime
                    let events = await runtime.events()
                    try await runtime.wake()
                    await runtime.sleep()
                    let seen = await collect(events, count: 2)
                    #expect(seen.map(\.event.name) == ["vmBooted", "vmShutdown"])
                    lastSeq = seen.last?.seq ?? 0
                }
                // Right after sleeping it is kept for its retention: a reconnecting client is replayed what it missed.
                let replay = await collect(try await manager.events(key: key("nap"), after: lastSeq - 1), count: 1)
                #expect(replay.first?.seq == lastSeq)
                #expect(await eventually { manager.loadedRuntimes.resident == 0 })
                #expect(await eventually { first == nil }, "nothing else holds the runtime once it is let go")
                // The next action loads it again; event numbers go on above the old ones.
                let runtime = try await manager.runtime(for: key("nap"))
                let events = await runtime.events()
                try await runtime.wake()
                let next = try #require(await collect(events, count: 1).first)
                #expect(next.seq > lastSeq)
                #expect(manager.loadedRuntimes.resident == 1)
                await runtime.sleep()
                group.cancelAll()
            }
            await manager.shutdown()
        }
    }

    @Test func aSubscriberOrAWatchKeepsASleepingWorkspaceResident() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, retention: .milliseconds(50))
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await manager.runBackgroundWork() }
                _ = try await manager.create(key: key("watched"))
                let runtime = try await manager.runtime(for: key("watched"))
                let events = await runtime.events()
                let watch = try runtime.watch(WorkspacePath("/workspace"), recursive: false)
                try await Task.sleep(for: .milliseconds(300))
                #expect(manager.loadedRuntimes.resident == 1, "a subscriber and a watch hold it")
                _ = consume events
                try await Task.sleep(for: .milliseconds(300))
                #expect(manager.loadedRuntimes.resident == 1, "the watch still holds it")
                _ = consume watch
                #expect(await eventually { manager.loadedRuntimes.resident == 0 })
                group.cancelAll()
            }
            await manager.shutdown()
        }
    }

    @Test func manyWorkspacesWokenAndSleptAreAllLetGo() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, retention: .milliseconds(100))
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await manager.runBackgroundWork() }
                for index in 0..<50 {
                    _ = try await manager.create(key: key("w\(index)"))
                    _ = try await manager.wake(key: key("w\(index)"))
                    if index % 3 == 0 { _ = try await manager.sleep(key: key("w\(index)")) }
                }
                // The awake ones are resident whatever the time; the slept ones may already be gone.
                #expect(manager.loadedRuntimes.resident >= 33)
                for index in 0..<50 where index % 3 != 0 { _ = try await manager.sleep(key: key("w\(index)")) }
                #expect(await eventually { manager.loadedRuntimes.resident == 0 })
                #expect(await eventually { manager.loadedRuntimes.loaded == 0 })
                let list = try await manager.list(limit: 100)
                #expect(list.items.count == 50 && list.items.allSatisfy { $0.state == .sleeping })
                group.cancelAll()
            }
            await manager.shutdown()
        }
    }
}
