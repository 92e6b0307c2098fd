import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import Foundation
import Logging
import NIOPosix
import Synchronization

/// Workspaces made ahead of creates ("blanks"). Each is an id and a sandbox number reserved in the store
/// (``Store/createBlankWorkspace(id:at:)``), its storage (a subvolume of the disk pool with the default disk limit, or a
/// plain directory), its `workspace/` and `home/` with their ids in place, and, when the backend parks sandboxes, its
/// sandbox booted once and parked. A create whose config needs nothing a blank lacks (no image, mounts or toolkits)
/// takes one: one store write makes it the workspace (``Store/claimBlankWorkspace(_:as:)``), and the workspace's first
/// action takes the parked sandbox, as the wake of a sleeping workspace does, instead of making storage, a namespace,
/// overlays and mounts.
///
/// The reserve keeps `capacity` blanks and makes a new one, in the background, each time one is taken
/// (``WorkspaceManager/runBlankWorkspaces(_:)``). Blanks survive restarts (their parked sandboxes do not: a start boots
/// and parks them again). A blank belongs to no one: nothing runs in its sandbox but the init, and no request can
/// name it.
final class BlankWorkspaces: Sendable {
    /// How many blanks the reserve keeps.
    let capacity: Int

    private struct State {
        /// Blanks ready to be taken, oldest first.
        var ready: [BlankWorkspaceRecord] = []
        /// Blanks ready or being made.
        var held = 0
    }

    private let state = Mutex(State())
    /// Raised when a blank is taken (the reserve refills); only the newest raise is kept.
    let takes: AsyncStream<Void>
    private let taken: AsyncStream<Void>.Continuation

    init(capacity: Int) {
        self.capacity = max(0, capacity)
        (takes, taken) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// How many blanks are ready.
    var readyCount: Int { state.withLock { $0.ready.count } }

    /// Takes the oldest ready blank, or `nil` when none is ready.
    func take() -> BlankWorkspaceRecord? {
        let blank = state.withLock { state -> BlankWorkspaceRecord? in
            guard !state.ready.isEmpty else { return nil }
            state.held -= 1
            return state.ready.removeFirst()
        }
        if blank != nil { taken.yield() }
        return blank
    }

    /// Puts back a blank taken but not used (the key it was taken for existed already).
    func putBack(_ blank: BlankWorkspaceRecord) {
        state.withLock { state in
            state.ready.insert(blank, at: 0)
            state.held += 1
        }
    }

    /// Counts one more blank as held if the reserve has room for it; `false` when it is full.
    func reservePlace() -> Bool {
        state.withLock { state in
            guard state.held < capacity else { return false }
            state.held += 1
            return true
        }
    }

    /// A blank whose place was reserved is ready.
    func ready(_ blank: BlankWorkspaceRecord) {
        state.withLock { $0.ready.append(blank) }
    }

    /// A blank whose place was reserved could not be made.
    func releasePlace() {
        state.withLock { $0.held -= 1 }
    }

    /// Whether `config` can be given a blank: it asks for nothing a blank lacks (an image's files, mounts, toolkits,
    /// a snapshot's files). Limits, environment, network and model budgets are applied as for any workspace.
    static func fits(_ config: WorkspaceConfig) -> Bool {
        config.image == nil && config.fromSnapshot == nil && (config.mounts ?? []).isEmpty && (config.toolkits ?? []).isEmpty
    }
}

extension WorkspaceManager {
    /// Keeps the reserve of blank workspaces full until cancelled: first takes over the blanks the store holds from
    /// an earlier run (deleting those whose storage is gone, and those past the capacity), then makes one each time
    /// one is taken. A blank that cannot be made is deleted, and the next try waits, from 1 s doubling up to a minute.
    func runBlankWorkspaces(_ blanks: BlankWorkspaces) async {
        await takeOverStoredBlanks(blanks)
        var takes = blanks.takes.makeAsyncIterator()
        var failures = 0
        while !Task.isCancelled {
            if blanks.reservePlace() {
                do {
                    blanks.ready(try await makeBlankWorkspace())
                    failures = 0
                } catch {
                    blanks.releasePlace()
                    failures += 1
                    logger.warning("could not make a blank workspace", metadata: ["error": "\(error)", "failures": "\(failures)"])
                    do { try await Task.sleep(for: .seconds(1 << min(failures - 1, 6))) } catch { return }
                }
                continue
            }
            guard await takes.next() != nil else { return }
        }
    }

