import AgentBoxBlobs
import Foundation
import Synchronization
import Testing

/// The checkpoint tests, run against each store (a directory always; weed's S3 when AGENTBOX_WEED is set).
enum CheckpointScenarios {
    /// Host ids of one workspace range → the ids inside, and inside → another range's host ids, as a fork would.
    static let hostBase: UInt32 = 100_000
    static let otherBase: UInt32 = 300_000
    static let toInside: @Sendable (uid_t, gid_t) -> (uid_t, gid_t) = { uid, gid in
        (uid >= hostBase ? uid - hostBase : uid, gid >= hostBase ? gid - hostBase : gid)
    }
    static let toOther: @Sendable (uid_t, gid_t) -> (uid_t, gid_t) = { uid, gid in
        (uid == 0 ? 0 : uid + otherBase, gid == 0 ? 0 : gid + otherBase)
    }

    /// A tree checkpointed and restored (with owners mapped) is equal to the original; the manifest records what it
    /// should.
    static func roundTrip(_ store: any BlobStore) async throws {
        let source = try TemporaryDirectory("tree")
        let target = try TemporaryDirectory("restore")
        defer {
            source.remove()
            target.remove()
        }
        try Tree.makeSample(at: source.path)
        let counting = CountingBlobStore(store)
        let progress = ProgressLog()
        let checkpointer = FileCheckpointer(concurrency: 4)
        let manifest = try await checkpointer.checkpoint(
            root: source.url, into: counting, prefix: "workspaces/w1", previous: nil, mapOwner: toInside, progress: progress.record)

        let byPath = Dictionary(uniqueKeysWithValues: manifest.entries.map { ($0.path, $0) })
        #expect(manifest.version == CheckpointManifest.currentVersion)
        #expect(byPath["."]?.kind == .directory)
        #expect(byPath["a/b/c"]?.kind == .directory)
        #expect(byPath["a/empty"]?.size == 0)
        #expect(byPath["a/link-to-hello"]?.kind == .symlink)
        #expect(byPath["a/link-to-hello"]?.target == "../hello.txt")
        #expect(byPath["dangling"]?.target == "/nonexistent/target")
        #expect(byPath["a/run.sh"]?.mode == 0o755)
        #expect(byPath["empty dir"]?.mode == 0o1777)
        #expect(byPath["a/b/big.bin"]?.mtime == 1_600_000_000_123_456_789)
        #expect(byPath["a/b/big.bin"]?.sha256 == sha256Hex(Data(repeating: 7, count: 300_000)))
        if geteuid() == 0 {
            #expect(byPath["hello.txt"]?.uid == 1000 && byPath["hello.txt"]?.gid == 1001)
            #expect(byPath["a/link-to-hello"]?.uid == 1002)
            #expect(byPath["a/b"]?.uid == 1000)
        }
        // Five contents (copy1 and copy2 share one; the empty file needs none), then the manifest and the pointer.
        let puts = counting.snapshot.puts
        #expect(puts.filter { $0.hasPrefix("blobs/") }.count == 5)
        #expect(puts.filter { $0.hasPrefix("workspaces/w1/checkpoints/") }.count == 1)
        #expect(puts.last == "workspaces/w1/latest")
        let last = try #require(progress.last)
        #expect(last.blobsDone == 5 && last.blobsToCheck == 5 && last.objectsUploaded == 7)
        #expect(last.bytesDone == last.bytesToCheck)

        // The latest checkpoint is found again, equal.
        let latest = try await checkpointer.latestManifest(prefix: "workspaces/w1/", in: store)
        #expect(latest == manifest)

        try await checkpointer.restore(manifest, from: store, into: target.url, mapOwner: toOther)
        let original = try Tree.describe(source.path) { geteuid() == 0 && $0 >= hostBase ? $0 - hostBase + otherBase : $0 }
        let restored = try Tree.describe(target.path)
        #expect(restored == original)

        // A restore into a directory that is not empty is refused.
        await #expect(throws: BlobError.self) {
            try await checkpointer.restore(manifest, from: store, into: target.url)
        }
    }

    /// A second checkpoint after one file changed reads one file and uploads one blob (plus the manifest and the
    /// pointer); a restore of the latest gives the changed tree.
    static func incremental(_ store: any BlobStore) async throws {
        let source = try TemporaryDirectory("tree")
        let target = try TemporaryDirectory("restore")
        defer {
            source.remove()
            target.remove()
        }
        try Tree.makeSample(at: source.path)
        let checkpointer = FileCheckpointer()
        let prefix = "workspaces/inc-\(UUID().uuidString)"
        let first = try await checkpointer.checkpoint(root: source.url, into: store, prefix: prefix, previous: nil)

        try Data("changed\n".utf8).write(to: URL(fileURLWithPath: source.path + "/a/b/c/copy2"))
        let counting = CountingBlobStore(store)
        let progress = ProgressLog()
        let second = try await checkpointer.checkpoint(
            root: source.url, into: counting, prefix: prefix, previous: first, progress: progress.record)
        let puts = counting.snapshot.puts
        #expect(puts.filter { $0.hasPrefix("blobs/") } == ["blobs/\(sha256Hex(Data("changed\n".utf8)))"])
        #expect(puts.count == 3)
        #expect(counting.snapshot.heads == 1)
        #expect(progress.last?.filesRead == 1)
        #expect(second.parent == first.id)
        #expect(second.id > first.id)

        // Nothing changed: nothing read, nothing uploaded but the manifest and the pointer.
        counting.reset()
        let third = try await checkpointer.checkpoint(root: source.url, into: counting, prefix: prefix, previous: second)
        #expect(counting.snapshot.puts.count == 2)
        #expect(third.entries.map(\.sha256) == second.entries.map(\.sha256))

        // The same content under another prefix (another workspace) is not uploaded again: one HEAD each.
        counting.reset()
        _ = try await checkpointer.checkpoint(root: source.url, into: counting, prefix: prefix + "-fork", previous: nil)
        #expect(counting.snapshot.puts.count == 2)

        #expect(try await checkpointer.checkpointIDs(prefix: prefix, in: store) == [first.id, second.id, third.id])
        let restored = try #require(try await checkpointer.restoreLatest(prefix: prefix, from: store, into: target.url))
        #expect(restored.id == third.id)
        #expect(try Tree.describe(target.path) == (try Tree.describe(source.path)))

        // Pruning keeps the newest; the latest still restores.
        let deleted = try await checkpointer.prune(prefix: prefix, in: store, keep: 1)
        #expect(deleted == [first.id, second.id])
        #expect(try await checkpointer.checkpointIDs(prefix: prefix, in: store) == [third.id])
        #expect(try await checkpointer.latestManifest(prefix: prefix, in: store)?.id == third.id)
    }

    /// A prefix without checkpoints has no latest one; a manifest naming a missing blob fails the restore.
    static func missing(_ store: any BlobStore) async throws {
        let checkpointer = FileCheckpointer()
        #expect(try await checkpointer.latestManifest(prefix: "nobody-\(UUID().uuidString)", in: store) == nil)
        let target = try TemporaryDirectory("restore")
        defer { target.remove() }
        let ghost = String(repeating: "ab", count: 32)
        let manifest = CheckpointManifest(
            id: "x", createdAt: Date(), parent: nil,
            entries: [
                .init(path: ".", kind: .directory, mode: 0o755, uid: 0, gid: 0, mtime: 0),
                .init(path: "f", kind: .file, mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 3, sha256: ghost),
            ])
        await #expect(throws: BlobError.self) { try await checkpointer.restore(manifest, from: store, into: target.url) }
        let escaping = CheckpointManifest(
            id: "y", createdAt: Date(), parent: nil,
            entries: [.init(path: "../escape", kind: .directory, mode: 0o755, uid: 0, gid: 0, mtime: 0)])
        await #expect(throws: BlobError.self) {
            try await checkpointer.restore(escaping, from: store, into: target.url.appendingPathComponent("new"))
        }
    }
}

/// Keeps the last progress report.
final class ProgressLog: Sendable {
    private let value = Mutex<FileCheckpointer.Progress?>(nil)
    var last: FileCheckpointer.Progress? { value.withLock { $0 } }
    var record: @Sendable (FileCheckpointer.Progress) -> Void {
        { progress in self.value.withLock { $0 = progress } }
    }
}
