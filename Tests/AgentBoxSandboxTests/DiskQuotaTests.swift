import AgentBox
import AgentBoxAPI
import AgentBoxSandbox
import Foundation
import Testing

/// Disk limits in the btrfs disk pool (security issue #17, hole 9) and what a workspace's mount table shows (hole 8).
@Suite("Disk quotas", .enabled(if: Host.canSandbox && Host.hasBtrfs, "needs bubblewrap, root and btrfs"), .timeLimit(.minutes(3)))
struct DiskQuotaTests {
    @Test func aWorkspaceCannotWritePastItsDiskLimitAndItsNeighbourKeepsWorking() async throws {
        try await withPoolManager { manager, _ in
            let limited = WorkspaceConfig(limits: WorkspaceLimits(diskMb: 64))
            let full = try await manager.run("full", "dd if=/dev/zero of=/workspace/big bs=1M count=100 2>&1; echo rc=$?", config: limited)
            #expect(full.stdout.contains("Disk quota exceeded"), "\(full)")
            #expect(!full.stdout.contains("rc=0"), "\(full)")
            // The home directory shares the limit.
            let home = try await manager.run("full", "dd if=/dev/zero of=/home/agent/more bs=1M count=8 2>&1; echo rc=$?")
            #expect(home.stdout.contains("Disk quota exceeded"), "\(home)")
            // A full workspace can still free space by deleting.
            let freed = try await manager.run("full", "rm -f /workspace/big /home/agent/more && echo small > /workspace/small && cat /workspace/small")
            #expect(freed.stdout == "small\n", "\(freed)")
            _ = try await manager.run("full", "dd if=/dev/zero of=/workspace/big bs=1M count=100 2>/dev/null")

            let neighbour = try await manager.run("neighbour", "dd if=/dev/zero of=/workspace/f bs=1M count=100 2>/dev/null && du -m /workspace/f")
            #expect(neighbour.exitCode == 0 && neighbour.stdout.hasPrefix("100"), "\(neighbour)")
            #expect(try await manager.list().items.count == 2, "the manager still answers")

            // Raising the limit lets it write more, at once (the workspace is still running).
            let (raised, created) = try await manager.create(key: key("full"), config: WorkspaceConfig(limits: WorkspaceLimits(diskMb: 256)))
            #expect(!created)
            #expect(raised.limits.diskMb == 256)
            let more = try await manager.run("full", "dd if=/dev/zero of=/workspace/big2 bs=1M count=100 2>&1; echo rc=$?")
            #expect(more.stdout.contains("rc=0"), "\(more)")
            #expect(try await manager.workspace(key: key("full")).limits.diskMb == 256, "the new limit is stored")
        }
    }

    /// What root installs into the system layer (its upper layer is in the workspace's subvolume) counts too.
    @Test func theSystemLayerCountsAgainstTheLimit() async throws {
        try await withPoolManager { manager, _ in
            let full = try await manager.run(
                "system-full", "dd if=/dev/zero of=/usr/local/big bs=1M count=100 2>&1; echo rc=$?; df -h / >/dev/null",
                config: WorkspaceConfig(limits: WorkspaceLimits(diskMb: 32)))
            #expect(full.stdout.contains("Disk quota exceeded"), "\(full)")
            #expect(!full.stdout.contains("rc=0"), "\(full)")
            try await manager.destroy(key: key("system-full"))
        }
    }

    @Test func subvolumesAWorkspaceMakesCountAgainstItsLimit() async throws {
        try await withPoolManager { manager, _ in
            // btrfs lets an unprivileged user make subvolumes: each has a quota group of its own, which joins the
            // workspace's group by itself (simple quotas), so the limit still holds.
            let escape = try await manager.run(
                "nested",
                "btrfs subvolume create /workspace/sub >/dev/null 2>&1; ls -d /workspace/sub && dd if=/dev/zero of=/workspace/sub/big bs=1M count=100 2>&1; echo rc=$?",
                config: WorkspaceConfig(limits: WorkspaceLimits(diskMb: 32)))
            #expect(!escape.stdout.contains("rc=0"), "\(escape)")
            try await manager.destroy(key: key("nested"))
        }
    }

