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
/// takes one: one store write makes it the workspace (``Store/claimBlankWorkspace(_:as:eventSequenceBound:)``), and the workspace's first
/// action takes the parked sandbox, as the wake of a sleeping workspace does, instead of making storage, a namespace,
/// overlays and mounts.
///
/// The reserve keeps `capacity` blanks and makes new ones, in the background, once creates pause for
/// ``refillPause`` after using one (``WorkspaceManager/runBlankWorkspaces(_:)``). Blanks survive restarts (their parked sandboxes do not: a start boots
/// and parks them again). A blank belongs to no one: nothing runs in its sandbox but the init, and no request can
/// name it.
final class BlankWorkspaces: Sendable {
    /// How many blanks the reserve keeps.
    let capacity: Int

    private struct State {
        /// Blanks ready to be taken, oldest first.
        var ready: [BlankWorkspaceRecord] = []
        /// Blanks ready, being made, or taken by a create that has not claimed them yet.
        var held = 0
        /// Blanks used by creates since the start.
        var used = 0
        /// No blank is made from now on (the manager is shutting down).
        var closed = false
        /// Steps of the reserve under way (a blank being made, taken over or deleted), and who waits for them to end.
        var steps = 0
        var stepWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// How long the refill waits after the last blank used before it makes blanks again.
    static let refillPause: Duration = .milliseconds(50)
    /// The longest the refill waits for creates to pause.
    static let longestRefillWait: Duration = .seconds(1)
    /// The event numbers a workspace made of a blank is given with its claim (its first boot then writes none).
    static let firstEvents: Int64 = 1024

    private let state = Mutex(State())
    /// Raised when a blank is used (the reserve refills); only the newest raise is kept.
    let uses: AsyncStream<Void>
    private let usedOne: AsyncStream<Void>.Continuation

    init(capacity: Int) {
        self.capacity = max(0, capacity)
        (uses, usedOne) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// How many blanks are ready.
    var readyCount: Int { state.withLock { $0.ready.count } }

    /// How many blanks were used since the start.
    var useCount: Int { state.withLock { $0.used } }

    /// Takes the oldest ready blank for a create, or `nil` when none is ready. The create then either uses it
    /// (``used()``) or puts it back (``putBack(_:)``); meanwhile it still counts as held, so the refill does not make
    /// one in its place.
    func take() -> BlankWorkspaceRecord? {
        state.withLock { state in
            state.closed || state.ready.isEmpty ? nil : state.ready.removeFirst()
        }
    }

    /// A blank taken by a create is gone (it became the workspace, or was no longer in the store): the refill makes
    /// another.
    func used() {
        state.withLock { state in
            state.held -= 1
            state.used += 1
        }
        usedOne.yield()
    }

    /// Puts back a blank taken but not used (the key it was taken for existed already).
    func putBack(_ blank: BlankWorkspaceRecord) {
        state.withLock { $0.ready.insert(blank, at: 0) }
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

    /// Runs one step of the reserve (making, taking over or deleting a blank), unless the reserve is closed: then
    /// `nil`. ``close()`` waits for the steps under way.
    func step<T>(_ body: () async throws -> T) async rethrows -> T? {
        guard state.withLock({ state -> Bool in
            guard !state.closed else { return false }
            state.steps += 1
            return true
        }) else { return nil }
        defer {
            let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.steps -= 1
                guard state.steps == 0 else { return [] }
                defer { state.stepWaiters = [] }
                return state.stepWaiters
            }
            for waiter in waiters { waiter.resume() }
        }
        return try await body()
    }

    /// Makes no blank from now on, gives none to creates, and returns once the steps under way have ended (the
    /// manager is shutting down: the store and the disk pool are still open).
    func close() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                state.closed = true
                guard state.steps > 0 else { return true }
                state.stepWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
        usedOne.finish()
    }

