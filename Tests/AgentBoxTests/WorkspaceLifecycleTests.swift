import AgentBox
import AgentBoxAPI
import Foundation
import Testing

@Suite("Workspace lifecycle", .timeLimit(.minutes(1)))
struct WorkspaceLifecycleTests {
    @Test func creatingDoesNotBootAndTheFirstActionDoes() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let (workspace, created) = try await manager.create(key: key("lazy"))
            #expect(created)
            #expect(workspace.state == .sleeping)
            let events = try await manager.events(key: key("lazy"))
            let runtime = try await manager.runtime(for: key("lazy"))
            #expect(!FileManager.default.fileExists(atPath: runtime.directory.path), "nothing is prepared before the first action")

            let result = try await runtime.withActivity { 42 }
            #expect(result == 42)
            #expect(try await manager.workspace(key: key("lazy")).state == .running)
            let booted = await collect(events, count: 1)
            guard case .vmBooted(let payload) = booted.first?.event else {
                Issue.record("expected vmBooted, got \(booted)")
                return
            }
            #expect(payload.bootMs >= 0)
            #expect(FileManager.default.fileExists(atPath: runtime.directory.appendingPathComponent("workspace").path))
            #expect(FileManager.default.fileExists(atPath: runtime.directory.appendingPathComponent("home").path))
            await manager.shutdown()
        }
    }

    @Test func sleepsAfterTheIdleGraceAndWakesOnTheNextAction() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, idleGrace: .milliseconds(100))
            _ = try await manager.create(key: key("idle"))
            let events = try await manager.events(key: key("idle"))
            _ = try await manager.wake(key: key("idle"))
            // Booted, then asleep by itself after the grace, then awake again on the next action.
            var iterator = events.makeAsyncIterator()
            #expect(await iterator.next()?.event.name == "vmBooted")
            #expect(await iterator.next()?.event == .vmShutdown(VMShutdown(reason: .sleep)))
            #expect(try await manager.workspace(key: key("idle")).state == .sleeping)
            _ = try await manager.wake(key: key("idle"))
            #expect(await iterator.next()?.event.name == "vmBooted")
            await manager.shutdown()
        }
    }

    @Test func anActivityHoldsTheWorkspaceAwake() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, idleGrace: .milliseconds(50))
            _ = try await manager.create(key: key("busy"))
            let runtime = try await manager.runtime(for: key("busy"))
            let events = await runtime.events()
            let activity = try await runtime.beginActivity()
            try await Task.sleep(for: .milliseconds(300))  // six graces: it would have slept by now if idle
            #expect(runtime.snapshot.state == .running)
            await runtime.endActivity(activity)
            let seen = await collect(events, count: 2)
            #expect(seen.map(\.event.name) == ["vmBooted", "vmShutdown"])
            #expect(runtime.snapshot.state == .sleeping)
            await manager.shutdown()
        }
    }

    @Test func explicitSleepStopsARunningWorkspace() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("nap"))
            _ = try await manager.wake(key: key("nap"))
            let events = try await manager.events(key: key("nap"), after: 0)
            let slept = try await manager.sleep(key: key("nap"))
            #expect(slept.state == .sleeping)
            let seen = await collect(events, count: 2)
            #expect(seen.map(\.event) == [seen[0].event, .vmShutdown(VMShutdown(reason: .sleep))])
            await manager.shutdown()
        }
    }

    @Test func recordsAndEventNumbersSurviveARestart() async throws {
        try await withTemporaryDirectory { directory in
            let config = WorkspaceConfig(limits: WorkspaceLimits(memoryMb: 300), env: ["GREETING": "hi"], network: NetworkPolicy(egress: .allow))
            let firstSeq: Int64
            let createdAt: Date
            do {
                let manager = try makeManager(directory)
                let (workspace, _) = try await manager.create(key: key("keep"), config: config)
                createdAt = workspace.createdAt
                let events = try await manager.events(key: key("keep"))
                _ = try await manager.wake(key: key("keep"))
                firstSeq = try #require(await collect(events, count: 1).first?.seq)
                await manager.shutdown()
            }
            let manager = try makeManager(directory)
            let workspace = try await manager.workspace(key: key("keep"))
            #expect(workspace.state == .sleeping)
            #expect(workspace.limits.memoryMb == 300)
            #expect(workspace.env == ["GREETING": "hi"])
            #expect(workspace.network.egress == .allow)
            #expect(abs(workspace.createdAt.timeIntervalSince(createdAt)) < 0.001)
            let (_, created) = try await manager.create(key: key("keep"))
            #expect(!created)
            let events = try await manager.events(key: key("keep"))
            _ = try await manager.wake(key: key("keep"))
            let next = try #require(await collect(events, count: 1).first)
            #expect(next.seq > firstSeq + 1, "numbering resumes above what was reserved before the restart")
            await manager.shutdown()
        }
    }

    @Test func lastEventIDReplaysRememberedEvents() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("replay"))
            for _ in 0..<3 {
                _ = try await manager.wake(key: key("replay"))
                _ = try await manager.sleep(key: key("replay"))
            }
            let all = await collect(try await manager.events(key: key("replay"), after: 0), count: 6)
            #expect(all.count == 6)
            #expect(zip(all, all.dropFirst()).allSatisfy { $0.seq < $1.seq })
            let tail = await collect(try await manager.events(key: key("replay"), after: all[3].seq), count: 2)
            #expect(tail == Array(all[4...]))
            await manager.shutdown()
        }
    }

    @Test func aSubscriberThatFallsBehindIsCutOffNotBuffered() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, subscriberBuffer: 4)
            _ = try await manager.create(key: key("slow"))
            let slow = try await manager.events(key: key("slow"))
            for _ in 0..<10 {
                _ = try await manager.wake(key: key("slow"))
                _ = try await manager.sleep(key: key("slow"))
            }
            var received = 0
            for await _ in slow { received += 1 }  // ends: the hub finished it when its buffer overflowed
            #expect(received == 4)
            await manager.shutdown()
        }
    }

    @Test func destroyRemovesFilesRecordsAndEndsStreams() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("gone"))
            let runtime = try await manager.runtime(for: key("gone"))
            _ = try await manager.wake(key: key("gone"))
            let events = try await manager.events(key: key("gone"))
            try await manager.destroy(key: key("gone"))
            let seen = await collect(events, count: 100)
            #expect(seen.last?.event == .vmShutdown(VMShutdown(reason: .destroy)))
            #expect(!FileManager.default.fileExists(atPath: runtime.directory.path))
            await #expect(throws: AgentBoxError.self) { try await manager.workspace(key: key("gone")) }
            await #expect(throws: AgentBoxError.self) { try await manager.destroy(key: key("gone")) }
            // The key can be used again, for a new workspace with new files.
            let (again, created) = try await manager.create(key: key("gone"))
            #expect(created && again.state == .sleeping)
            #expect(try await manager.runtime(for: key("gone")).id != runtime.id)
            await manager.shutdown()
        }
    }

    @Test func listingPagesWithACursor() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            for index in 0..<7 { _ = try await manager.create(key: key("w\(index)")) }
            _ = try await manager.wake(key: key("w3"))
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try await manager.list(cursor: cursor, limit: 3)
                seen += page.items.map(\.key.rawValue)
                if let running = page.items.first(where: { $0.key.rawValue == "w3" }) { #expect(running.state == .running) }
                cursor = page.nextCursor
                pages += 1
            } while cursor != nil
            #expect(seen == (0..<7).map { "w\($0)" })
            #expect(pages == 3)
            await #expect(throws: AgentBoxError.self) { try await manager.list(cursor: "!!not-a-cursor", limit: 3) }
            await #expect(throws: AgentBoxError.self) { try await manager.list(limit: 0) }
            await manager.shutdown()
        }
    }

    @Test func shutdownSleepsEverythingAndRefusesLaterCalls() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("a"))
            let events = try await manager.events(key: key("a"))
            _ = try await manager.wake(key: key("a"))
            await manager.shutdown()
            let seen = await collect(events, count: 100)
            #expect(seen.map(\.event.name) == ["vmBooted", "vmShutdown"])
            await #expect(throws: AgentBoxError.self) { try await manager.create(key: key("b")) }
        }
    }

    @Test(arguments: [
        WorkspaceConfig(limits: WorkspaceLimits(memoryMb: 1)),
        WorkspaceConfig(limits: WorkspaceLimits(pids: 0)),
        WorkspaceConfig(env: ["A=B": "x"]),
        WorkspaceConfig(env: ["": "x"]),
        WorkspaceConfig(mounts: [WorkspaceMount(type: .tmpfs, path: "/scratch")]),  // no sandbox here: unsupported
    ])
    func invalidConfigsAreRefused(config: WorkspaceConfig) async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            await #expect(throws: AgentBoxError.self) { try await manager.create(key: key("bad"), config: config) }
            await #expect(throws: AgentBoxError.self) { try await manager.workspace(key: key("bad")) }
            await manager.shutdown()
        }
    }
}