    @Test func snapshotsCountAgainstTheQuotaAndAreRefusedWhenItIsFull() async throws {
        try await withPoolManager { manager, _ in
            let config = WorkspaceConfig(limits: WorkspaceLimits(diskMb: 64))
            let first = try await manager.run("snappy", "dd if=/dev/urandom of=/workspace/a bs=1M count=40 2>&1 && sync; echo rc=$?", config: config)
            #expect(first.stdout.contains("rc=0"), "\(first)")
            let snapshot = try await manager.createSnapshot(key: key("snappy"))
            #expect(snapshot.sizeBytes >= 40 << 20, "a snapshot in the pool reports what the workspace is charged")
            // The snapshot keeps the 40 MB: deleting the file frees nothing, and 40 more do not fit in 64.
            let second = try await manager.run("snappy", "rm /workspace/a; dd if=/dev/urandom of=/workspace/b bs=1M count=40 2>&1; sync; echo rc=$?")
            #expect(second.stdout.contains("Disk quota exceeded"), "\(second)")
            await #expect(throws: AgentBoxError.self) { try await manager.createSnapshot(key: key("snappy")) }
            do {
                _ = try await manager.createSnapshot(key: key("snappy"))
            } catch let error as AgentBoxError {
                #expect(error.code == .conflict)
                #expect(error.message.contains("disk quota"), "\(error.message)")
            }
            #expect(try await manager.snapshots(key: key("snappy")).items.map(\.id) == [snapshot.id], "the refused one is not kept")
        }
    }

    @Test func aForkIsAWritableCopyAndDeletingFreesTheSubvolumes() async throws {
        try await withPoolManager { manager, directory in
            let origin = try await manager.run(
                "origin", "echo one > /workspace/a.txt && mkdir -p /home/agent/d && echo h > /home/agent/d/h && dd if=/dev/zero of=/workspace/big bs=1M count=20 2>/dev/null",
                config: WorkspaceConfig(limits: WorkspaceLimits(diskMb: 64)))
            #expect(origin.exitCode == 0, "\(origin)")
            let snapshot = try await manager.createSnapshot(key: key("origin"))
            let snapshotVolume = directory.appendingPathComponent("pool/snapshots/\(snapshot.id)").path
            #expect(FileManager.default.fileExists(atPath: snapshotVolume))
            #expect(access(snapshotVolume + "/workspace/a.txt", W_OK) != 0 || errno == EROFS, "a snapshot is read-only")

            _ = try await manager.create(key: key("fork"), config: WorkspaceConfig(fromSnapshot: snapshot.id))
            let fork = try await manager.run("fork", "cat /workspace/a.txt /home/agent/d/h; echo two >> /workspace/a.txt && cat /workspace/a.txt; stat -c %u /workspace/a.txt; id -u")
            let lines = fork.stdout.split(separator: "\n").map(String.init)
            #expect(Array(lines.prefix(4)) == ["one", "h", "one", "two"], "\(fork)")
            #expect(lines.count == 6 && lines[4] == lines[5], "the fork's files are its own uid's: \(fork)")
            #expect(try await manager.run("origin", "cat /workspace/a.txt").stdout == "one\n", "the origin is unchanged")
            // No data was copied: the 20 MB the fork sees stay charged to the origin, the fork pays for its own writes.
            let pool = try #require(manager.diskPool)
            pool.commit()
            let forkGroup = try await manager.runtime(for: key("fork")).sandboxNumber
            let originGroup = try await manager.runtime(for: key("origin")).sandboxNumber
            #expect(try #require(pool.usage(group: forkGroup)) < 4 << 20)
            #expect(try #require(pool.usage(group: originGroup)) >= 20 << 20)

            let forkID = try await manager.runtime(for: key("fork")).id
            let forkVolume = directory.appendingPathComponent("pool/workspaces/\(forkID)").path
            #expect(FileManager.default.fileExists(atPath: forkVolume))
            try await manager.destroy(key: key("fork"))
            #expect(!FileManager.default.fileExists(atPath: forkVolume), "deleting a workspace deletes its subvolume")
            let originID = try await manager.runtime(for: key("origin")).id
            try await manager.destroy(key: key("origin"))
            #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("pool/workspaces/\(originID)").path))
            #expect(!FileManager.default.fileExists(atPath: snapshotVolume), "and its snapshots")
        }
    }

    @Test func theMountTableNamesNothingOfTheDataDirectory() async throws {
        try await withPoolManager { manager, directory in
            let table = try await manager.run("looker", "cat /proc/self/mountinfo")
            #expect(table.exitCode == 0 && table.stdout.contains(" /workspace "), "\(table)")
            #expect(!table.stdout.contains(directory.path), "\(table.stdout)")
            #expect(!table.stdout.contains(directory.lastPathComponent), "\(table.stdout)")
        }
    }