    /// Whether `config` can be given a blank: it asks for nothing a blank lacks (an image's files, mounts, toolkits,
    /// a snapshot's files). Limits, environment, network and model budgets are applied as for any workspace.
    static func fits(_ config: WorkspaceConfig) -> Bool {
        config.image == nil && config.fromSnapshot == nil && (config.mounts ?? []).isEmpty && (config.toolkits ?? []).isEmpty
    }
}

extension WorkspaceManager {
    /// Keeps the reserve of blank workspaces full until cancelled or closed: first takes over the blanks the store
    /// holds from an earlier run (deleting those whose storage is gone, and those past the capacity: all of them when
    /// the capacity is 0), then makes new ones once creates pause after using some. A blank that cannot be made is
    /// deleted, and the next try waits, from 1 s doubling up to a minute.
    func runBlankWorkspaces(_ blanks: BlankWorkspaces) async {
        await takeOverStoredBlanks(blanks)
        var uses = blanks.uses.makeAsyncIterator()
        var failures = 0
        while !Task.isCancelled {
            if blanks.reservePlace() {
                do {
                    guard let made = try await blanks.step({ try await self.makeBlankWorkspace() }) else {
                        blanks.releasePlace()
                        return
                    }
                    blanks.ready(made)
                    failures = 0
                } catch {
                    blanks.releasePlace()
                    if Task.isCancelled { return }
                    failures += 1
                    logger.warning("could not make a blank workspace", metadata: ["error": "\(error)", "failures": "\(failures)"])
                    do { try await Task.sleep(for: .seconds(1 << min(failures - 1, 6))) } catch { return }
                }
                continue
            }
            guard await uses.next() != nil else { return }
            // The refill waits until creates pause: what follows a create (its first actions, on the blank's parked
            // sandbox) then runs without a blank being made beside it, on the same cores. Not longer than a second,
            // and not at all once none is left: creates that keep coming get blanks too.
            var seen = blanks.useCount
            let waitingSince = ContinuousClock.now
            while blanks.readyCount > 0, ContinuousClock.now - waitingSince < BlankWorkspaces.longestRefillWait {
                do { try await Task.sleep(for: BlankWorkspaces.refillPause) } catch { return }
                let now = blanks.useCount
                if now == seen { break }
                seen = now
            }
        }
    }

    /// Makes workspace `record` of a blank, when one is ready and `config` fits it; `nil` otherwise (the caller makes
    /// the workspace itself). When the key exists, answers it as ``create(key:config:)`` does. Runs inside
    /// ``whileCreating(_:_:)`` for the key.
    func createFromBlank(_ record: WorkspaceRecord, config: WorkspaceConfig) async throws -> (workspace: Workspace, created: Bool)? {
        guard let blanks, BlankWorkspaces.fits(config) else { return nil }
        let limit = diskLimitBytes(config.limits)
        while let blank = blanks.take() {
            // The workspace's disk limit is set before it exists: a crash after the claim cannot leave it the default.
            let differs = diskPool != nil && limit != diskLimitBytes(nil)
            let claimed: (record: WorkspaceRecord, created: Bool)?
            do {
                if differs { try await setBlankLimit(blank, limit) }
                claimed = try await store.claimBlankWorkspace(blank.id, as: record, eventSequenceBound: BlankWorkspaces.firstEvents)
            } catch {
                // Whether the claim was written is not known (a connection lost after its commit): the blank is not
                // given out again. The next start finds it among the blanks (its limit set back) or as the workspace.
                blanks.used()
                throw error
            }
            guard let (stored, created) = claimed else {
                // No longer a blank in the store (deleted by hand): not given out again; its storage is left alone.
                blanks.used()
                logger.warning("a blank workspace was gone from the store", metadata: ["blank": "\(blank.id)"])
                continue
            }
            guard created else {
                // One whose limit could not be set back to the default is not given out again (the next start does it).
                if differs, (try? await setBlankLimit(blank, diskLimitBytes(nil))) == nil { blanks.used() } else { blanks.putBack(blank) }
                return (try await updateLimits(of: stored, with: config.limits, toolkits: config.toolkits, llm: config.llm, env: config.env, network: config.network), false)
            }
            blanks.used()
            // Loaded now, with the event numbers the claim reserved, and kept for the sleeping retention: its first action
            // finds it, and its first boot reserves none (store reads and a write fewer on that action's path). Not
            // booted.
            if let runtime = try? await runtime(for: stored, freshEvents: BlankWorkspaces.firstEvents) { runtimes.retain(runtime) }
            logger.info("workspace created", metadata: ["workspace.key": "\(stored.key)", "blank": "true"])
            return (Self.sleepingSnapshot(stored, configuration: configuration), true)
        }
        return nil
    }

    private func setBlankLimit(_ blank: BlankWorkspaceRecord, _ limit: Int64?) async throws {
        guard let pool = diskPool else { return }
        try await NIOThreadPool.singleton.runIfActive { try pool.setLimit(group: blank.sandboxNumber, limitBytes: limit) }
    }