    /// Makes workspace `record` of a blank, when one is ready and `config` fits it; `nil` otherwise (the caller makes
    /// the workspace itself). Runs inside ``whileCreating(_:_:)`` for the key.
    func createFromBlank(_ record: WorkspaceRecord, config: WorkspaceConfig) async throws -> (workspace: Workspace, created: Bool)? {
        guard let blanks, BlankWorkspaces.fits(config) else { return nil }
        while let blank = blanks.take() {
            let claimed: (record: WorkspaceRecord, created: Bool)?
            do {
                claimed = try await store.claimBlankWorkspace(blank.id, as: record)
            } catch {
                blanks.putBack(blank)
                throw error
            }
            // Gone from the store (deleted by hand): its storage is left to the next start's check.
            guard let (stored, created) = claimed else { continue }
            guard created else {
                blanks.putBack(blank)
                return (try await updateLimits(of: stored, with: config.limits, toolkits: config.toolkits, llm: config.llm), false)
            }
            let limit = diskLimitBytes(config.limits)
            if let pool = diskPool, limit != diskLimitBytes(nil) {
                do {
                    try await NIOThreadPool.singleton.runIfActive { try pool.setLimit(group: stored.sandboxNumber, limitBytes: limit) }
                } catch {
                    _ = try? await store.deleteWorkspace(key: stored.key)
                    await configuration.sandbox?.forgetWorkspace(stored.id)
                    try? await NIOThreadPool.singleton.runIfActive { try pool.deleteWorkspace(id: stored.id, group: stored.sandboxNumber) }
                    throw error
                }
            }
            logger.info("workspace created", metadata: ["workspace.key": "\(stored.key)", "blank": "true"])
            return (Self.sleepingSnapshot(stored, configuration: configuration), true)
        }
        return nil
    }

    /// Reserves a blank in the store and makes it: storage, directories, parked sandbox. Deletes what it made when a
    /// step fails.
    private func makeBlankWorkspace() async throws -> BlankWorkspaceRecord {
        let id = UUID().uuidString.lowercased()
        let number = try await store.createBlankWorkspace(id: id, at: Date())
        let blank = BlankWorkspaceRecord(id: id, sandboxNumber: number, createdAt: Date())
        do {
            if let pool = diskPool {
                let (limit, owner) = (diskLimitBytes(nil), configuration.fileOwner(sandboxNumber: number))
                try await NIOThreadPool.singleton.runIfActive {
                    try pool.createWorkspace(id: id, group: number, limitBytes: limit, owner: owner)
                }
            }
            try await prepareBlank(blank)
            return blank
        } catch {
            await deleteBlankWorkspace(blank)
            throw error
        }
    }

