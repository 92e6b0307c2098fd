@testable import AgentBox
import AgentBoxAPI
@testable import AgentBoxSandbox
import AgentBoxStore
import Foundation
import Testing

/// Blank workspaces (issue 28): storage, ids and a parked sandbox made ahead of creates. A create that fits takes one,
/// and its first action takes the parked sandbox; what a blank lacks (mounts, an existing key) is made as before; the
/// reserve refills, survives a restart, and lets go of what is past its capacity.
@Suite("Blank workspaces", .enabled(if: Host.canSandbox && Host.hasBtrfs, "needs bubblewrap, root and btrfs"), .timeLimit(.minutes(3)))
struct BlankWorkspaceTests {
    /// A manager with a disk pool, pre-started and parked sandboxes and `blanks` blank workspaces, its background work
    /// running while `body` runs (once the reserve is full); shut down afterwards.
    func withBlankManager<T>(
        _ directory: URL, blanks: Int, _ body: (WorkspaceManager, BubblewrapBackend) async throws -> T
    ) async throws -> T {
        let manager = try makeManager(directory, sandboxPool: 2, prestartedSandboxes: true, parkedSandboxes: 8) {
            $0.diskPool = .automatic(sizeBytes: 1 << 30)
            $0.blankWorkspaces = blanks
        }
        let backend = try #require(manager.configuration.sandbox as? BubblewrapBackend)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await manager.runBackgroundWork() }
            defer { group.cancelAll() }
            do {
                try await Self.waitUntilReady(manager, blanks)
                let result = try await body(manager, backend)
                await manager.shutdown()
                return result
            } catch {
                await manager.shutdown()
                throw error
            }
        }
    }

    /// Waits (by deadline) until the reserve holds `count` ready blanks.
    static func waitUntilReady(_ manager: WorkspaceManager, _ count: Int) async throws {
        let blanks = try #require(manager.blanks)
        let deadline = ContinuousClock.now + .seconds(30)
        while blanks.readyCount < count {
            guard ContinuousClock.now < deadline else {
                Issue.record("\(blanks.readyCount) of \(count) blank workspaces are ready after 30 s")
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func aCreateTakesABlankAndItsFirstActionItsParkedSandbox() async throws {
        try await withTemporaryDirectory { directory in
            try await withBlankManager(directory, blanks: 2) { manager, backend in
                let blanks = try await manager.store.blankWorkspaces()
                #expect(blanks.count == 2)
                #expect(backend.parkedSandboxCount == 2, "each blank's sandbox is parked")

                let (made, created) = try await manager.create(key: key("a"))
                #expect(created && made.state == .sleeping)
                let a = try #require(try await manager.store.workspace(key: key("a")))
                #expect(blanks.contains { $0.id == a.id && $0.sandboxNumber == a.sandboxNumber }, "a blank became the workspace")
                #expect(manager.loadedRuntimes.resident == 1, "kept loaded for its first action")
                #expect(try await manager.store.eventSequenceBound(key: key("a")) == BlankWorkspaces.firstEvents, "its first event numbers reserved")

                let events = try await manager.events(key: key("a"))
                let first = try await manager.run("a", "id -u; ls -A /workspace /home/agent | tr '\\n' ' '; echo secret > /workspace/f")
                #expect(first.exitCode == 0, "\(first.stderr)")
                #expect(first.stdout.hasPrefix("0\n/home/agent:"), "root of its own user namespace, nothing in its directories: \(first.stdout)")
                #expect(backend.parkedSandboxReuses == 1, "the first action took the blank's parked sandbox")
                var iterator = events.makeAsyncIterator()
                let booted = await iterator.next()
                #expect(booted?.seq == 1 && booted?.event.name == "vmBooted", "its events are numbered from 1: \(String(describing: booted))")
                #expect(try await manager.store.eventSequenceBound(key: key("a")) == BlankWorkspaces.firstEvents, "its boot reserved no more")
                // The egress proxy serves it on the socket made with the blank (a refusal: the policy denies all).
                let proxy = try await manager.run("a", ParkedSandboxTests.askTheProxy)
                #expect(proxy.stdout.contains("HTTP/1.1 403"), "\(proxy.stdout) \(proxy.stderr)")

                _ = try await manager.create(key: key("b"))
                let b = try #require(try await manager.store.workspace(key: key("b")))
                #expect(b.id != a.id && b.sandboxNumber != a.sandboxNumber)
                let second = try await manager.run("b", "ls -A /workspace; cat /proc/self/uid_map")
                #expect(second.exitCode == 0 && !second.stdout.contains("f\n"), "its own empty files: \(second.stdout)")
                #expect(backend.parkedSandboxReuses == 2)
                #expect(first.stdout != second.stdout)

                // The reserve makes two new blanks, and they are none of the workspaces.
                try await Self.waitUntilReady(manager, 2)
                let refilled = try await manager.store.blankWorkspaces()
                #expect(refilled.count == 2 && Set(refilled.map(\.id)).isDisjoint(with: [a.id, b.id]))
                let scraped = String(decoding: try #require(try await manager.prometheusText()), as: UTF8.self)
                #expect(scraped.contains("\nagentbox_blank_workspaces 2"), "the gauge shows them")
                #expect(try await manager.list().items.map(\.key) == [key("a"), key("b")], "a blank is never listed")

                // A workspace made of a blank is deleted as any other.
                try await manager.destroy(key: key("a"))
                #expect(manager.diskPool?.holdsWorkspace(id: a.id) == false)
            }
        }
    }

    @Test func whatABlankLacksIsMadeAsBeforeAndALimitIsSetOnIt() async throws {
        try await withTemporaryDirectory { directory in
            try await withBlankManager(directory, blanks: 1) { manager, _ in
                let blank = try #require(try await manager.store.blankWorkspaces().first)
                let mounted = WorkspaceConfig(mounts: [WorkspaceMount(type: .tmpfs, path: "/scratch", sizeMb: 8)])
                _ = try await manager.create(key: key("mounted"), config: mounted)
                #expect(try await manager.store.workspace(key: key("mounted"))?.id != blank.id, "a create with mounts makes its own")
                #expect(try await manager.run("mounted", "mountpoint -q /scratch && echo yes").stdout == "yes\n")

                // An existing key: the create answers the workspace as it is, and the blank stays.
                let (again, created) = try await manager.create(key: key("mounted"))
                #expect(!created && again.key == key("mounted"))
                #expect(try await manager.store.blankWorkspaces() == [blank])

                // A disk limit other than the default is set on the blank's subvolume as it becomes the workspace.
                let small = WorkspaceConfig(limits: WorkspaceLimits(diskMb: 32))
                _ = try await manager.create(key: key("small"), config: small)
                #expect(try await manager.store.workspace(key: key("small"))?.id == blank.id)
                let full = try await manager.run("small", "dd if=/dev/zero of=/workspace/big bs=1M count=100 2>&1; echo rc=$?")
                #expect(full.stdout.contains("Disk quota exceeded") && !full.stdout.contains("rc=0"), "\(full.stdout)")
            }
        }
    }

    @Test func blanksOutliveARestartAndThosePastTheCapacityGo() async throws {
        try await withTemporaryDirectory { directory in
            let before = try await withBlankManager(directory, blanks: 3) { manager, _ in
                try await manager.store.blankWorkspaces()
            }
            #expect(before.count == 3)
            try await withBlankManager(directory, blanks: 1) { manager, backend in
                let kept = try await manager.store.blankWorkspaces()
                #expect(kept.count == 1 && before.contains(kept[0]), "one of the earlier blanks is kept: \(kept)")
                let pool = try #require(manager.diskPool)
                #expect(before.filter { pool.holdsWorkspace(id: $0.id) }.map(\.id) == kept.map(\.id), "the others' storage is gone")
                #expect(backend.parkedSandboxCount == 1, "its sandbox is parked again")

                _ = try await manager.create(key: key("r"))
                #expect(try await manager.store.workspace(key: key("r"))?.id == kept[0].id)
                let result = try await manager.run("r", "echo hello > /workspace/x && cat /workspace/x")
                #expect(result.stdout == "hello\n" && backend.parkedSandboxReuses == 1, "\(result)")
            }
            // A server that keeps none deletes the ones left, storage and all.
            try await withBlankManager(directory, blanks: 0) { manager, _ in
                let deadline = ContinuousClock.now + .seconds(20)
                while try await !manager.store.blankWorkspaces().isEmpty, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                let left = try await manager.store.blankWorkspaces()
                #expect(left.isEmpty, "\(left)")
                let pool = try #require(manager.diskPool)
                let r = try #require(try await manager.store.workspace(key: key("r")))
                #expect(before.filter { $0.id != r.id }.allSatisfy { !pool.holdsWorkspace(id: $0.id) }, "their storage is gone")
                #expect(try await manager.run("r", "cat /workspace/x").stdout == "hello\n", "the workspace made of one stays")
            }
        }
    }
}
