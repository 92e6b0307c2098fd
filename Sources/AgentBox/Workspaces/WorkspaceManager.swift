import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import Foundation
import Logging
import NIOPosix
import Synchronization

/// The entry point of the embeddable library: creates, finds, lists and destroys workspaces, and hands out the
/// ``WorkspaceRuntime`` of each.
///
/// ```swift
/// let manager = try WorkspaceManager.open(
///     configuration: .init(dataDirectory: dir), store: try SQLiteStore.open(in: dir), logger: logger)
/// let (workspace, _) = try await manager.create(key: WorkspaceKey(validating: "demo"))
/// try await manager.runtime(for: workspace.key).wake()
/// ```
public final class WorkspaceManager: Sendable {
    public let configuration: AgentBoxConfiguration
    public let store: any Store
    public let logger: Logger
    /// The btrfs pool that holds new workspaces' files and enforces their `diskMb`; `nil` when there is none.
    public let diskPool: DiskPool?
    /// The loaded runtimes, held in memory only while in use: a sleeping workspace costs no runtime.
    let runtimes: RuntimeRegistry
    /// Set once ``finishEventStreams()`` ran: the server is draining its connections.
    let streamsEnding = Mutex(false)
    /// The most workspaces awake at once, when the configuration sets it.
    let awakeBudget: AwakeBudget?
    private let closed = Mutex(false)
    /// Workspaces whose records exist but whose files are still being put in place (forks); loading one waits.
    let pendingCreations = Mutex<[WorkspaceKey: Alarm]>([:])
    /// Preview tokens recently resolved, so that a page's many requests do not each read the store. Bounded;
    /// revoking a token or destroying its workspace removes it here too.
    let previewCache = Mutex<[String: PreviewRecord]>([:])
    /// The sessions loaded since start, by id (loading one does not start its agent).
    let loadedSessions = Mutex<[String: AgentSession]>([:])

    /// The addresses egress may not reach, with the host's interface addresses as they were when the manager opened.
    let egressAddresses: EgressAddressGuard
    /// When each cron job's next slot comes, and which are running (see ``runCronScheduler()``).
    let cron = CronTimeline()
    /// The places for cron runs executing at once.
    let cronSlots: AsyncLimiter
    /// The calls of host toolkits' `client` tools in flight, and the clients that serve them.
    let toolCallRouter = ToolCallRouter()
    /// Model usage through the LLM gateway, by workspace, once read from the store (see ``llmTotals(_:)``).
    let llmUsageCache = Mutex<[WorkspaceKey: LLMUsage]>([:])
    /// API tokens once looked up, by the SHA-256 of their secret (revocation removes one).
    let accessCache = Mutex<[String: AccessTokenRecord]>([:])
    /// The streams waiting on each API token's revocation.
    let revocationWaiters = Mutex<[String: [UUID: AsyncStream<Never>.Continuation]]>([:])
    /// The auth hook's answers kept for their ttl, by the SHA-256 of the token.
    let hookAnswers = Mutex<[String: (principal: AccessPrincipal?, until: ContinuousClock.Instant)]>([:])
    /// Inspector login links not yet used, by their code's SHA-256 (see ``createLoginLink(for:)``).
    let loginLinks = Mutex<[String: PendingLogin]>([:])
    /// Agent installs under way, by agent id (see ``installAgent(_:version:)``).
    let agentInstalls = Mutex<[String: AgentInstallJob]>([:])
    /// The open ACP servers (`/v1/acp/{id}`), by id, and their starts under way.
    let acpServerTable = Mutex<[String: ACPServer]>([:])
    let acpStarts = SingleFlight<ACPServer>()
    /// The models and modes each agent offered in its latest session (ACP `session/new`), by agent id.
    let agentOptions = Mutex<[String: (models: [AgentOption], modes: [AgentOption])]>([:])
    /// This node's side of the cluster, when the configuration names one and the store is shared (a ``ClusterStore``).
    public let cluster: ClusterCoordinator?
    /// The checkpoints under way, one per workspace at a time.
    let checkpointRuns = CoalescingRuns()
    /// Images being fetched from a cluster's blob store, by id.
    let imageFetches = SingleFlight<Void>()
    /// Workspaces made ahead of creates (none when the configuration keeps none); `nil` in a cluster.
    let blanks: BlankWorkspaces?

    /// Largest page of ``list(cursor:limit:)``.
    public static let maxPageSize = 1000

