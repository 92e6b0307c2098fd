import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import CAgentBoxSandbox
import Foundation
import Logging
import NIOPosix
import Synchronization

/// Snapshots and forks.
///
/// A snapshot is a copy of a workspace's persistent files (`/workspace` and `/home/agent`) with the workspace's
/// config; a fork is a new workspace whose files start as a snapshot's. Taking a snapshot never boots the workspace.
///
/// In the disk pool a snapshot is a read-only btrfs snapshot of the workspace's subvolume (`pool/snapshots/<id>`):
/// one transaction whatever the workspace holds, of one instant, in the workspace's quota group (what it keeps alive
/// counts against the workspace's `diskMb`); a fork is a writable snapshot of it. Without a pool (or for a workspace
/// made before it) a snapshot is a copy in `<data-dir>/snapshots/<id>/` by ``FileTreeCopy``, sharing blocks where
/// the file system can (reflinks on btrfs and XFS), taken file by file while the workspace's processes may write.
extension WorkspaceManager {
    /// The most snapshots one workspace may keep.
    public static let maxSnapshotsPerWorkspace = 64

    /// Takes a snapshot of the workspace's persistent files. Does not boot it.
    public func createSnapshot(key: WorkspaceKey) async throws -> Snapshot {
        try checkOpen()
        let runtime = try await runtime(for: key)
        let count = try await store.snapshots(of: key).count
        guard count < Self.maxSnapshotsPerWorkspace else {
            throw AgentBoxError(.conflict, "workspace '\(key)' has \(count) snapshots, the most it may keep; delete one first")
        }
        let id = Self.newSnapshotID()
        let sizeBytes: Int64
        var removeFiles: @Sendable () throws -> Void
        if let pool = diskPool, pool.holdsWorkspace(id: runtime.id) {
            sizeBytes = try await snapshotInPool(pool, runtime: runtime, id: id)
            let group = runtime.sandboxNumber
            removeFiles = { try pool.deleteSnapshot(id: id, group: group) }
        } else {
            sizeBytes = try await copySnapshot(runtime: runtime, id: id)
            let final = configuration.snapshotsDirectory.appendingPathComponent(id).path
            removeFiles = { try FileTreeCopy.remove(final) }
        }
        let record = SnapshotRecord(id: id, workspaceKey: key, config: runtime.config, createdAt: Date(), sizeBytes: sizeBytes)
        do {
            try await storeSnapshotInBlobs(id: id, runtime: runtime)
            try await store.createSnapshot(record)
        } catch {
            try? await NIOThreadPool.singleton.runIfActive(removeFiles)
            if let checkpoints = configuration.checkpoints, cluster != nil { try? await checkpoints.deleteSnapshot(id: id) }
            throw error
        }
        return Self.wire(record)
    }

    /// In a cluster, stores snapshot `id` in the blob store too, so that a fork from it can be made on any node (and
    /// checkpoints the workspace, which then costs little: the snapshot uploaded its contents).
    private func storeSnapshotInBlobs(id: String, runtime: WorkspaceRuntime) async throws {
        guard let checkpoints = configuration.checkpoints, cluster != nil else { return }
        let started = ContinuousClock.now
        let root: URL
        if let pool = diskPool, pool.holdsSnapshot(id: id) { root = pool.snapshotVolume(id: id) } else {
            root = configuration.snapshotsDirectory.appendingPathComponent(id)
        }
        let figures = try await checkpoints.storeSnapshot(id: id, workspaceId: runtime.id, root: root, owners: ownerMapping(runtime.record))
        logger.info(
            "snapshot stored in the blob store",
            metadata: [
                "snapshot.id": "\(id)", "files": "\(figures.files)", "uploaded": "\(figures.uploadedObjects)",
                "ms": "\((ContinuousClock.now - started).milliseconds)",
            ])
        await checkpoint(key: runtime.key)
    }