@Suite("Configuration")
struct ConfigurationTests {
    @Test func dataDirectoryFollowsTheEnvironment() {
        #expect(AgentBoxConfiguration.defaultDataDirectory(environment: ["AGENTBOX_DATA_DIR": "/srv/ab", "XDG_DATA_HOME": "/x", "HOME": "/h"], root: true).path == "/srv/ab")
        #expect(AgentBoxConfiguration.defaultDataDirectory(environment: ["XDG_DATA_HOME": "/x", "HOME": "/h"], root: false).path == "/x/agentbox")
        #expect(AgentBoxConfiguration.defaultDataDirectory(environment: ["HOME": "/h"], root: false).path == "/h/.local/share/agentbox")
        #expect(AgentBoxConfiguration.defaultDataDirectory(environment: ["HOME": "/root"], root: true).path == "/var/lib/agentbox")
    }

    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)), ("60s", .seconds(60)), ("2m", .seconds(120)), ("1h", .seconds(3600)),
        ("1.5s", .milliseconds(1500)), ("30", .seconds(30)),
    ])
    func durationsParse(text: String, expected: Duration) {
        #expect(Duration.parse(text) == expected)
    }

    @Test(arguments: ["", "abc", "-1s", "5d", "s"])
    func badDurationsAreRefused(text: String) {
        #expect(Duration.parse(text) == nil)
    }

    @Test(arguments: ["", String(repeating: "a", count: 129), "a/b", "a b", "ü", "a\0b", "../x"])
    func badKeysAreRefused(raw: String) {
        #expect(WorkspaceKey(rawValue: raw) == nil)
        #expect(WorkspaceKey.validationProblem(raw) != nil)
    }

    @Test(arguments: ["a", ".", "..", "A-Z_0.9:x", String(repeating: "k", count: 128)])
    func goodKeysAreAccepted(raw: String) {
        #expect(WorkspaceKey(rawValue: raw)?.rawValue == raw)
    }
}