    /// A manager over `store`, with the data directory and disk pool already in place (``open(configuration:store:logger:)``
    /// puts them there). The manager owns `store` from here on: ``shutdown()`` closes it.
    public init(configuration: AgentBoxConfiguration, store: any Store, logger: Logger, diskPool: DiskPool? = nil) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.egressAddresses = EgressAddressGuard(
            allowedRanges: configuration.egressAllowedPrivateRanges, hostAddresses: EgressAddressGuard.hostInterfaceAddresses())
        self.diskPool = diskPool
        self.runtimes = RuntimeRegistry(retention: configuration.sleepingRetention)
        self.awakeBudget = configuration.maxAwakeWorkspaces.map(AwakeBudget.init(capacity:))
        self.cronSlots = AsyncLimiter(limit: configuration.cronMaxConcurrentRuns)
        if let options = configuration.cluster, let shared = store as? any ClusterStore {
            cluster = ClusterCoordinator(store: shared, options: options, logger: logger)
        } else {
            cluster = nil
        }
        // With a capacity of 0 too: the reserve then deletes the blanks an earlier run left.
        blanks = cluster == nil ? BlankWorkspaces(capacity: configuration.blankWorkspaces) : nil
        store.reportMetrics(to: configuration.metrics.factory)
        cluster?.setOnLost { [weak self] key in await self?.leaseLost(key) }
    }

    /// Creates the data directory if needed and, as configured, opens the disk pool (saying in one line at start-up
    /// when there can be none, so that `diskMb` is not enforced); the manager keeps its records in `store`.
    ///
    /// The caller chooses the store: `SQLiteStore.open(in: configuration.dataDirectory)` is the embedded one a
    /// server uses; any other ``Store`` (another engine, an in-memory one in tests) works the same. Once this returns
    /// the manager owns `store` (``shutdown()`` closes it); when it throws, `store` is still the caller's.
    public static func open(configuration: AgentBoxConfiguration, store: any Store, logger: Logger) throws -> WorkspaceManager {
        do {
            try FileManager.default.createDirectory(at: configuration.dataDirectory, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(
                at: configuration.dataDirectory.appendingPathComponent("workspaces"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: configuration.snapshotsDirectory, withIntermediateDirectories: true)
            // Others may pass through the data directory (bwrap, as a workspace's uid, reaches the sandbox's /etc
            // and the agents below it) but not list it; snapshots are the server's alone.
            for (directory, mode) in [
                (configuration.dataDirectory, 0o711), (configuration.dataDirectory.appendingPathComponent("workspaces"), 0o711),
                (configuration.snapshotsDirectory, 0o700),
            ] where chmod(directory.path, mode_t(mode)) != 0 {
                throw AgentBoxError(.internalError, "cannot chmod \(directory.path): \(String(cString: strerror(errno)))")
            }
        } catch {
            throw AgentBoxError(
                .internalError, "cannot create data directory \(configuration.dataDirectory.path): \(error)",
                underlyingError: error)
        }
        // A snapshot being taken when the server died left a partial copy behind.
        let snapshots = configuration.snapshotsDirectory
        for name in (try? FileManager.default.contentsOfDirectory(atPath: snapshots.path)) ?? [] where name.hasPrefix(".partial-") {
            try? FileTreeCopy.remove(snapshots.appendingPathComponent(name).path)
        }
        var configuration = configuration
        var pool: DiskPool?
        if case .automatic(let size) = configuration.diskPool {
            do {
                pool = try DiskPool.open(dataDirectory: configuration.dataDirectory, sizeBytes: size, logger: logger)
                logger.info(
                    "disk pool",
                    metadata: ["path": "\(pool!.mountPoint.path)", "quotas": "\(pool!.quotaMode.rawValue)", "size.mib": "\(pool!.sizeBytes >> 20)"])
                try keepSystemFiles(in: pool!, configuration: &configuration, logger: logger)
            } catch {
                pool?.unmount()
                pool = nil
                let reason = (error as? AgentBoxError)?.message ?? "\(error)"
                // A pool that exists holds workspaces' files: serving without it would show them empty and write
                // new files beside them. Only a server that never had one goes on without.
                let poolDirectory = configuration.dataDirectory.appendingPathComponent("pool", isDirectory: true)
                if FileManager.default.fileExists(atPath: DiskPool.imagePath(dataDirectory: configuration.dataDirectory).path)
                    || FileManager.default.fileExists(atPath: poolDirectory.appendingPathComponent("workspaces").path)
                {
                    throw AgentBoxError(
                        .unavailable,
                        "the disk pool of \(configuration.dataDirectory.path) exists but cannot be opened (\(reason)); refusing to start without the workspaces' files",
                        underlyingError: error)
                }
                // And only when this host cannot have one (see `DiskPool.open`: not root, no btrfs, no loop devices, no
                // mkfs.btrfs): a host that can but failed this time would otherwise serve every workspace without a
                // disk limit, with nothing but a log line to say so.
                guard (error as? AgentBoxError)?.code == .unsupported else {
                    throw AgentBoxError(
                        .unavailable,
                        "cannot open the disk pool of \(configuration.dataDirectory.path) (\(reason)); refusing to serve workspaces without their disk limits (--disk-pool none serves them without)",
                        underlyingError: error)
                }
                logger.warning("no disk pool (\(reason)): limits.diskMb is not enforced")
            }
        }
        return WorkspaceManager(configuration: configuration, store: store, logger: logger, diskPool: pool)
    }

    /// Moves the files every sandbox mounts (its `/etc`, the installed agents) into the pool, so that no mount of a
    /// sandbox shows a path of the host's data directory. Agents installed before the pool are copied once.
    private static func keepSystemFiles(in pool: DiskPool, configuration: inout AgentBoxConfiguration, logger: Logger) throws {
        guard let backend = configuration.sandbox else { return }
        let agents = pool.systemDirectory.appendingPathComponent("agents", isDirectory: true)
        let old = configuration.agentsDirectory
        let installed = (try? FileManager.default.contentsOfDirectory(atPath: old.path)) ?? []
        if !FileManager.default.fileExists(atPath: agents.path), !installed.isEmpty {
            try FileManager.default.createDirectory(at: pool.systemDirectory, withIntermediateDirectories: true)
            _ = try FileTreeCopy(ownership: nil).copy(from: old.path, to: agents.path)
            chmod(agents.path, 0o755)
            logger.info("installed agents copied into the disk pool", metadata: ["from": "\(old.path)"])
        }
        guard let moved = try backend.keepingSystemFiles(in: pool.systemDirectory) else { return }
        configuration.sandbox = moved
        configuration.agentsDirectoryInPool = agents
    }

    // MARK: Workspaces

    /// Returns the workspace with `key`, creating it with `config` when there is none (then `created` is true).
    /// Creating does not boot. An existing workspace is returned unchanged, except that the limits `config` names
    /// replace its own (`diskMb` at once, the others from its next boot), and so do the `env`, `network`, `toolkits`
    /// and `llm` it gives (see ``updateLimits(of:with:toolkits:llm:env:network:)``). With `fromSnapshot`, an
    /// existing workspace is returned as it is.
    public func create(key: WorkspaceKey, config: WorkspaceConfig = WorkspaceConfig()) async throws
        -> (workspace: Workspace, created: Bool)
    {
        try checkOpen()
        if let snapshotID = config.fromSnapshot {
            return try await createFromSnapshot(key: key, config: config, snapshotID: snapshotID)
        }
        let config = try validated(config)
        try await claimLocally(key)
        let now = Date()
        let record = WorkspaceRecord(
            id: UUID().uuidString.lowercased(), key: key, config: config, createdAt: now, lastActiveAt: now)
        // Of a blank when one fits and the key is not loaded (so most likely new): the claim itself answers a key that
        // exists, in the one store transaction. Inside `whileCreating`, so that a destroy or a load of the key waits
        // for the workspace's runtime, and another creation of the key (a fork, an image) is over before the claim.
        if let blanks, blanks.capacity > 0, BlankWorkspaces.fits(config), runtimes.runtime(key) == nil,
            let made = try await whileCreating(key, { try await self.createFromBlank(record, config: config) })
        {
            return made
        }
        if let existing = try await store.workspace(key: key) {
            return (try await updateLimits(of: existing, with: config.limits, toolkits: config.toolkits, llm: config.llm, env: config.env, network: config.network), false)
        }
        if let image = config.image { _ = try await imageRecord(image) }
        guard let pool = diskPool else {
            let (stored, created) = try await store.createWorkspace(record)
            guard created else { return (try await updateLimits(of: stored, with: config.limits, toolkits: config.toolkits, llm: config.llm, env: config.env, network: config.network), false) }
            if let image = config.image {
                do {
                    let directory = configuration.workspaceDirectory(id: stored.id)
                    for name in ["workspace", "home"] {
                        try FileManager.default.createDirectory(at: directory.appendingPathComponent(name), withIntermediateDirectories: true)
                    }
                    try await placeImageFiles(image, into: stored, directory: directory)
                } catch {
                    _ = try? await store.deleteWorkspace(key: key)
                    try? FileTreeCopy.remove(configuration.workspaceDirectory(id: stored.id).path)
                    throw error
                }
            }
            logger.info("workspace created", metadata: ["workspace.key": "\(key)"])
            return (Self.sleepingSnapshot(stored, configuration: configuration), true)
        }
        // The subvolume (with its quota) exists before anyone may load the workspace, so that no boot or file request
        // makes plain directories in its place.
        return try await whileCreating(key) {
            let (stored, created) = try await self.store.createWorkspace(record)
            guard created else { return (try await self.updateLimits(of: stored, with: config.limits, toolkits: config.toolkits, llm: config.llm, env: config.env, network: config.network), false) }
            let limit = self.diskLimitBytes(config.limits)
            let owner = self.configuration.fileOwner(sandboxNumber: stored.sandboxNumber)
            do {
                try await NIOThreadPool.singleton.runIfActive {
                    try pool.createWorkspace(id: stored.id, group: stored.sandboxNumber, limitBytes: limit, owner: owner)
                }
            } catch {
                _ = try? await self.store.deleteWorkspace(key: key)
                throw error
            }
            if let image = config.image {
                do {
                    try await self.placeImageFiles(image, into: stored, directory: pool.workspaceVolume(id: stored.id))
                } catch {
                    _ = try? await self.store.deleteWorkspace(key: key)
                    try? await NIOThreadPool.singleton.runIfActive { try pool.deleteWorkspace(id: stored.id, group: stored.sandboxNumber) }
                    throw error
                }
            }
            self.logger.info("workspace created", metadata: ["workspace.key": "\(key)"])
            return (Self.sleepingSnapshot(stored, configuration: self.configuration), true)
        }
    }

    /// Runs `body`, which creates workspace `key`, while requests that load `key` wait for it. When another creation
    /// of `key` is under way, waits for that one and runs `body` after it.
    func whileCreating<T: Sendable>(_ key: WorkspaceKey, _ body: () async throws -> T) async throws -> T {
        let done = Alarm()
        while true {
            let registered = pendingCreations.withLock { pending -> Bool in
                guard pending[key] == nil else { return false }
                pending[key] = done
                return true
            }
            if registered { break }
            await waitForPendingCreation(of: key)
        }
        defer {
            pendingCreations.withLock { _ = $0.removeValue(forKey: key) }
            done.raise("created")
        }
        return try await body()
    }

    /// Replaces the limits of the stored workspace `record` with the fields `limits` names; applies `diskMb` to its
    /// quota at once. `toolkits`, `llm`, `env` and `network`, when given, replace the workspace's own: `env` for the
    /// processes it starts from now on, `network` for its proxy's next connections. Returns the workspace as it is then.
    func updateLimits(
        of record: WorkspaceRecord, with limits: WorkspaceLimits?, toolkits: [String]? = nil, llm: LLMBudget? = nil, env: [String: String]? = nil,
        network: NetworkPolicy? = nil
    ) async throws -> Workspace {
        let runtime = try await runtime(for: record)
        await runtime.configUpdates.acquire()
        defer { runtime.configUpdates.release() }
        var config = runtime.config
        let old = config.limits ?? WorkspaceLimits()
        if let limits {
            config.limits = WorkspaceLimits(
                memoryMb: limits.memoryMb ?? old.memoryMb, cpuPercent: limits.cpuPercent ?? old.cpuPercent,
                pids: limits.pids ?? old.pids, diskMb: limits.diskMb ?? old.diskMb)
        }
        // Toolkits given for an existing workspace replace its own (the commands change at its next boot).
        if let toolkits { config.toolkits = toolkits.isEmpty ? nil : toolkits }
        // A budget given for an existing workspace replaces its own at once (`{}` removes it).
        if let llm { config.llm = llm.isEmpty ? nil : llm }
        if let env { config.env = env.isEmpty ? nil : env }
        if let network { config.network = network }
        guard config != runtime.config else { return runtime.snapshot }
        let merged = config.limits ?? WorkspaceLimits()
        if let pool = diskPool, merged.diskMb != old.diskMb, pool.holdsWorkspace(id: record.id) {
            let bytes = diskLimitBytes(merged)
            try await NIOThreadPool.singleton.runIfActive { try pool.setLimit(group: record.sandboxNumber, limitBytes: bytes) }
        }
        guard try await store.updateWorkspaceConfig(key: record.key, config: config) else {
            throw AgentBoxError.workspaceNotFound(record.key)
        }
        runtime.replaceConfig(config)
        logger.info("workspace configuration changed", metadata: ["workspace.key": "\(record.key)"])
        return runtime.snapshot
    }

    /// The disk limit in bytes of a workspace whose own limits are `limits`; `nil` when it has none.
    func diskLimitBytes(_ limits: WorkspaceLimits?) -> Int64? {
        (limits ?? WorkspaceLimits()).completed(with: configuration.defaultLimits).diskMb.map { Int64($0) << 20 }
    }

    /// `config` checked, with its mounts resolved; throws `invalidArgument` for what is wrong with it.
    func validated(_ config: WorkspaceConfig) throws -> WorkspaceConfig {
        var config = config
        try Self.validate(config)
        if let network = config.network { _ = try EgressRules(network.egress) }
        if let mounts = config.mounts {
            config.mounts = mounts.isEmpty ? nil : try MountValidation.validate(mounts, configuration: configuration)
        }
        return config
    }

    /// The workspace with `key`; throws `notFound` when there is none. Does not boot.
    public func workspace(key: WorkspaceKey) async throws -> Workspace {
        if let runtime = runtimes.runtime(key) { return runtime.snapshot }
        guard let record = try await store.workspace(key: key) else { throw AgentBoxError.workspaceNotFound(key) }
        return Self.sleepingSnapshot(record, configuration: configuration)
    }

    /// One page of workspaces in key order. `cursor` is the `nextCursor` of the previous page.
    public func list(cursor: String? = nil, limit: Int = 100) async throws -> WorkspaceList {
        guard (1...Self.maxPageSize).contains(limit) else {
            throw AgentBoxError(.invalidArgument, "limit must be 1...\(Self.maxPageSize), not \(limit)")
        }
        let after = try cursor.map(Self.decodeCursor)
        // One more than asked tells whether another page follows.
        let records = try await store.workspaces(after: after, limit: limit + 1)
        let page = records.prefix(limit)
        var items: [Workspace] = []
        var notLoaded: [WorkspaceKey] = []
        for record in page {
            if let runtime = runtimes.runtime(record.key) {
                items.append(runtime.snapshot)
            } else {
                items.append(Self.sleepingSnapshot(record, configuration: configuration))
                notLoaded.append(record.key)
            }
        }
        if let cluster {
            // Workspaces another node serves: the state that node recorded.
            if !notLoaded.isEmpty {
                let states = try await cluster.recordedStates(of: notLoaded)
                for index in items.indices { if let state = states[items[index].key] { items[index].state = state } }
            }
        }
        let next = records.count > limit ? page.last.map { Self.encodeCursor($0.key) } : nil
        return WorkspaceList(items: items, nextCursor: next)
    }

    /// Destroys the workspace: stops it, ends its event streams, deletes its records and its files.
    public func destroy(key: WorkspaceKey) async throws {
        try checkOpen()
        let runtime = try await self.runtime(for: key)
        runtimes.remove(runtime)
        await destroySessions(of: key)
        await runtime.destroy()
        await configuration.sandbox?.forgetWorkspace(runtime.id)
        await removeSnapshotFiles(of: key, group: runtime.sandboxNumber)
        guard try await store.deleteWorkspace(key: key) else { throw AgentBoxError.workspaceNotFound(key) }
        forgetLLMUsage(key)
        forgetPreviews(of: key)
        cron.forget(workspace: key)
        if let cluster {
            await cluster.release(key)
            try? FileManager.default.removeItem(at: clusterStamp(of: runtime.record))
            do { try await configuration.checkpoints?.deleteCheckpoints(workspaceId: runtime.id) } catch {
                logger.warning("could not delete a destroyed workspace's checkpoints", metadata: ["workspace.key": "\(key)", "error": "\(error)"])
            }
        }
        do {
            if let pool = diskPool, pool.holdsWorkspace(id: runtime.id) {
                let (id, group) = (runtime.id, runtime.sandboxNumber)
                try await NIOThreadPool.singleton.runIfActive { try pool.deleteWorkspace(id: id, group: group) }
            } else if FileManager.default.fileExists(atPath: runtime.directory.path) {
                try FileManager.default.removeItem(at: runtime.directory)
            }
        } catch {
            logger.error(
                "could not remove the files of a destroyed workspace",
                metadata: ["workspace.key": "\(key)", "path": "\(runtime.directory.path)", "error": "\(error)"])
        }
        logger.info("workspace destroyed", metadata: ["workspace.key": "\(key)"])
    }

    /// Puts the workspace to sleep now.
    public func sleep(key: WorkspaceKey) async throws -> Workspace {
        try checkOpen()
        let runtime = try await self.runtime(for: key)
        await runtime.sleep()
        return runtime.snapshot
    }

    /// Boots the workspace if it sleeps.
    public func wake(key: WorkspaceKey) async throws -> Workspace {
        try checkOpen()
        let runtime = try await self.runtime(for: key)
        try await runtime.wake()
        return runtime.snapshot
    }

    /// The workspace's event stream (see ``WorkspaceRuntime/events(after:)``). Does not boot.
    public func events(key: WorkspaceKey, after: Int64? = nil) async throws -> AsyncStream<WorkspaceEventEnvelope> {
        try checkOpen()
        let runtime = try await runtime(for: key)
        let stream = await runtime.events(after: after)
        // Opened while the server ends its streams (a request that was under way): it ends now too, not at the stop's
        // deadline.
        if streamsEnding.withLock({ $0 }) { await runtime.finishEventStreams() }
        return stream
    }

    /// The live side of the workspace with `key`, loaded from the store when needed. Does not boot.
    public func runtime(for key: WorkspaceKey) async throws -> WorkspaceRuntime {
        if let runtime = runtimes.runtime(key) { return runtime }
        await waitForPendingCreation(of: key)
        guard let record = try await store.workspace(key: key) else { throw AgentBoxError.workspaceNotFound(key) }
        return try await runtime(for: record)
    }

    /// Throws `notFound` unless workspace `key` exists; loads nothing.
    func requireWorkspace(_ key: WorkspaceKey) async throws {
        if runtimes.runtime(key) != nil { return }
        await waitForPendingCreation(of: key)
        guard try await store.workspace(key: key) != nil else { throw AgentBoxError.workspaceNotFound(key) }
    }

    /// The runtime of `record`, loaded when needed. `freshEvents`: the workspace was just made with that many event
    /// numbers reserved and none handed out (a blank's claim), so the runtime numbers from 1 without a store write.
    func runtime(for record: WorkspaceRecord, freshEvents: Int64? = nil) async throws -> WorkspaceRuntime {
        if let runtime = runtimes.runtime(record.key), runtime.id == record.id { return runtime }
        try await claimLocally(record.key)
        let bound: Int64
        if let freshEvents {
            bound = freshEvents
        } else {
            try await prepareTakenOverFiles(record)
            bound = try await store.eventSequenceBound(key: record.key)
        }
        let key = record.key
        var mcp: ToolSocketHandlers.MCPHandler?
        if configuration.toolkitMCP != nil {
            mcp = { [weak self] sessionId, messages, send in
                await self?.serveToolkitMCP(key: key, sessionId: sessionId, messages: messages, send: send)
            }
        }
        var sleepHook: (@Sendable (WorkspaceKey) -> Void)?
        if cluster != nil, configuration.checkpoints != nil {
            // A workspace gone to sleep has its files checkpointed, while nothing changes them.
            sleepHook = { [weak self] key in
                // At shutdown the manager checkpoints each workspace itself, before the store closes.
                guard let self, !self.closed.withLock({ $0 }) else { return }
                Task { await self.checkpoint(key: key) }
            }
        }
        var stateHook: (@Sendable (WorkspaceKey, WorkspaceState) -> Void)?
        if let cluster {
            // Other nodes list the workspace with the state it has here.
            stateHook = { key, state in cluster.noteState(key, state) }
        }
        let candidate = WorkspaceRuntime(
            record: record, directory: directory(of: record), eventSeqBound: bound, unusedEventsFrom: freshEvents.map { _ in 1 }, store: store,
            configuration: configuration,
            egressAddresses: egressAddresses, registry: runtimes, awakeBudget: awakeBudget, imageLayers: try await imageLayers(record.config.image),
            logger: logger,
            onSlept: sleepHook,
            onStateChange: stateHook,
            toolHandlers: ToolSocketHandlers(
                command: { [weak self] request in
                    guard let self else { return .failure("AgentBox is shutting down") }
                    return await self.runToolCommand(key: key, toolkit: request.toolkit, arguments: request.arguments, sessionId: request.sessionId)
                },
                mcp: mcp))
        // Two callers may race to load one workspace: the first one stored wins, so there is one actor per workspace.
        return runtimes.insert(candidate)
    }

    /// The host directory of `record`'s files: its subvolume in the pool, or, for a workspace made without one (before
    /// the pool, or with none), its plain directory, which stays one.
    func directory(of record: WorkspaceRecord) -> URL {
        directory(ofWorkspace: record.id)
    }

    /// The host directory of the files of the workspace (or blank workspace) with internal id `id`.
    func directory(ofWorkspace id: String) -> URL {
        if let diskPool, diskPool.holdsWorkspace(id: id) { return diskPool.workspaceVolume(id: id) }
        return configuration.workspaceDirectory(id: id)
    }

    // MARK: Background work

    /// Runs the manager's background work until cancelled: the cron scheduler (see ``runCronScheduler()``), the sandbox
    /// backend's pool of namespaces made ahead of boots (``SandboxBackend/runPool()``), and letting
    /// go of the runtimes of sleeping workspaces nobody uses (see ``RuntimeRegistry``). ``WorkspaceManagerService`` runs it; an embedder that does not use
    /// swift-service-lifecycle runs it in a task of its own (without it, runtimes stay in memory once loaded).
    public func runBackgroundWork() async {
        let (logger, runtimes) = (logger, runtimes)
        await withDiscardingTaskGroup { group in
            group.addTask { await self.runCronScheduler() }
            if let backend = self.configuration.sandbox {
                group.addTask { await backend.runPool() }
            }
            if let blanks = self.blanks {
                group.addTask { await self.runBlankWorkspaces(blanks) }
            }
            if let cluster = self.cluster {
                group.addTask { await cluster.run() }
                if let interval = self.configuration.cluster?.checkpointInterval, self.configuration.checkpoints != nil {
                    group.addTask { await self.runCheckpoints(every: interval) }
                }
            }
            group.addTask {
                await runtimes.reap { count in
                    guard logger.logLevel <= .debug else { return }
                    let (resident, loaded) = runtimes.counts
                    logger.debug(
                        "let go of sleeping workspaces", metadata: ["released": "\(count)", "resident": "\(resident)", "loaded": "\(loaded)"])
                }
            }
        }
    }

    /// How many workspaces' runtimes are held in memory, and how many are loaded at all (resident, or still held by
    /// a request in flight).
    public var loadedRuntimes: (resident: Int, loaded: Int) { runtimes.counts }

    // MARK: Shutdown

    /// Ends every open event stream, so that a server can drain its connections.
    public func finishEventStreams() async {
        // Set first: a stream opened from here on sees it and ends itself; one opened before is ended below.
        streamsEnding.withLock { $0 = true }
        for session in loadedSessions.withLock({ Array($0.values) }) {
            await session.finishSubscriptions()
        }
        for runtime in runtimes.all {
            await runtime.finishEventStreams()
        }
    }

    /// Puts every workspace to sleep, ends their streams and closes the store. Later calls fail with `unavailable`.
    public func shutdown() async {
        guard closed.withLock({ closed in
            defer { closed = true }
            return !closed
        }) else { return }
        // No blank is made from now on: one under way ends first, while the store and the pool are open.
        await blanks?.close()
        // Sandboxes park no more (the workspaces' sleeps below stop theirs), and the parked ones stop.
        await configuration.sandbox?.shutDown()
        // Agents stop first, so that their last events reach the store before it closes.
        let sessions = loadedSessions.withLock { Array($0.values) }
        await withTaskGroup(of: Void.self) { group in
            for session in sessions { group.addTask { await session.shutdown() } }
        }
        let all = runtimes.all
        await withTaskGroup(of: Void.self) { group in
            for runtime in all {
                group.addTask {
                    await runtime.sleep()
                    await runtime.finishEventStreams()
                    await self.checkpoint(key: runtime.key)
                }
            }
        }
        // Let the last activity timestamps reach the store before it closes: each writer stores what it holds and
        // ends (a write still pending would otherwise meet a closed store), then the times as they stand now.
        await withTaskGroup(of: Void.self) { group in
            for runtime in all { group.addTask { await runtime.finishActivityWriter() } }
        }
        for record in all.map(\.snapshot) {
            try? await store.touchWorkspace(key: record.key, at: record.lastActiveAt)
        }
        // The files are checkpointed: other nodes may take the workspaces over at once.
        if let cluster {
            for key in cluster.heldKeys { await cluster.release(key) }
        }
        do { try await store.close() } catch {
            logger.error("could not close the store", metadata: ["error": "\(error)"])
        }
        diskPool?.unmount()
        await configuration.llmGateway?.shutdown()
        logger.info("workspace manager stopped", metadata: ["workspaces": "\(all.count)"])
    }

    func checkOpen() throws {
        if closed.withLock({ $0 }) { throw AgentBoxError(.unavailable, "AgentBox is shutting down") }
    }

    // MARK: Helpers

    /// The most bytes a workspace's `env` may hold (`NAME=value` each), so that every process it starts, with its own
    /// arguments and the sandbox's variables, stays under what one start request may carry.
    public static let maxEnvironmentBytes = 64 << 10

    static func validate(_ config: WorkspaceConfig) throws {
        if let problem = config.limits?.validationProblem() { throw AgentBoxError(.invalidArgument, problem) }
        var bytes = 0
        for (name, value) in config.env ?? [:] {
            try WorkspaceRuntime.validateEnvironment(name: name, value: value)
            bytes += name.utf8.count + value.utf8.count + 2
        }
        if bytes > maxEnvironmentBytes {
            throw AgentBoxError(.tooLarge, "env holds \(bytes) bytes; a workspace's env may hold at most \(maxEnvironmentBytes)")
        }
        if let llm = config.llm {
            for (name, value) in [("maxInputTokens", llm.maxInputTokens), ("maxOutputTokens", llm.maxOutputTokens), ("maxRequests", llm.maxRequests)] {
                if let value, value < 0 { throw AgentBoxError(.invalidArgument, "llm.\(name) must be 0 or more, not \(value)") }
            }
            if let models = llm.models {
                guard models.count <= 100 else { throw AgentBoxError(.invalidArgument, "llm.models: at most 100, not \(models.count)") }
                for model in models where model.isEmpty || model.utf8.count > 256 {
                    throw AgentBoxError(.invalidArgument, "llm.models: each is a model id of 1...256 bytes")
                }
            }
        }
        if let toolkits = config.toolkits {
            guard toolkits.count <= 16 else { throw AgentBoxError(.invalidArgument, "toolkits: at most 16, not \(toolkits.count)") }
            for name in toolkits where !Toolkit.isValidName(name) {
                throw AgentBoxError(.invalidArgument, "toolkits: '\(name.prefix(80))' is not a toolkit name ([a-z][a-z0-9-]{0,31})")
            }
            // One command per toolkit: a name given twice made the boot fail on its second command (500 on every
            // action of the workspace; schemathesis found it).
            if let twice = toolkits.enumerated().first(where: { toolkits[..<$0.offset].contains($0.element) })?.element {
                throw AgentBoxError(.invalidArgument, "toolkits: '\(twice)' is given twice")
            }
        }
    }

    static func sleepingSnapshot(_ record: WorkspaceRecord, configuration: AgentBoxConfiguration) -> Workspace {
        var workspace = Workspace(
            key: record.key, state: .sleeping, createdAt: record.createdAt, lastActiveAt: record.lastActiveAt,
            limits: (record.config.limits ?? WorkspaceLimits()).completed(with: configuration.defaultLimits),
            network: record.config.network ?? NetworkPolicy(), env: record.config.env ?? [:])
        workspace.image = record.config.image
        workspace.toolkits = record.config.toolkits
        workspace.llm = record.config.llm
        return workspace
    }

    static func encodeCursor(_ key: WorkspaceKey) -> String {
        Data(key.rawValue.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeCursor(_ cursor: String) throws -> WorkspaceKey {
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8),
            let key = WorkspaceKey(rawValue: text)
        else { throw AgentBoxError(.invalidArgument, "cursor '\(cursor)' is not one this server issued") }
        return key
    }
}
