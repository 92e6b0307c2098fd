import AgentBoxBlobs
import Foundation
import Logging
import Synchronization

/// Checkpoints of workspaces' files in a ``BlobStore`` (an S3-compatible one in a cluster), by ``FileCheckpointer``:
/// per workspace id, a prefix `workspaces/<id>` with its manifests and `latest`; contents are content-addressed
/// (`blobs/<sha256>`) and shared by all. Which checkpoint a takeover restores is not `latest` but the one the lease
/// holder recorded in the cluster's store (`commit`, fenced), so a stale owner's late checkpoint is never restored.
///
/// The last manifest written per workspace is kept in memory, so that the next checkpoint reads only files whose
/// size, mtime or inode changed, and uploads only contents the store lacks.
public final class BlobCheckpointStore: WorkspaceCheckpointStore {
    let blobs: any BlobStore
    let checkpointer: FileCheckpointer
    let logger: Logger
    /// Checkpoints kept per workspace (older ones' manifests are deleted; contents stay, see docs/BLOBS.md).
    let keep: Int
    private let previous = Mutex<[String: CheckpointManifest]>([:])

    public init(blobs: any BlobStore, keep: Int = 5, logger: Logger) {
        self.blobs = blobs
        self.keep = keep
        self.logger = logger
        checkpointer = FileCheckpointer(concurrency: 8, logger: logger)
    }

    /// A store on the S3-compatible server `configuration` names; makes the bucket when it is missing.
    public static func open(s3 configuration: S3Configuration, logger: Logger) async throws -> BlobCheckpointStore {
        let client = S3Client(configuration: configuration, logger: logger)
        try await client.createBucket()
        return BlobCheckpointStore(blobs: S3BlobStore(client: client), logger: logger)
    }

    static func prefix(_ workspaceId: String) -> String { "workspaces/\(workspaceId)" }

    public func checkpoint(
        workspaceId: String, root: URL, owners: OwnerMapping, commit: @escaping @Sendable (String) async throws -> Void
    ) async throws -> CheckpointFigures {
        let prefix = Self.prefix(workspaceId)
        var last = previous.withLock { $0[workspaceId] }
        if last == nil { last = try await checkpointer.latestManifest(prefix: prefix, in: blobs) }
        let figures = Mutex<FileCheckpointer.Progress?>(nil)
        let manifest = try await checkpointer.checkpoint(
            root: root, into: blobs, prefix: prefix, previous: last,
            mapOwner: { uid, gid in (owners.inside(uid), owners.inside(gid)) },
            progress: { progress in figures.withLock { $0 = progress } },
            commit: { manifest in try await commit(manifest.id) })
        previous.withLock { $0[workspaceId] = manifest }
        _ = try? await checkpointer.prune(prefix: prefix, in: blobs, keep: keep, sparing: manifest.id)
        let done = figures.withLock { $0 }
        let files = manifest.entries.filter { $0.kind == CheckpointManifest.Entry.Kind.file }
        return CheckpointFigures(
            files: files.count, bytes: files.reduce(0) { $0 + $1.size }, uploadedObjects: done?.objectsUploaded ?? 0,
            uploadedBytes: done?.bytesUploaded ?? 0)
    }

    public func restore(workspaceId: String, checkpointId: String, into root: URL, owners: OwnerMapping) async throws {
        let prefix = Self.prefix(workspaceId)
        let manifest = try await checkpointer.manifest(prefix: prefix, id: checkpointId, in: blobs)
        try await checkpointer.restore(manifest, from: blobs, into: root, mapOwner: { uid, gid in (owners.host(uid), owners.host(gid)) })
        previous.withLock { $0[workspaceId] = manifest }
    }

    static func snapshotPrefix(_ id: String) -> String { "snapshots/\(id)" }

    public func storeSnapshot(id: String, workspaceId: String, root: URL, owners: OwnerMapping) async throws -> CheckpointFigures {
        let figures = Mutex<FileCheckpointer.Progress?>(nil)
        // A btrfs snapshot keeps its workspace's inode numbers, sizes and mtimes: against the workspace's last
        // checkpoint, only files changed since are read.
        let manifest = try await checkpointer.checkpoint(
            root: root, into: blobs, prefix: Self.snapshotPrefix(id), previous: previous.withLock { $0[workspaceId] },
            mapOwner: { uid, gid in (owners.inside(uid), owners.inside(gid)) },
            progress: { progress in figures.withLock { $0 = progress } })
        let done = figures.withLock { $0 }
        let files = manifest.entries.filter { $0.kind == CheckpointManifest.Entry.Kind.file }
        return CheckpointFigures(
            files: files.count, bytes: files.reduce(0) { $0 + $1.size }, uploadedObjects: done?.objectsUploaded ?? 0,
            uploadedBytes: done?.bytesUploaded ?? 0)
    }

    public func restoreSnapshot(id: String, into root: URL, owners: OwnerMapping) async throws -> Bool {
        try await checkpointer.restoreLatest(
            prefix: Self.snapshotPrefix(id), from: blobs, into: root, mapOwner: { uid, gid in (owners.host(uid), owners.host(gid)) }) != nil
    }

    public func deleteSnapshot(id: String) async throws {
        try await blobs.deleteAll(prefix: Self.snapshotPrefix(id) + "/")
    }

    static func imagePrefix(_ id: String) -> String { "images/\(id)" }

    public func storeImage(id: String, root: URL) async throws -> CheckpointFigures {
        let figures = Mutex<FileCheckpointer.Progress?>(nil)
        let manifest = try await checkpointer.checkpoint(
            root: root, into: blobs, prefix: Self.imagePrefix(id), previous: nil, progress: { progress in figures.withLock { $0 = progress } })
        let done = figures.withLock { $0 }
        let files = manifest.entries.filter { $0.kind == CheckpointManifest.Entry.Kind.file }
        return CheckpointFigures(
            files: files.count, bytes: files.reduce(0) { $0 + $1.size }, uploadedObjects: done?.objectsUploaded ?? 0,
            uploadedBytes: done?.bytesUploaded ?? 0)
    }

    public func restoreImage(id: String, into root: URL) async throws -> Bool {
        try await checkpointer.restoreLatest(prefix: Self.imagePrefix(id), from: blobs, into: root) != nil
    }

    public func deleteImage(id: String) async throws {
        try await blobs.deleteAll(prefix: Self.imagePrefix(id) + "/")
    }

    public func deleteCheckpoints(workspaceId: String) async throws {
        previous.withLock { $0[workspaceId] = nil }
        try await blobs.deleteAll(prefix: Self.prefix(workspaceId) + "/")
    }
}