    /// Snapshots the workspace's subvolume as `id`; returns the bytes charged to the workspace's quota group then.
    /// Refuses (and undoes) a snapshot of a workspace at its disk limit: it would keep every byte the workspace
    /// holds, so that deleting files could free nothing.
    private func snapshotInPool(_ pool: DiskPool, runtime: WorkspaceRuntime, id: String) async throws -> Int64 {
        let (workspace, group, key) = (runtime.id, runtime.sandboxNumber, runtime.key)
        let limit = runtime.limits.diskMb.map { Int64($0) << 20 }
        let started = ContinuousClock.now
        let usage = try await NIOThreadPool.singleton.runIfActive { () throws -> Int64 in
            try pool.snapshot(workspace: workspace, group: group, as: id)
            let usage = pool.usage(group: group) ?? 0
            if let limit, limit - usage < Self.fullMargin {
                try? pool.deleteSnapshot(id: id, group: group)
            }
            return usage
        }
        if let limit, limit - usage < Self.fullMargin {
            throw AgentBoxError(
                .conflict,
                "workspace '\(key)' is at its disk quota (\(Self.mebibytes(usage)) of \(limit >> 20) MiB, what its snapshots keep "
                    + "included): a snapshot now would keep all of it; delete files or snapshots, or raise limits.diskMb")
        }
        logger.info(
            "snapshot taken",
            metadata: ["workspace.key": "\(key)", "snapshot.id": "\(id)", "charged.bytes": "\(usage)", "ms": "\((ContinuousClock.now - started).milliseconds)"])
        return usage
    }

    /// A workspace with less than this left of its disk limit is full (btrfs refuses writes a little before the
    /// limit itself: it reserves metadata ahead).
    static let fullMargin: Int64 = 1 << 20

    static func mebibytes(_ bytes: Int64) -> String { String(format: "%.1f", Double(bytes) / 1_048_576) }

    /// Copies the workspace's directories into `snapshots/<id>`; returns the bytes of its files.
    private func copySnapshot(runtime: WorkspaceRuntime, id: String) async throws -> Int64 {
        _ = try runtime.files()  // its directories exist from here on, even before a first boot
        let root = configuration.snapshotsDirectory
        let staging = root.appendingPathComponent(".partial-\(id)").path
        let final = root.appendingPathComponent(id).path
        let source = runtime.directory
        let outcome = try await NIOThreadPool.singleton.runIfActive { () throws -> FileTreeCopy.Outcome in
            do {
                try FileManager.default.createDirectory(atPath: root.path, withIntermediateDirectories: true)
                guard mkdir(staging, 0o700) == 0 else { throw FileTreeCopy.failure("create \(staging)") }
                let copy = FileTreeCopy(ownership: nil)
                var outcome = try copy.copy(from: source.appendingPathComponent("workspace").path, to: staging + "/workspace")
                let home = try copy.copy(from: source.appendingPathComponent("home").path, to: staging + "/home")
                outcome.bytes += home.bytes
                outcome.sharedBytes += home.sharedBytes
                try Self.flush(staging)
                guard rename(staging, final) == 0 else { throw FileTreeCopy.failure("rename \(staging)") }
                return outcome
            } catch {
                try? FileTreeCopy.remove(staging)
                throw error
            }
        }
        logger.info(
            "snapshot taken",
            metadata: ["workspace.key": "\(runtime.key)", "snapshot.id": "\(id)", "bytes": "\(outcome.bytes)", "shared.bytes": "\(outcome.sharedBytes)"])
        return outcome.bytes
    }

    /// The workspace's snapshots, oldest first. Does not boot it.
    public func snapshots(key: WorkspaceKey) async throws -> SnapshotList {
        _ = try await workspace(key: key)
        return SnapshotList(items: try await store.snapshots(of: key).map(Self.wire))
    }

    /// Deletes one of the workspace's snapshots and its files. Workspaces forked from it are not affected.
    public func deleteSnapshot(key: WorkspaceKey, id: String) async throws {
        try checkOpen()
        let runtime = try await runtime(for: key)
        let record = try await snapshotRecord(id: id)
        guard record.workspaceKey == key else { throw Self.snapshotNotFound(id) }
        guard try await store.deleteSnapshot(id: id) else { throw Self.snapshotNotFound(id) }
        await deleteSnapshotBlobs([id])
        let remove = snapshotRemoval(id: id, group: runtime.sandboxNumber)
        try await NIOThreadPool.singleton.runIfActive(remove)
    }

    /// Removes the files of every snapshot of `key` (its records go with the workspace's).
    func removeSnapshotFiles(of key: WorkspaceKey, group: Int) async {
        guard let records = try? await store.snapshots(of: key), !records.isEmpty else { return }
        await deleteSnapshotBlobs(records.map(\.id))
        let removals = records.map { (id: $0.id, remove: snapshotRemoval(id: $0.id, group: group)) }
        let logger = logger
        try? await NIOThreadPool.singleton.runIfActive {
            for removal in removals {
                do { try removal.remove() } catch {
                    logger.error("could not remove a snapshot's files", metadata: ["snapshot.id": "\(removal.id)", "error": "\(error)"])
                }
            }
        }
    }

