import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import Foundation
import Logging
import CoreMetrics
import Synchronization
import NIOPosix

/// Where a cluster keeps checkpoints of workspaces' files (an S3-compatible blob store): what the manager needs of it.
public protocol WorkspaceCheckpointStore: Sendable {
    /// Uploads what changed under `root` since workspace `workspaceId`'s last checkpoint, then calls `commit` with
    /// the new checkpoint's id (which records it where takeovers look: the cluster's store, fenced by the lease); a
    /// checkpoint whose commit throws is not the workspace's. `owners` maps host ids to the ids seen inside.
    func checkpoint(
        workspaceId: String, root: URL, owners: OwnerMapping, commit: @escaping @Sendable (String) async throws -> Void
    ) async throws -> CheckpointFigures

    /// Recreates checkpoint `checkpointId` of the workspace into `root` (an empty directory). `owners` maps ids seen
    /// inside to host ids.
    func restore(workspaceId: String, checkpointId: String, into root: URL, owners: OwnerMapping) async throws

    /// Deletes every checkpoint of the workspace (it was destroyed).
    func deleteCheckpoints(workspaceId: String) async throws

    /// Stores snapshot `id` (the tree under `root`, taken from workspace `workspaceId`, whose last checkpoint saves
    /// reading unchanged files again), so that any node can fork from it.
    func storeSnapshot(id: String, workspaceId: String, root: URL, owners: OwnerMapping) async throws -> CheckpointFigures

    /// Recreates snapshot `id` into `root` (an empty directory); `false` when the blob store does not have it.
    func restoreSnapshot(id: String, into root: URL, owners: OwnerMapping) async throws -> Bool

    /// Deletes snapshot `id` from the blob store.
    func deleteSnapshot(id: String) async throws

    /// Stores image `id` (the tree under `root`, its ids canonical already), so that any node can use it.
    func storeImage(id: String, root: URL) async throws -> CheckpointFigures

    /// Recreates image `id` into `root` (an empty directory), ids as stored; `false` when the blob store lacks it.
    func restoreImage(id: String, into root: URL) async throws -> Bool

    /// Deletes image `id` from the blob store.
    func deleteImage(id: String) async throws
}

/// How file owners translate between the host and a workspace.
public struct OwnerMapping: Sendable {
    /// Host id → id as seen inside (ids of no workspace stay as they are).
    public let inside: @Sendable (UInt32) -> UInt32
    /// Id as seen inside → host id.
    public let host: @Sendable (UInt32) -> UInt32

    public init(inside: @escaping @Sendable (UInt32) -> UInt32, host: @escaping @Sendable (UInt32) -> UInt32) {
        self.inside = inside
        self.host = host
    }

    /// Ids as they are (a server whose sandboxes do not run as their own ids).
    public static let identity = OwnerMapping(inside: { $0 }, host: { $0 })
}

/// What a checkpoint did.
public struct CheckpointFigures: Sendable, Equatable {
    public var files: Int
    public var bytes: Int64
    /// Objects uploaded (files whose content the blob store did not have yet).
    public var uploadedObjects: Int
    public var uploadedBytes: Int64

    public init(files: Int, bytes: Int64, uploadedObjects: Int, uploadedBytes: Int64) {
        self.files = files
        self.bytes = bytes
        self.uploadedObjects = uploadedObjects
        self.uploadedBytes = uploadedBytes
    }
}

extension WorkspaceManager {
    /// Makes sure this node serves workspace `key`: takes (or renews) its lease. Throws `unavailable` naming the owner
    /// when another live node serves it (the server forwards such requests before they get here). Without a cluster,
    /// does nothing.
    public func claimLocally(_ key: WorkspaceKey) async throws {
        guard let cluster else { return }
        if case .remote(let node) = try await cluster.claim(key) {
            throw AgentBoxError(.unavailable, "workspace '\(key)' is served by node '\(node.id)' (\(node.address))")
        }
    }

