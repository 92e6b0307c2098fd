import AgentBox
import AgentBoxAPI
import AgentBoxSandbox
import Foundation
import NIOCore
import Testing

@Suite("Snapshots and forks", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct SnapshotTests {
    /// With and without the disk pool: a subvolume snapshot and a copy behave alike.
    @Test(arguments: Host.hasBtrfs ? [false, true] : [false])
    func aForkStartsWithTheSnapshotsFilesAndOwnsThem(inPool: Bool) async throws {
        try await withTemporaryDirectory { directory in
            let manager = try inPool ? makePoolManager(directory) : makeManager(directory)
            #expect((manager.diskPool != nil) == inPool)
            let setup = try await manager.run(
                "origin",
                """
                mkdir -p /workspace/src/deep && echo one > /workspace/src/deep/a.txt && printf '#!/bin/sh\\necho ran\\n' > /workspace/run.sh \
                && chmod 755 /workspace/run.sh && ln -s src/deep/a.txt /workspace/link && echo rc > /home/agent/.profile-x
                """,
                config: WorkspaceConfig(env: ["ORIGIN": "yes"]))
            #expect(setup.exitCode == 0, "\(setup)")
            let snapshot = try await manager.createSnapshot(key: key("origin"))
            #expect(snapshot.sizeBytes > 0)
            #expect(snapshot.workspace == key("origin"))
            // Changes after the snapshot stay with the origin.
            _ = try await manager.run("origin", "echo two > /workspace/src/deep/a.txt; rm /workspace/run.sh")

            let (fork, created) = try await manager.create(
                key: key("fork"), config: WorkspaceConfig(limits: WorkspaceLimits(memoryMb: 512), fromSnapshot: snapshot.id))
            #expect(created)
            #expect(fork.limits.memoryMb == 512, "the request's fields win")
            #expect(fork.env["ORIGIN"] == "yes", "the rest comes from the snapshot's workspace")
            let inFork = try await manager.run(
                "fork", "cat /workspace/src/deep/a.txt; /workspace/run.sh; readlink /workspace/link; cat /home/agent/.profile-x; echo more >> /workspace/src/deep/a.txt && echo writable; stat -c %u /workspace/src/deep/a.txt; id -u")
            let lines = inFork.stdout.split(separator: "\n").map(String.init)
            #expect(Array(lines.prefix(5)) == ["one", "ran", "src/deep/a.txt", "rc", "writable"], "\(inFork)")
            #expect(lines.count == 7 && lines[5] == lines[6], "the fork's files belong to the fork's own uid: \(inFork)")
            let origin = try await manager.run("origin", "cat /workspace/src/deep/a.txt; test -e /workspace/run.sh || echo gone")
            #expect(origin.stdout == "two\ngone\n")

            // Forking again onto an existing key returns it unchanged.
            let (again, createdAgain) = try await manager.create(key: key("fork"), config: WorkspaceConfig(fromSnapshot: snapshot.id))
            #expect(!createdAgain)
            #expect(again.limits.memoryMb == 512)
            await manager.shutdown()
        }
    }

    /// The storage range: every workspace's files carry its ids on disk and are mounted idmapped into each sandbox,
    /// so a fork in the pool is one btrfs snapshot, with no walk over its files (a chown would change their ctime);
    /// inside, the fork's files are its own. A workspace whose files carry its own range (from before the storage
    /// range: no marker) is handed to it once, at its next boot; a fork of a snapshot of one, when it is made.
    @Test(.enabled(if: Host.hasBtrfs, "needs btrfs"))
    func aForkWalksNoFileAndOlderFilesAreHandedToTheStorageRange() async throws {
        try await withPoolManager { manager, _ in
            let setup = try await manager.run(
                "origin", "mkdir -p /workspace/many && for i in $(seq 1 200); do echo $i > /workspace/many/f$i; done; echo mine > /home/agent/a.txt && chown 1000:1000 /home/agent/a.txt")
            #expect(setup.exitCode == 0, "\(setup)")
            let origin = try await manager.runtime(for: key("origin"))
            let storage = origin.diskIDs
            #expect(storage.start != origin.hostUID - WorkspaceIDs.agent, "the files' ids are not the ids its processes run as")
            func owner(_ path: URL) -> (uid: UInt32, ctime: Int) {
                var info = stat()
                stat(path.path, &info)
                return (info.st_uid, info.st_ctim.tv_sec * 1_000_000_000 + info.st_ctim.tv_nsec)
            }
            let originFile = owner(origin.directory.appendingPathComponent("workspace/many/f77"))
            #expect(originFile.uid == storage.start, "root's file inside is the storage range's root on disk")
            #expect(owner(origin.directory.appendingPathComponent("home/a.txt")).uid == storage.start + WorkspaceIDs.agent)

            let snapshot = try await manager.createSnapshot(key: key("origin"))
            _ = try await manager.create(key: key("fork"), config: WorkspaceConfig(fromSnapshot: snapshot.id))
            let fork = try await manager.runtime(for: key("fork"))
            let forkFile = owner(fork.directory.appendingPathComponent("workspace/many/f77"))
            #expect(forkFile.uid == originFile.uid && forkFile.ctime == originFile.ctime, "the fork's inodes are the snapshot's, untouched")
            let inFork = try await manager.run("fork", "stat -c %u /workspace/many/f77 /home/agent/a.txt; echo more >> /workspace/many/f77 && echo writable; id -u")
            #expect(inFork.stdout == "0\n1000\nwritable\n0\n", "\(inFork)")
            #expect(fork.hostUID != origin.hostUID, "each runs as its own range")

            // Files that carry the workspace's own range (as before the storage range) go to the storage range at
            // the next boot, and look the same inside.
            _ = try await manager.sleep(key: key("origin"))
            let own = origin.hostUID - WorkspaceIDs.agent
            for path in ["workspace", "workspace/many", "workspace/many/f77"] {
                chown(origin.directory.appendingPathComponent(path).path, own, own)
            }
            chown(origin.directory.appendingPathComponent("home/a.txt").path, own + WorkspaceIDs.agent, own + WorkspaceIDs.agent)
            #expect(unlink(origin.directory.appendingPathComponent(".storage-ids").path) == 0, "a workspace from before has no marker")
            // A fork of a snapshot of it is walked at once: its files never carry the source's range.
            let older = try await manager.createSnapshot(key: key("origin"))
            _ = try await manager.create(key: key("fork2"), config: WorkspaceConfig(fromSnapshot: older.id))
            let fork2 = try await manager.runtime(for: key("fork2"))
            #expect(owner(fork2.directory.appendingPathComponent("workspace/many/f77")).uid == storage.start)
            #expect(owner(fork2.directory.appendingPathComponent("home/a.txt")).uid == storage.start + WorkspaceIDs.agent)
            let woken = try await manager.run("origin", "stat -c %u /workspace/many/f77 /home/agent/a.txt; cat /workspace/many/f77")
            #expect(woken.stdout == "0\n1000\n77\n", "\(woken)")
            #expect(owner(origin.directory.appendingPathComponent("workspace/many/f77")).uid == storage.start)
            #expect(owner(origin.directory.appendingPathComponent("home/a.txt")).uid == storage.start + WorkspaceIDs.agent)
        }
    }

    @Test func takingASnapshotDoesNotBootAndSnapshotsSurviveARestart() async throws {
        try await withTemporaryDirectory { directory in
            var manager = try makeManager(directory)
            _ = try await manager.create(key: key("quiet"))
            let files = try await manager.runtime(for: key("quiet")).files()
            try await FileFixtureWriter.write(files, "/workspace/notes.md", "# notes")
            let snapshot = try await manager.createSnapshot(key: key("quiet"))
            #expect(try await manager.workspace(key: key("quiet")).state == .sleeping, "a snapshot never boots")
            #expect(snapshot.sizeBytes == 7)
            await manager.shutdown()

            manager = try makeManager(directory)
            #expect(try await manager.snapshots(key: key("quiet")).items.map(\.id) == [snapshot.id])
            _ = try await manager.create(key: key("copy"), config: WorkspaceConfig(fromSnapshot: snapshot.id))
            let copied = try await manager.runtime(for: key("copy")).files()
            let (fd, size) = try copied.openForReading(WorkspacePath("/workspace/notes.md"))
            close(fd)
            #expect(size == 7)
            await manager.shutdown()
        }
    }

    @Test func symlinksThatAWorkspacePlantedAreCopiedAsSymlinksNeverFollowed() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.run("hostile", "ln -s /etc/shadow /workspace/shadow; ln -s /root /workspace/rootdir; ln -s ../../../.. /workspace/up")
            let snapshot = try await manager.createSnapshot(key: key("hostile"))
            #expect(snapshot.sizeBytes == 0, "nothing outside the workspace was read")
            let stored = directory.appendingPathComponent("snapshots/\(snapshot.id)/workspace")
            for name in ["shadow", "rootdir", "up"] {
                let attributes = try FileManager.default.attributesOfItem(atPath: stored.appendingPathComponent(name).path)
                #expect(attributes[.type] as? FileAttributeType == .typeSymbolicLink, "\(name) stays a symlink")
            }
            _ = try await manager.create(key: key("hostile-fork"), config: WorkspaceConfig(fromSnapshot: snapshot.id))
            let files = try await manager.runtime(for: key("hostile-fork")).files()
            await expectCode(.forbidden) { _ = try files.openForReading(WorkspacePath("/workspace/rootdir/.bashrc")) }
            await manager.shutdown()
        }
    }

    @Test func deletingAndDestroyingRemoveTheFilesAndBadIDsAreRefused() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("a"))
            _ = try await manager.create(key: key("b"))
            let first = try await manager.createSnapshot(key: key("a"))
            let second = try await manager.createSnapshot(key: key("a"))
            #expect(try await manager.snapshots(key: key("a")).items.map(\.id) == [first.id, second.id])
            let root = directory.appendingPathComponent("snapshots")
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(first.id).path))

            await expectCode(.notFound) { try await manager.deleteSnapshot(key: key("b"), id: first.id) }
            await expectCode(.invalidArgument) { try await manager.deleteSnapshot(key: key("a"), id: "../../etc") }
            await expectCode(.notFound) { try await manager.deleteSnapshot(key: key("a"), id: "snap-aaaaaaaaaaaaaaaaaaaa") }
            await expectCode(.invalidArgument) { _ = try await manager.create(key: key("c"), config: WorkspaceConfig(fromSnapshot: "/etc")) }
            await expectCode(.notFound) { _ = try await manager.createSnapshot(key: key("absent")) }

            try await manager.deleteSnapshot(key: key("a"), id: first.id)
            #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent(first.id).path))
            await expectCode(.notFound) { _ = try await manager.create(key: key("c"), config: WorkspaceConfig(fromSnapshot: first.id)) }
            await expectCode(.notFound) { _ = try await manager.workspace(key: key("c")) }

            try await manager.destroy(key: key("a"))
            #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent(second.id).path), "destroying removes its snapshots")
            await expectCode(.notFound) { _ = try await manager.create(key: key("c"), config: WorkspaceConfig(fromSnapshot: second.id)) }
            await manager.shutdown()
        }
    }
}

/// Writes small files through the fs layer.
enum FileFixtureWriter {
    static func write(_ files: WorkspaceFiles, _ path: String, _ text: String) async throws {
        let chunks = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            continuation.yield(ByteBuffer(string: text))
            continuation.finish()
        }
        _ = try await files.write(try WorkspacePath(path), chunks: chunks)
    }
}

func expectCode(_ code: AgentBoxError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("expected \(code), got success", sourceLocation: sourceLocation)
    } catch let error as AgentBoxError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
}