    /// Deletes snapshots from the blob store (in a cluster); failures are logged: what stays costs space only.
    private func deleteSnapshotBlobs(_ ids: [String]) async {
        guard let checkpoints = configuration.checkpoints, cluster != nil else { return }
        for id in ids {
            do { try await checkpoints.deleteSnapshot(id: id) } catch {
                logger.warning("could not delete a snapshot from the blob store", metadata: ["snapshot.id": "\(id)", "error": "\(error)"])
            }
        }
    }

    /// What deletes snapshot `id`'s files (of the workspace whose quota group is `group`): its subvolume in the pool,
    /// or its copy.
    private func snapshotRemoval(id: String, group: Int) -> @Sendable () throws -> Void {
        if let pool = diskPool, pool.holdsSnapshot(id: id) { return { try pool.deleteSnapshot(id: id, group: group) } }
        let directory = configuration.snapshotsDirectory.appendingPathComponent(id).path
        return { try FileTreeCopy.remove(directory) }
    }

    // MARK: Forks

    /// Creates the workspace `key` from snapshot `config.fromSnapshot`: its files are a copy of the snapshot's, and
    /// fields that `config` leaves out are the snapshot's workspace's. An existing workspace is returned unchanged.
    func createFromSnapshot(key: WorkspaceKey, config: WorkspaceConfig, snapshotID: String) async throws -> (workspace: Workspace, created: Bool) {
        let snapshot = try await snapshotRecord(id: snapshotID)
        if try await store.workspace(key: key) != nil { return (try await runtime(for: key).snapshot, false) }
        var merged = snapshot.config
        merged.fromSnapshot = snapshotID
        if let limits = config.limits { merged.limits = limits }
        if let env = config.env { merged.env = env }
        if let network = config.network { merged.network = network }
        if let mounts = config.mounts { merged.mounts = mounts }
        merged = try validated(merged)

        let record = WorkspaceRecord(id: UUID().uuidString.lowercased(), key: key, config: merged, createdAt: Date(), lastActiveAt: Date())
        // Until the files are in place, nobody may load (and boot) the new workspace: requests for it wait here.
        return try await whileCreating(key) {
            let (stored, created) = try await self.store.createWorkspace(record)
            guard created else { return (try await self.runtime(for: stored).snapshot, false) }
            do {
                let started = ContinuousClock.now
                let bytes = try await self.placeFork(of: snapshotID, into: stored)
                self.logger.info(
                    "workspace forked",
                    metadata: [
                        "workspace.key": "\(key)", "snapshot.id": "\(snapshotID)", "bytes": "\(bytes)",
                        "ms": "\((ContinuousClock.now - started).milliseconds)",
                    ])
            } catch {
                _ = try? await self.store.deleteWorkspace(key: key)
                throw error
            }
            return (try await self.runtime(for: stored).snapshot, true)
        }
    }

    /// Puts the files of snapshot `snapshotID` in place as those of the new workspace `record`, owned by its uid:
    /// a writable snapshot in the pool; else a copy, into a subvolume of its own when there is a pool. Returns the
    /// bytes copied (0 for a snapshot in the pool).
    private func placeFork(of snapshotID: String, into record: WorkspaceRecord) async throws -> Int64 {
        let ownership = configuration.ownershipWalk(sandboxNumber: record.sandboxNumber)
        let limit = diskLimitBytes(record.config.limits)
        let (id, group) = (record.id, record.sandboxNumber)
        if let pool = diskPool, pool.holdsSnapshot(id: snapshotID) {
            // With the storage range a snapshot's files already carry the ids the fork's must (its marker says so):
            // nothing to walk, the fork is one btrfs snapshot. A snapshot from before the range is walked here, so
            // the fork's files never carry its source's range (which that workspace's processes run as).
            let configuration = self.configuration
            let walk = configuration.filesCarryStorageIDs(in: pool.snapshotVolume(id: snapshotID)) ? nil : ownership
            try await NIOThreadPool.singleton.runIfActive {
                try pool.fork(snapshotID: snapshotID, into: id, group: group, limitBytes: limit, ownership: walk)
                if walk != nil { try configuration.markStorageIDs(in: pool.workspaceVolume(id: id)) }
            }
            return 0
        }
        let source = configuration.snapshotsDirectory.appendingPathComponent(snapshotID).path
        let pool = diskPool
        let owner = configuration.fileOwner(sandboxNumber: record.sandboxNumber)
        let destination = pool?.workspaceVolume(id: id).path ?? configuration.workspaceDirectory(id: id).path
        if let checkpoints = configuration.checkpoints, cluster != nil, !FileManager.default.fileExists(atPath: source) {
            // Taken on another node of the cluster: from the blob store.
            return try await restoreSnapshotFromBlobs(checkpoints, snapshotID: snapshotID, into: record, destination: destination)
        }
        return try await NIOThreadPool.singleton.runIfActive { () throws -> Int64 in
            do {
                if let pool {
                    try pool.createWorkspace(id: id, group: group, limitBytes: limit, owner: owner)
                    // The copy makes these two itself.
                    rmdir(destination + "/workspace")
                    rmdir(destination + "/home")
                } else {
                    try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
                }
                let copy = FileTreeCopy(ownership: ownership)
                var bytes = try copy.copy(from: source + "/workspace", to: destination + "/workspace").bytes
                bytes += try copy.copy(from: source + "/home", to: destination + "/home").bytes
                // The copy gave every file the ids of the workspace's files (the storage range, when there is one).
                try self.configuration.markStorageIDs(in: URL(fileURLWithPath: destination))
                try Self.flush(destination)
                return bytes
            } catch {
                if let pool { try? pool.deleteWorkspace(id: id, group: group) } else { try? FileTreeCopy.remove(destination) }
                throw error
            }
        }
    }