    /// After this node took workspace `record` over from another, puts its files in place before it is loaded: the
    /// latest checkpoint, unless the files this node already has are at least as new (it held the workspace last).
    func prepareTakenOverFiles(_ record: WorkspaceRecord) async throws {
        guard let cluster, let epoch = cluster.pendingTakeover(record.key) else { return }
        let stampURL = clusterStamp(of: record)
        let localEpoch = (try? String(contentsOf: stampURL, encoding: .utf8)).flatMap { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let directory = directory(of: record)
        let haveFiles = FileManager.default.fileExists(atPath: directory.path)
        if let checkpoints = configuration.checkpoints {
            let lease = try await cluster.store.lease(key: record.key)
            let checkpointId = lease?.checkpointId
            let latest = checkpointId == nil ? nil : lease?.checkpointEpoch
            let keep = haveFiles && (latest == nil || (localEpoch.map { latest! <= $0 } ?? false))
            if !keep {
                let started = ContinuousClock.now
                try await replaceFiles(of: record, directory: directory, haveFiles: haveFiles)
                let target = diskPool?.holdsWorkspace(id: record.id) == true ? diskPool!.workspaceVolume(id: record.id) : configuration.workspaceDirectory(id: record.id)
                if let checkpointId {
                    // A restore fills an empty directory: the new subvolume's two empty folders come from the checkpoint.
                    for name in ["workspace", "home"] { rmdir(target.appendingPathComponent(name).path) }
                    try await checkpoints.restore(workspaceId: record.id, checkpointId: checkpointId, into: target, owners: ownerMapping(record))
                }
                logger.info(
                    checkpointId != nil ? "restored a workspace's files from its last checkpoint" : "took over a workspace that has no checkpoint: its files start empty",
                    metadata: ["workspace.key": "\(record.key)", "epoch": "\(epoch)", "ms": "\((ContinuousClock.now - started).components.seconds * 1000)"])
            }
        } else if !haveFiles {
            try await replaceFiles(of: record, directory: directory, haveFiles: false)
        }
        try FileManager.default.createDirectory(at: stampURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        try "\(epoch)\n".write(to: stampURL, atomically: true, encoding: .utf8)
        cluster.acknowledgeTakeover(record.key, epoch: epoch)
    }

    /// Removes the workspace's files here (if any) and makes its empty subvolume (or directory) again.
    private func replaceFiles(of record: WorkspaceRecord, directory: URL, haveFiles: Bool) async throws {
        await configuration.sandbox?.forgetWorkspace(record.id)
        if let pool = diskPool {
            let (id, group) = (record.id, record.sandboxNumber)
            if pool.holdsWorkspace(id: id) {
                try await NIOThreadPool.singleton.runIfActive { try pool.deleteWorkspace(id: id, group: group) }
            } else if haveFiles {
                try FileTreeCopy.remove(directory.path)
            }
            let limit = diskLimitBytes(record.config.limits)
            let owner = configuration.fileOwner(sandboxNumber: record.sandboxNumber)
            try await NIOThreadPool.singleton.runIfActive { try pool.createWorkspace(id: id, group: group, limitBytes: limit, owner: owner) }
        } else {
            if haveFiles { try FileTreeCopy.remove(directory.path) }
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
    }

    /// Where this node notes the lease epoch under which it last held the workspace's files.
    func clusterStamp(of record: WorkspaceRecord) -> URL {
        configuration.dataDirectory.appendingPathComponent("cluster", isDirectory: true).appendingPathComponent("\(record.id).epoch")
    }

    /// Host ids ↔ ids inside for `record`'s files.
    func ownerMapping(_ record: WorkspaceRecord) -> OwnerMapping {
        guard configuration.sandbox?.runsAsWorkspaceUID == true else { return .identity }
        let ids = configuration.fileIDs(sandboxNumber: record.sandboxNumber)
        // Inside ids from any workspace range (files not yet handed to the storage range carry the workspace's own).
        let canonical = OwnershipWalk(from: .workspaceRanges(base: configuration.sandboxUIDBase), to: .canonical)
        return OwnerMapping(inside: { ids.inside($0) ?? canonical.target($0) }, host: { ids.host($0) ?? $0 })
    }

    // MARK: Checkpoints

    /// Checkpoints the files of the loaded workspace `key` now (coalescing with one under way: a request that comes
    /// while one runs makes one more afterwards). A consistent point in time: the files are read from a read-only
    /// snapshot of the workspace's subvolume, taken first. Does nothing without a blob store or a lease.
    public func checkpoint(key: WorkspaceKey) async {
        guard let checkpoints = configuration.checkpoints, let cluster, cluster.heldEpoch(key) != nil else { return }
        guard let runtime = runtimes.runtime(key) else { return }
        let record = runtime.record
        // The checkpoint becomes the one a takeover restores only while this node still holds the lease.
        let commit: @Sendable (String) async throws -> Void = { id in try await cluster.store.recordCheckpoint(key: key, id: id) }
        await checkpointRuns.run(key) {
            let started = ContinuousClock.now
            do {
                let figures: CheckpointFigures
                if let pool = self.diskPool, pool.holdsWorkspace(id: record.id) {
                    let snapshotID = "checkpoint-\(UUID().uuidString.lowercased())"
                    try await NIOThreadPool.singleton.runIfActive { try pool.snapshot(workspace: record.id, group: record.sandboxNumber, as: snapshotID) }
                    defer {
                        try? pool.deleteSnapshot(id: snapshotID, group: record.sandboxNumber)
                    }
                    figures = try await checkpoints.checkpoint(
                        workspaceId: record.id, root: pool.snapshotVolume(id: snapshotID), owners: self.ownerMapping(record), commit: commit)
                } else {
                    figures = try await checkpoints.checkpoint(
                        workspaceId: record.id, root: runtime.directory, owners: self.ownerMapping(record), commit: commit)
                }
                self.logger.debug(
                    "checkpoint",
                    metadata: [
                        "workspace.key": "\(key)", "files": "\(figures.files)", "uploaded": "\(figures.uploadedObjects)",
                        "uploaded.bytes": "\(figures.uploadedBytes)", "ms": "\((ContinuousClock.now - started) / .milliseconds(1))",
                    ])
                self.metrics.checkpoints.increment()
            } catch let error as StoreError where error.code == .fenced {
                // Paused past its lease, say: what this node has is older than what the new owner serves.
                self.logger.warning("checkpoint not recorded: another node took the workspace over", metadata: ["workspace.key": "\(key)"])
            } catch {
                self.logger.error("checkpoint failed", metadata: ["workspace.key": "\(key)", "error": "\(error)"])
            }
        }
    }

    /// Checkpoints every awake workspace this node holds, every `interval`, until cancelled.
    func runCheckpoints(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            for runtime in runtimes.all where runtime.state == .running {
                await checkpoint(key: runtime.key)
            }
        }
    }

    /// Another node took workspace `key`'s lease: stop serving it here, writing nothing (the store would refuse).
    func leaseLost(_ key: WorkspaceKey) async {
        guard let runtime = runtimes.runtime(key) else { return }
        runtimes.remove(runtime)
        let sessions = loadedSessions.withLock { table in
            let mine = table.filter { $0.value.workspaceKey == key }
            for id in mine.keys { table[id] = nil }
            return Array(mine.values)
        }
        for session in sessions { await session.shutdown() }
        await runtime.sleep()
        await runtime.finishEventStreams()
        forgetPreviews(of: key)
        cron.forget(workspace: key)
    }
}

/// Runs one piece of work per key at a time; a request that comes while it runs makes it run once more afterwards
/// (however many came), so the last request's state is always covered.
actor CoalescingRuns {
    private var running: [WorkspaceKey: Task<Void, Never>] = [:]
    private var again: Set<WorkspaceKey> = []

    func run(_ key: WorkspaceKey, _ work: @escaping @Sendable () async -> Void) async {
        if let task = running[key] {
            again.insert(key)
            await task.value
            if let next = running[key] { await next.value }
            return
        }
        while true {
            let task = Task { await work() }
            running[key] = task
            await task.value
            running[key] = nil
            guard again.remove(key) != nil else { return }
        }
    }
}