    @Test func workspacesFromBeforeThePoolKeepWorkingAndTheirForksLandInIt() async throws {
        try await withTemporaryDirectory { directory in
            var manager = try makeManager(directory)
            _ = try await manager.run("old", "echo old > /workspace/o")
            let snapshot = try await manager.createSnapshot(key: key("old"))
            await manager.shutdown()

            manager = try makePoolManager(directory)
            let pool = try #require(manager.diskPool)
            let old = try await manager.runtime(for: key("old"))
            #expect(!pool.holdsWorkspace(id: old.id), "a workspace made before the pool stays a directory")
            #expect(try await manager.run("old", "cat /workspace/o; echo new > /workspace/n && echo wrote").stdout == "old\nwrote\n")
            let later = try await manager.createSnapshot(key: key("old"))
            #expect(!pool.holdsSnapshot(id: later.id) && later.sizeBytes == 8, "its snapshots are copies")

            _ = try await manager.create(
                key: key("young"), config: WorkspaceConfig(limits: WorkspaceLimits(diskMb: 32), fromSnapshot: snapshot.id))
            #expect(pool.holdsWorkspace(id: try await manager.runtime(for: key("young")).id), "a fork of an old snapshot lands in the pool")
            let young = try await manager.run("young", "cat /workspace/o; dd if=/dev/zero of=/workspace/big bs=1M count=64 2>&1; echo rc=$?")
            #expect(young.stdout.hasPrefix("old\n") && young.stdout.contains("Disk quota exceeded"), "\(young)")
            try await manager.destroy(key: key("old"))
            #expect(!FileManager.default.fileExists(atPath: old.directory.path))
            await manager.shutdown()
        }
    }

    /// A host that can have a pool but fails to make or open this one (here: a size too small) refuses to start,
    /// rather than serve every workspace without its disk limit.
    @Test func aPoolThatFailsOnAHostThatCanHaveOneStopsTheStart() async throws {
        try await withTemporaryDirectory { directory in
            do {
                let manager = try makeManager(directory) { $0.diskPool = .automatic(sizeBytes: 1 << 20) }
                Issue.record("the manager started, pool: \(manager.diskPool != nil)")
                await manager.shutdown()
            } catch let error as AgentBoxError {
                #expect(error.code == .unavailable && error.message.contains("without their disk limits"), "\(error)")
                #expect(error.message.contains("at least 256 MiB"), "the reason is given: \(error)")
            }
            #expect(!DiskPoolProbe.isMounted(directory))
        }
    }

    @Test func aRestartedManagerFindsThePoolAgain() async throws {
        try await withTemporaryDirectory { directory in
            var manager = try makePoolManager(directory)
            _ = try await manager.run("keeper", "echo kept > /workspace/k", config: WorkspaceConfig(limits: WorkspaceLimits(diskMb: 32)))
            await manager.shutdown()
            #expect(!DiskPoolProbe.isMounted(directory), "shutdown unmounts the pool AgentBox mounted")

            manager = try makePoolManager(directory)
            #expect(manager.diskPool != nil)
            let again = try await manager.run("keeper", "cat /workspace/k; dd if=/dev/zero of=/workspace/big bs=1M count=64 2>&1; echo rc=$?")
            #expect(again.stdout.hasPrefix("kept\n"), "\(again)")
            #expect(again.stdout.contains("Disk quota exceeded"), "the limit holds after the restart: \(again)")
            await manager.shutdown()
        }
    }
}

enum DiskPoolProbe {
    static func isMounted(_ directory: URL) -> Bool {
        let table = KernelFile.read("/proc/self/mountinfo") ?? ""
        return table.contains(" \(directory.appendingPathComponent("pool").path) ")
    }
}

extension Host {
    static let hasBtrfs: Bool =
        (KernelFile.read("/proc/filesystems") ?? "").contains("btrfs")
        && FileManager.default.isExecutableFile(atPath: "/usr/sbin/mkfs.btrfs")
}

/// A manager whose workspaces live in a disk pool of their own (a 1 GiB image in `directory`).
func makePoolManager(_ directory: URL) throws -> WorkspaceManager {
    try makeManager(directory) { $0.diskPool = .automatic(sizeBytes: 1 << 30) }
}

/// Runs `body` with a pool manager in a fresh directory, and shuts it down (unmounting the pool) whatever happens.
func withPoolManager(_ body: (WorkspaceManager, URL) async throws -> Void) async throws {
    try await withTemporaryDirectory { directory in
        let manager = try makePoolManager(directory)
        try #require(manager.diskPool != nil, "the pool could not be made")
        do {
            try await body(manager, directory)
        } catch {
            await manager.shutdown()
            throw error
        }
        await manager.shutdown()
    }
}