    /// Makes the new workspace `record`'s files those of snapshot `snapshotID` from the blob store; returns their bytes.
    private func restoreSnapshotFromBlobs(
        _ checkpoints: any WorkspaceCheckpointStore, snapshotID: String, into record: WorkspaceRecord, destination: String
    ) async throws -> Int64 {
        let (id, group) = (record.id, record.sandboxNumber)
        let limit = diskLimitBytes(record.config.limits)
        let owner = configuration.fileOwner(sandboxNumber: record.sandboxNumber)
        let pool = diskPool
        try await NIOThreadPool.singleton.runIfActive {
            if let pool {
                try pool.createWorkspace(id: id, group: group, limitBytes: limit, owner: owner)
                // The restore makes these two itself.
                rmdir(destination + "/workspace")
                rmdir(destination + "/home")
            }
        }
        do {
            guard try await checkpoints.restoreSnapshot(id: snapshotID, into: URL(fileURLWithPath: destination), owners: ownerMapping(record)) else {
                throw AgentBoxError(.notFound, "snapshot '\(snapshotID)' is neither on this node nor in the blob store")
            }
            try Self.flush(destination)
        } catch {
            try? await NIOThreadPool.singleton.runIfActive {
                if let pool { try? pool.deleteWorkspace(id: id, group: group) } else { try? FileTreeCopy.remove(destination) }
            }
            throw error
        }
        return try await store.snapshot(id: snapshotID)?.sizeBytes ?? 0
    }

    /// Returns once no fork of `key` is being created.
    func waitForPendingCreation(of key: WorkspaceKey) async {
        // Waited for even by a cancelled request: what it does next must not see the workspace half made. The task
        // (not a child, so not cancelled with the caller) exists only while a creation of this key is under way.
        while let pending = pendingCreations.withLock({ $0[key] }) {
            _ = await Task { await pending.wait() }.value
        }
    }

    // MARK: Helpers

    private func snapshotRecord(id: String) async throws -> SnapshotRecord {
        guard Self.isValidSnapshotID(id) else {
            throw AgentBoxError(.invalidArgument, "'\(id.prefix(80))' is not a snapshot id (snap- and 20 letters or digits)")
        }
        guard let record = try await store.snapshot(id: id) else { throw Self.snapshotNotFound(id) }
        return record
    }

    static func snapshotNotFound(_ id: String) -> AgentBoxError { AgentBoxError(.notFound, "no snapshot '\(id)'") }

    /// `snap-` and 20 characters of `[a-z0-9]` from the system's cryptographic generator.
    static func newSnapshotID() -> String { RandomID.make(prefix: "snap-", length: 20) }

    static func isValidSnapshotID(_ id: String) -> Bool { RandomID.isValid(id, prefix: "snap-", length: 20) }

    static func wire(_ record: SnapshotRecord) -> Snapshot {
        Snapshot(id: record.id, workspace: record.workspaceKey, createdAt: record.createdAt, sizeBytes: record.sizeBytes)
    }

    /// Makes what was written below `path` durable: one `syncfs` instead of an fsync per file.
    private static func flush(_ path: String) throws {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileTreeCopy.failure("open \(path)") }
        defer { close(fd) }
        guard ab_syncfs(fd) == 0 else { throw FileTreeCopy.failure("flush \(path)") }
    }
}