    /// Reserves a blank in the store and makes it: storage, directories, parked sandbox. Deletes what it made when a
    /// step fails.
    private func makeBlankWorkspace() async throws -> BlankWorkspaceRecord {
        let started = ContinuousClock.now
        let id = UUID().uuidString.lowercased()
        let number = try await store.createBlankWorkspace(id: id, at: Date())
        let blank = BlankWorkspaceRecord(id: id, sandboxNumber: number, createdAt: Date())
        do {
            if let pool = diskPool {
                try Task.checkCancellation()
                let (limit, owner) = (diskLimitBytes(nil), configuration.fileOwner(sandboxNumber: number))
                try await NIOThreadPool.singleton.runIfActive {
                    try pool.createWorkspace(id: id, group: number, limitBytes: limit, owner: owner)
                }
            }
            try await prepareBlank(blank)
            logger.debug("blank workspace made", metadata: ["blank": "\(id)", "made.ms": "\((ContinuousClock.now - started).milliseconds)"])
            return blank
        } catch {
            // Cancelled (the server is stopping, and must within seconds): what was made stays for the next start,
            // which deletes a record without storage and finishes one with it.
            if !Task.isCancelled { await deleteBlankWorkspace(blank) }
            throw error
        }
    }

    /// Puts the blank's directories in place and parks its sandbox, booted once, for the first boot of the workspace
    /// made of it (when the backend parks sandboxes).
    private func prepareBlank(_ blank: BlankWorkspaceRecord) async throws {
        let (directory, configuration, logger) = (directory(ofWorkspace: blank.id), configuration, logger)
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
        try Task.checkCancellation()
        let spec = try WorkspaceRuntime.sandboxSpec(
            id: blank.id, directory: directory, sandboxNumber: blank.sandboxNumber,
            limits: WorkspaceLimits().completed(with: configuration.defaultLimits), mounts: [], imageLayers: [],
            configuration: configuration, key: nil)
        var sandboxLogger = logger
        sandboxLogger[metadataKey: "blank"] = "\(blank.id)"
        // Not parked (the backend parks none, or could not now): the workspace made of the blank boots as a new one
        // would, on storage made ahead.
        do {
            _ = try await backend.parkAhead(spec, listenerPort: EgressProxy.port, logger: sandboxLogger)
        } catch is CancellationError {
            // The server is stopping: the blank stays unparked, as the next start expects.
            logger.debug("a blank workspace's sandbox was not parked: the server is stopping", metadata: ["blank": "\(blank.id)"])
        } catch {
            logger.warning("could not park a blank workspace's sandbox ahead", metadata: ["blank": "\(blank.id)", "error": "\(error)"])
        }
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
        for blank in stored where !Task.isCancelled {
            let intact: Bool
            if let pool = diskPool {
                intact = pool.holdsWorkspace(id: blank.id)
            } else {
                intact = FileManager.default.fileExists(atPath: configuration.workspaceDirectory(id: blank.id).appendingPathComponent("home").path)
            }
            if intact && kept.count < blanks.capacity {
                kept.append(blank)
            } else {
                let done: Bool? = await blanks.step {
                    await self.deleteBlankWorkspace(blank)
                    return true
                }
                if done == nil { return }
            }
        }
        for blank in kept where !Task.isCancelled && blanks.reservePlace() {
            do {
                let done: Bool? = try await blanks.step {
                    try await self.setBlankLimit(blank, self.diskLimitBytes(nil))
                    try await self.prepareBlank(blank)
                    return true
                }
                guard done != nil else {
                    blanks.releasePlace()
                    return
                }
                blanks.ready(blank)
            } catch {
                blanks.releasePlace()
                // Cancelled: left for the next start, as it is.
                if Task.isCancelled { return }
                logger.warning("could not take over a blank workspace: it is deleted", metadata: ["blank": "\(blank.id)", "error": "\(error)"])
                let _: Bool? = await blanks.step {
                    await self.deleteBlankWorkspace(blank)
                    return true
                }
            }
        }
    }

    /// Deletes the blank: its parked sandbox, its storage (in the pool and as a plain directory: the server may have
    /// run without a pool since), then its record (a record left behind, its storage gone, is deleted by the next
    /// start's check).
    func deleteBlankWorkspace(_ blank: BlankWorkspaceRecord) async {
        await configuration.sandbox?.forgetWorkspace(blank.id)
        do {
            if let pool = diskPool, pool.holdsWorkspace(id: blank.id) {
                try await NIOThreadPool.singleton.runIfActive { try pool.deleteWorkspace(id: blank.id, group: blank.sandboxNumber) }
            }
            let directory = configuration.workspaceDirectory(id: blank.id)
            try await NIOThreadPool.singleton.runIfActive { try FileTreeCopy.remove(directory.path) }
            _ = try await store.deleteBlankWorkspace(id: blank.id)
        } catch {
            logger.warning("could not delete a blank workspace", metadata: ["blank": "\(blank.id)", "error": "\(error)"])
        }
    }
}