    /// Puts the blank's directories in place and parks its sandbox, booted once, for the first boot of the workspace
    /// made of it (when the backend parks sandboxes).
    private func prepareBlank(_ blank: BlankWorkspaceRecord) async throws {
        let record = WorkspaceRecord(
            id: blank.id, key: WorkspaceKey(rawValue: "blank")!, config: WorkspaceConfig(), createdAt: blank.createdAt,
            lastActiveAt: blank.createdAt, sandboxNumber: blank.sandboxNumber)
        let (directory, configuration, logger) = (directory(of: record), configuration, logger)
        try await NIOThreadPool.singleton.runIfActive {
            try WorkspaceRuntime.prepareDirectories(directory, sandboxNumber: blank.sandboxNumber, configuration: configuration, logger: logger)
            // Owner only, as a boot leaves them, whether or not a sandbox is parked for it now.
            for path in [directory.path, directory.path + "/workspace", directory.path + "/home"] {
                let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard fd >= 0 else { throw AgentBoxError(.internalError, "cannot open \(path): \(String(cString: strerror(errno)))") }
                defer { Glibc.close(fd) }
                guard fchmod(fd, 0o700) == 0 else { throw AgentBoxError(.internalError, "cannot chmod \(path): \(String(cString: strerror(errno)))") }
            }
        }
        guard let backend = configuration.sandbox else { return }
        let spec = try WorkspaceRuntime.sandboxSpec(
            id: blank.id, directory: directory, sandboxNumber: blank.sandboxNumber,
            limits: WorkspaceLimits().completed(with: configuration.defaultLimits), mounts: [], imageLayers: [],
            configuration: configuration, key: nil)
        var sandboxLogger = logger
        sandboxLogger[metadataKey: "blank"] = "\(blank.id)"
        // Not parked (the backend parks none, its parked sandboxes are full of more recent ones, or it is stopping):
        // the workspace made of the blank boots as a new one would, on storage made ahead.
        _ = try await backend.parkAhead(spec, logger: sandboxLogger)
    }

    /// Takes over the blanks an earlier run left in the store, up to the capacity: each one whose storage is intact
    /// is made ready again (its disk limit set to today's default, its sandbox parked); the others are deleted.
    private func takeOverStoredBlanks(_ blanks: BlankWorkspaces) async {
        let stored: [BlankWorkspaceRecord]
        do { stored = try await store.blankWorkspaces() } catch {
            logger.warning("could not read the blank workspaces", metadata: ["error": "\(error)"])
            return
        }
        // Those past the capacity and those whose storage is gone go first, so that once one is ready, the store holds
        // no more than the reserve.
        var kept: [BlankWorkspaceRecord] = []
        for blank in stored {
            let intact: Bool
            if let pool = diskPool {
                intact = pool.holdsWorkspace(id: blank.id)
            } else {
                intact = FileManager.default.fileExists(atPath: configuration.workspaceDirectory(id: blank.id).appendingPathComponent("home").path)
            }
            if intact && kept.count < blanks.capacity { kept.append(blank) } else { await deleteBlankWorkspace(blank) }
        }
        for blank in kept where blanks.reservePlace() {
            do {
                if let pool = diskPool {
                    let limit = diskLimitBytes(nil)
                    try await NIOThreadPool.singleton.runIfActive { try pool.setLimit(group: blank.sandboxNumber, limitBytes: limit) }
                }
                try await prepareBlank(blank)
                blanks.ready(blank)
            } catch {
                blanks.releasePlace()
                logger.warning("could not take over a blank workspace: it is deleted", metadata: ["blank": "\(blank.id)", "error": "\(error)"])
                await deleteBlankWorkspace(blank)
            }
        }
    }

    /// Deletes the blank: its parked sandbox, its storage, then its record (a record left behind, its storage gone,
    /// is deleted by the next start's check).
    private func deleteBlankWorkspace(_ blank: BlankWorkspaceRecord) async {
        await configuration.sandbox?.forgetWorkspace(blank.id)
        do {
            if let pool = diskPool {
                if pool.holdsWorkspace(id: blank.id) {
                    try await NIOThreadPool.singleton.runIfActive { try pool.deleteWorkspace(id: blank.id, group: blank.sandboxNumber) }
                }
            } else {
                let directory = configuration.workspaceDirectory(id: blank.id)
                try await NIOThreadPool.singleton.runIfActive { try FileTreeCopy.remove(directory.path) }
            }
            _ = try await store.deleteBlankWorkspace(id: blank.id)
        } catch {
            logger.warning("could not delete a blank workspace", metadata: ["blank": "\(blank.id)", "error": "\(error)"])
        }
    }
}
