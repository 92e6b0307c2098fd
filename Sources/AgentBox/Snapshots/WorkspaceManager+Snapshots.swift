import AgentBoxAPI
import AgentBoxStore
import CAgentBoxSandbox
import Foundation
import NIOPosix

/// Snapshots and forks.
///
/// A snapshot is a copy of a workspace's persistent files (`/workspace` and `/home/agent`) in
/// `<data-dir>/snapshots/<id>/`, with the workspace's config; a fork is a new workspace whose files start as a copy
/// of a snapshot's. Copies share blocks where the file system can (reflinks on btrfs and XFS) and are in-kernel
/// copies elsewhere (ext4). Taking a snapshot never boots the workspace; a snapshot of a running workspace is taken
/// file by file while its processes may write, so sleep it first for a point-in-time copy.
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
        _ = try runtime.files()  // its directories exist from here on, even before a first boot
        let id = Self.newSnapshotID()
        let root = configuration.snapshotsDirectory
        let staging = root.appendingPathComponent(".partial-\(id)").path
        let final = root.appendingPathComponent(id).path
        let source = runtime.directory
        let outcome = try await NIOThreadPool.singleton.runIfActive { () throws -> FileTreeCopy.Outcome in
            do {
                try FileManager.default.createDirectory(atPath: root.path, withIntermediateDirectories: true)
                guard mkdir(staging, 0o700) == 0 else { throw FileTreeCopy.failure("create \(staging)") }
                let copy = FileTreeCopy(owner: nil)
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
        let record = SnapshotRecord(id: id, workspaceKey: key, config: runtime.config, createdAt: Date(), sizeBytes: outcome.bytes)
        do {
            try await store.createSnapshot(record)
        } catch {
            try? FileTreeCopy.remove(final)
            throw error
        }
        logger.info(
            "snapshot taken",
            metadata: ["workspace.key": "\(key)", "snapshot.id": "\(id)", "bytes": "\(outcome.bytes)", "shared.bytes": "\(outcome.sharedBytes)"])
        return Self.wire(record)
    }

    /// The workspace's snapshots, oldest first. Does not boot it.
    public func snapshots(key: WorkspaceKey) async throws -> SnapshotList {
        _ = try await workspace(key: key)
        return SnapshotList(items: try await store.snapshots(of: key).map(Self.wire))
    }

    /// Deletes one of the workspace's snapshots and its files. Workspaces forked from it are not affected.
    public func deleteSnapshot(key: WorkspaceKey, id: String) async throws {
        try checkOpen()
        _ = try await workspace(key: key)
        let record = try await snapshotRecord(id: id)
        guard record.workspaceKey == key else { throw Self.snapshotNotFound(id) }
        guard try await store.deleteSnapshot(id: id) else { throw Self.snapshotNotFound(id) }
        let directory = configuration.snapshotsDirectory.appendingPathComponent(id).path
        try await NIOThreadPool.singleton.runIfActive { try FileTreeCopy.remove(directory) }
    }

    /// Removes the files of every snapshot of `key` (its records go with the workspace's).
    func removeSnapshotFiles(of key: WorkspaceKey) async {
        guard let records = try? await store.snapshots(of: key), !records.isEmpty else { return }
        let directories = records.map { configuration.snapshotsDirectory.appendingPathComponent($0.id).path }
        let logger = logger
        try? await NIOThreadPool.singleton.runIfActive {
            for directory in directories {
                do { try FileTreeCopy.remove(directory) } catch {
                    logger.error("could not remove a snapshot's files", metadata: ["path": "\(directory)", "error": "\(error)"])
                }
            }
        }
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
        let (gate, open) = AsyncStream<Never>.makeStream()
        let waiter = Task { for await _ in gate {} }
        let registered = pendingCreations.withLock { pending -> Bool in
            guard pending[key] == nil else { return false }
            pending[key] = waiter
            return true
        }
        guard registered else {
            open.finish()
            await waitForPendingCreation(of: key)
            return try await createFromSnapshot(key: key, config: config, snapshotID: snapshotID)
        }
        defer {
            pendingCreations.withLock { _ = $0.removeValue(forKey: key) }
            open.finish()
        }
        let (stored, created) = try await store.createWorkspace(record)
        guard created else { return (try await runtime(for: stored).snapshot, false) }
        let source = configuration.snapshotsDirectory.appendingPathComponent(snapshotID).path
        let destination = configuration.workspaceDirectory(id: stored.id).path
        let owner = configuration.fileOwner(sandboxNumber: stored.sandboxNumber)
        do {
            let outcome = try await NIOThreadPool.singleton.runIfActive { () throws -> FileTreeCopy.Outcome in
                try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
                let copy = FileTreeCopy(owner: owner)
                var outcome = try copy.copy(from: source + "/workspace", to: destination + "/workspace")
                outcome.bytes += try copy.copy(from: source + "/home", to: destination + "/home").bytes
                try Self.flush(destination)
                return outcome
            }
            logger.info(
                "workspace forked", metadata: ["workspace.key": "\(key)", "snapshot.id": "\(snapshotID)", "bytes": "\(outcome.bytes)"])
        } catch {
            _ = try? await store.deleteWorkspace(key: key)
            try? FileTreeCopy.remove(destination)
            throw error
        }
        return (try await runtime(for: stored).snapshot, true)
    }

    /// Returns once no fork of `key` is being created.
    func waitForPendingCreation(of key: WorkspaceKey) async {
        while let pending = pendingCreations.withLock({ $0[key] }) { await pending.value }
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
