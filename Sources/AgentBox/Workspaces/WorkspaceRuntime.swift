import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import CoreMetrics
import Foundation
import NIOCore
import Logging
import Synchronization

/// The live side of one workspace: its lifecycle (sleeping → booting → running → sleeping), its sandbox and
/// processes, what holds it awake, its idle timer and its event stream. One actor per workspace, so all of a
/// workspace's state changes are serialised without a lock shared with other workspaces.
///
/// The actor is small: it owns parts with one job each and keeps them consistent. ``WorkspaceLifecycle`` (the phase
/// and the activities), ``ProcessTable`` (processes and their output pumps), ``WorkspaceShells``,
/// ``WorkspaceNetworkState`` (the network foothold and the egress proxy), ``FileWatches`` and ``WorkspaceEventLog``. Every task it starts
/// in the background has an owner that ends it: the parts own their pumps, ``OwnedTasks`` the rest, and a stop or
/// a destroy waits for them.
///
/// A workspace boots lazily: the first activity (``beginActivity()``) boots it, and it goes back to sleep
/// ``AgentBoxConfiguration/idleGrace`` after the last activity ends. Running processes are activities.
public actor WorkspaceRuntime {
    /// The workspace's key.
    public nonisolated let key: WorkspaceKey
    /// The workspace's internal id (names its data directory).
    public nonisolated let id: String
    /// The host directory of the workspace's persistent files.
    public nonisolated let directory: URL

    let record: WorkspaceRecord
    let configuration: AgentBoxConfiguration
    /// What the egress proxy may connect to beyond the workspace's policy (the manager's, shared by all).
    let egressAddresses: EgressAddressGuard
    let logger: Logger

    private nonisolated let stateSnapshot: Mutex<(state: WorkspaceState, lastActiveAt: Date)>
    /// The config as it is now: `record.config`, with the limits a later `PUT` replaced.
    private nonisolated let currentConfig: Mutex<WorkspaceConfig>
    /// The phase and the activities. Changed only through ``transition(_:)``, ``beginActivity()`` and
    /// ``endActivity(_:)``, which keep the snapshot and the residency up to date.
    private var lifecycle = WorkspaceLifecycle()
    private var bootTask: Task<Void, any Error>?
    private var stopTask: Task<Void, Never>?
    var sandbox: (any Sandbox)?
    private var idleTimer: Task<Void, Never>?
    private var lastPersistedActivity: ContinuousClock.Instant?
    /// Stores the time of the last activity, one write at a time.
    private let lastActiveWriter: LastActiveWriter
    /// The tasks that watch the running sandbox's end and release an archive's activity: ended by a stop.
    let sandboxTasks = OwnedTasks()
    /// The tasks that forward a process's output to a follower: each ends with its process (so by the end of a
    /// stop) or when its follower goes; a destroy cancels what is left.
    let followers = OwnedTasks()

    var processes = ProcessTable()
    let shells = WorkspaceShells()
    let networkState = WorkspaceNetworkState()
    /// The egress rules its proxy enforces, replaced when the workspace's network policy changes.
    let egressRules = EgressRuleSource(EgressRules())
    /// The X display, when the desktop is on (see ``startDesktop(_:)``).
    let desktop = WorkspaceDesktop()
    /// The open file watches.
    nonisolated let watches = FileWatches(capacity: WorkspaceRuntime.maxWatchers)
    /// The bytes that crossed the workspace's network boundary since it booted (see ``WorkspaceTraffic``).
    public nonisolated let traffic = WorkspaceTraffic()
    /// The server-wide metrics (the configuration's).
    nonisolated var metrics: AgentBoxMetrics { configuration.metrics }

    /// The registry that holds this runtime in memory while it is in use (see ``RuntimeRegistry``).
    let registry: RuntimeRegistry?
    /// The server's budget of awake workspaces, when it has one: a boot takes a slot, and the sleep after gives it back.
    let awakeBudget: AwakeBudget?
    /// Whether this workspace holds a slot of ``awakeBudget``: from the start of a boot until it sleeps again.
    private var holdsAwakeSlot = false
    /// Whether the actor's own state holds the runtime in memory: awake, booting, stopping, an activity, a subscriber.
    private nonisolated let heldByState = Atomic<Bool>(false)

    /// Whether anything holds this runtime in memory: the actor's state, or an open file watch. A runtime not in use
    /// is a sleeping workspace nobody listens to; the registry lets it go.
    nonisolated var isInUse: Bool {
        heldByState.load(ordering: .sequentiallyConsistent) || !watches.isEmpty
    }

    /// Tells the registry what now holds this runtime. Called after every change of phase, activities or subscribers.
    private func refreshResidency() {
        let held = lifecycle.holdsRuntime || eventLog.subscriberCount > 0 || bootTask != nil || stopTask != nil
        guard held != heldByState.load(ordering: .sequentiallyConsistent) else { return }
        heldByState.store(held, ordering: .sequentiallyConsistent)
        registry?.update(self)
    }

    /// Serves the `agentbox-{toolkit}` commands and MCP connections that arrive on the workspace's tools socket (set by
    /// the manager).
    let toolHandlers: ToolSocketHandlers?
    /// The workspace's tools socket while it is awake with toolkits attached, and the task that serves it.
    var toolSocket: (socket: ToolSocket, task: Task<Void, Never>)?

    /// Told after each stop that leaves the workspace asleep (to checkpoint its files, in a cluster).
    let onSlept: (@Sendable (WorkspaceKey) -> Void)?
    /// Told each state the workspace enters (for other nodes to show, in a cluster).
    let onStateChange: (@Sendable (WorkspaceKey, WorkspaceState) -> Void)?

    /// What must run before the sandbox stops (sessions stopping their agents gently), by owner.
    private var stopHooks: [String: @Sendable () async -> Void] = [:]

    /// Sets (or with `nil` removes) the hook `owner` runs before the workspace's sandbox stops.
    func setStopHook(_ owner: String, _ hook: (@Sendable () async -> Void)?) {
        stopHooks[owner] = hook
    }

    /// The workspace's events: their numbers and their subscribers.
    private let eventLog: WorkspaceEventLog
    /// The system layers of the image it was made from (and that image's own image...), top first.
    let imageLayers: [URL]

    init(
        record: WorkspaceRecord, directory: URL, eventSeqBound: Int64, unusedEventsFrom: Int64? = nil, store: any Store,
        configuration: AgentBoxConfiguration,
        egressAddresses: EgressAddressGuard, registry: RuntimeRegistry? = nil, awakeBudget: AwakeBudget? = nil, imageLayers: [URL] = [],
        logger: Logger,
        onSlept: (@Sendable (WorkspaceKey) -> Void)? = nil, onStateChange: (@Sendable (WorkspaceKey, WorkspaceState) -> Void)? = nil,
        toolHandlers: ToolSocketHandlers? = nil
    ) {
        self.onSlept = onSlept
        self.onStateChange = onStateChange
        self.toolHandlers = toolHandlers
        self.imageLayers = imageLayers
        self.registry = registry
        self.awakeBudget = awakeBudget
        self.key = record.key
        self.id = record.id
        self.directory = directory
        self.record = record
        self.currentConfig = Mutex(record.config)
        self.configuration = configuration
        self.egressAddresses = egressAddresses
        var logger = logger
        logger[metadataKey: "workspace.key"] = "\(record.key)"
        self.logger = logger
        self.lastActiveWriter = LastActiveWriter(store: store, key: record.key, logger: logger)
        self.stateSnapshot = Mutex((.sleeping, record.lastActiveAt))
        // Just made with its numbers (a blank's claim): the store holds its last activity as of now.
        if unusedEventsFrom != nil { lastPersistedActivity = ContinuousClock.now }
        self.eventLog = WorkspaceEventLog(
            seqBound: eventSeqBound, unusedFrom: unusedEventsFrom, replayCapacity: configuration.eventReplayCapacity,
            subscriberCapacity: configuration.subscriberBufferCapacity, store: store, key: record.key, logger: logger)
    }

    deinit {
        // Gone while holding a slot (a runtime no longer the registry's, used by a request to the end): the slot is not
        // lost with it.
        if holdsAwakeSlot { awakeBudget?.give(ObjectIdentifier(self)) }
    }

    /// The workspace as the API shows it. Readable without waiting for the actor.
    public nonisolated var snapshot: Workspace {
        let (state, lastActiveAt) = stateSnapshot.withLock { $0 }
        let config = config
        var workspace = Workspace(
            key: record.key, state: state, createdAt: record.createdAt, lastActiveAt: lastActiveAt,
            limits: limits, network: config.network ?? NetworkPolicy(), env: config.env ?? [:])
        workspace.image = record.config.image
        workspace.toolkits = config.toolkits
        workspace.llm = config.llm
        return workspace
    }

    /// The workspace's state, without building its snapshot (for counting many).
    nonisolated var state: WorkspaceState { stateSnapshot.withLock { $0.state } }

    /// The limits in force: the workspace's own, completed with the server's defaults.
    public nonisolated var limits: WorkspaceLimits {
        (config.limits ?? WorkspaceLimits()).completed(with: configuration.defaultLimits)
    }

    /// The configuration the workspace was created with, with its limits as last changed.
    public nonisolated var config: WorkspaceConfig { currentConfig.withLock { $0 } }

    /// The never-reused number that names the workspace's host uid and its disk quota group.
    public nonisolated var sandboxNumber: Int { record.sandboxNumber }

    /// Takes `config` as the workspace's own from now on (stored by the caller). A running sandbox keeps the memory,
    /// CPU and process limits it was started with until the workspace sleeps.
    nonisolated func replaceConfig(_ config: WorkspaceConfig) {
        // A new egress policy holds at once for the proxy's next connections (it was checked when it was given). Set
        // under the configuration's lock, as a boot sets it, so that neither undoes the other.
        currentConfig.withLock { current in
            if config.network != current.network, let rules = try? EgressRules(config.network?.egress ?? .deny) { egressRules.replace(rules) }
            current = config
        }
    }

    /// Sets the egress rules from the configuration as it is now, under its lock (see ``replaceConfig(_:)``).
    nonisolated func refreshEgressRules() throws {
        try currentConfig.withLock { config in egressRules.replace(try EgressRules(config.network?.egress ?? .deny)) }
    }

    /// Held while the workspace's configuration is read, changed and stored (``WorkspaceManager/updateLimits``), so
    /// that two changes at once do not each store their own copy and one undo the other.
    let configUpdates = AsyncLimiter(limit: 1)

    // MARK: Activity

    /// Something that holds the workspace awake until ``WorkspaceRuntime/endActivity(_:)`` is called with it.
    public struct Activity: Sendable, Hashable {
        let id: UInt64
    }

    /// Boots the workspace if it sleeps and holds it awake until `endActivity` is called with the result.
    public func beginActivity() async throws -> Activity {
        try await ensureRunning()
        let activity = Activity(id: lifecycle.beginActivity())
        awakeBudget?.noteBusy(ObjectIdentifier(self))
        refreshResidency()
        idleTimer?.cancel()
        idleTimer = nil
        noteActivity()
        return activity
    }

    /// Releases `activity`; when nothing else holds the workspace, its idle timer starts.
    public func endActivity(_ activity: Activity) {
        guard lifecycle.endActivity(activity.id) else { return }
        refreshResidency()
        noteActivity()
        if lifecycle.isIdle { armIdleTimer() }
    }

    /// Runs `body` as an activity: the workspace is awake while it runs.
    public func withActivity<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        let activity = try await beginActivity()
        defer { endActivity(activity) }
        return try await body()
    }

    /// Boots the workspace when it sleeps; returns once it runs.
    public func wake() async throws {
        let activity = try await beginActivity()
        endActivity(activity)
    }

    private func noteActivity() {
        let now = Date()
        stateSnapshot.withLock { $0.lastActiveAt = now }
        // Persisting on every action would put a database write on every request; once a second is enough,
        // and sleep always persists.
        let clockNow = ContinuousClock.now
        if let last = lastPersistedActivity, clockNow - last < .seconds(1) { return }
        lastPersistedActivity = clockNow
        persistLastActive(now)
    }

    private func persistLastActive(_ date: Date) {
        lastActiveWriter.record(date)
    }

    private func armIdleTimer() {
        idleTimer?.cancel()
        awakeBudget?.noteIdle(self)
        let grace = configuration.idleGrace
        idleTimer = Task { [weak self] in
            do { try await Task.sleep(for: grace) } catch { return }
            await self?.idleTimerFired()
        }
    }

    /// Whether `error` (or what it wraps) is the process's or the system's limit on open files. By its errno where it
    /// has one (NIO's, the sandbox layer's system calls); else by its text, for what another program said (bwrap's
    /// diagnostics, a supervisor's start failure).
    static func isOutOfDescriptors(_ error: any Error) -> Bool {
        if let error = error as? IOError { return error.errnoCode == EMFILE || error.errnoCode == ENFILE }
        if let error = error as? SandboxError, let code = error.errnoCode { return code == EMFILE || code == ENFILE }
        if let error = error as? AgentBoxError, let underlying = error.underlyingError { return isOutOfDescriptors(underlying) }
        let text = "\(error)"
        return text.contains(String(cString: strerror(EMFILE))) || text.contains(String(cString: strerror(ENFILE)))
    }

    /// Starts putting the workspace to sleep ahead of its idle grace, if nothing holds it: another workspace's boot
    /// needs its slot of the awake budget (given back when the stop ends). Whether it started.
    func beginSleepIfIdle() -> Bool {
        guard lifecycle.isIdle else { return false }
        logger.info("workspace put to sleep before its idle grace ended: the server is at its most awake workspaces")
        return beginStop(reason: .sleep) != nil
    }

    /// Starts the stop without waiting for it: the stop waits for this timer's task.
    private func idleTimerFired() {
        guard !Task.isCancelled, lifecycle.isIdle else { return }
        beginStop(reason: .sleep)
    }

    // MARK: Lifecycle

    /// Applies `transition` to the lifecycle and shows its outcome: the snapshot's state, the residency.
    private func transition(_ transition: WorkspaceLifecycle.Transition) {
        let applied = lifecycle.apply(transition)
        assert(applied, "workspace lifecycle: \(transition) is not allowed in \(lifecycle.phase)")
        let state = lifecycle.phase.state
        let changed = stateSnapshot.withLock { snapshot in
            defer { snapshot.state = state }
            return snapshot.state != state
        }
        if let awakeBudget, holdsAwakeSlot {
            if transition == .stop { awakeBudget.noteStopping(ObjectIdentifier(self)) }
            if lifecycle.phase == .sleeping {
                holdsAwakeSlot = false
                awakeBudget.give(ObjectIdentifier(self))
            }
        }
        refreshResidency()
        if changed { onStateChange?(key, state) }
    }

    /// Takes a slot of the awake budget for a boot: a free one; else the workspace idle longest is put to sleep and
    /// the boot waits for a slot to come free, as it does while other workspaces are on their way to sleep (at most
    /// ``awakeSlotWait`` in all). Throws `unavailable` when every awake workspace is in use.
    private func takeAwakeSlot() async throws {
        guard let awakeBudget, !holdsAwakeSlot else { return }
        let deadline = ContinuousClock.now + Self.awakeSlotWait
        while true {
            let attempt = awakeBudget.attempt()
            if attempt.took {
                holdsAwakeSlot = true
                return
            }
            var releasing = attempt.releasing
            if let idle = attempt.idle, await idle.beginSleepIfIdle() { releasing = true }
            // The idle one was held meanwhile: try the next at once.
            if attempt.idle != nil, !releasing { continue }
            let left = deadline - ContinuousClock.now
            guard releasing, left > .zero else { break }
            _ = await attempt.gave.wait(atMost: left)
            try Task.checkCancellation()
        }
        metrics.bootsRefused.increment()
        throw AgentBoxError(
            .unavailable,
            "workspace '\(key)' cannot wake now: this server keeps at most \(awakeBudget.capacity) workspaces awake, and each of them is in use (a shell, a process, a session or a request holds it); try again once one sleeps, or raise the server's --max-awake")
    }

    /// The longest a boot waits for a slot of the awake budget that is on its way back.
    static let awakeSlotWait: Duration = .seconds(15)

    private func ensureRunning() async throws {
        while true {
            if lifecycle.destroyed { throw AgentBoxError.workspaceNotFound(key) }
            switch lifecycle.phase {
            case .running:
                return
            case .booting:
                try await bootTask?.value
            case .stopping:
                await stopTask?.value
            case .sleeping:
                // Booting from here on, before the task first runs: a caller that arrives meanwhile must wait for this
                // boot, not start a second one (two boots would build two sandboxes over one set of cgroups).
                transition(.boot)
                let task = Task { try await self.boot() }
                bootTask = task
                try await task.value
            }
        }
    }

    private func boot() async throws {
        let started = ContinuousClock.now
        // A boot publishes events: numbers are reserved now if few are left, beside the sandbox's launch.
        eventLog.reserveAheadIfLow()
        var launched = started
        var prepared = 0.0
        traffic.reset()
        do {
            try await takeAwakeSlot()
        } catch {
            bootTask = nil
            transition(.bootFailed)
            throw error
        }
        do {
            try prepareDirectories()
            let directoriesReady = ContinuousClock.now
            try await openToolSocket()
            if let backend = configuration.sandbox {
                prepared = (directoriesReady - started).milliseconds
                let sandbox = try await backend.start(sandboxSpec(), logger: logger)
                self.sandbox = sandbox
                launched = ContinuousClock.now
                do {
                    try await startEgressProxy(sandbox)
                } catch {
                    self.sandbox = nil
                    await sandbox.stop()
                    throw error
                }
                let generation = lifecycle.generation
                sandboxTasks.start { [weak self] id in
                    await sandbox.waitUntilEnded()
                    await self?.sandboxEnded(generation: generation, task: id)
                }
            }
        } catch {
            bootTask = nil
            metrics.bootFailures.increment()
            transition(.bootFailed)
            logger.error("workspace failed to boot", metadata: ["error": "\(error)"])
            await publish(.vmShutdown(VMShutdown(reason: .error)))
            if Self.isOutOfDescriptors(error) {
                throw AgentBoxError(
                    .unavailable,
                    "workspace '\(key)' cannot wake now: the server has run out of file descriptors (\(error)); try again once workspaces sleep, or lower the server's --max-awake",
                    underlyingError: error)
            }
            if let error = error as? SandboxError, error.code == .hostMountChanged {
                throw AgentBoxError(.conflict, "workspace '\(key)' cannot boot: a host mount changed since it was allowed; configure its mounts again", underlyingError: error)
            }
            throw AgentBoxError(.internalError, "workspace '\(key)' failed to boot: \(error)", underlyingError: error)
        }
        bootTask = nil
        transition(.booted)
        let booted = ContinuousClock.now
        let bootMs = (booted - started).milliseconds
        metrics.boots.increment()
        metrics.bootDuration.record(elapsed: booted - started)
        logger.debug(
            "workspace booted",
            metadata: [
                "boot.ms": "\(bootMs)", "directories.ms": "\(prepared)",
                "sandbox.ms": "\((launched - started).milliseconds)", "network.ms": "\((booted - launched).milliseconds)",
            ])
        await publish(.vmBooted(VMBooted(bootMs: bootMs)))
        if lifecycle.isIdle { armIdleTimer() }
    }

    private func sandboxSpec() throws -> SandboxSpec {
        try Self.sandboxSpec(
            id: id, directory: directory, sandboxNumber: record.sandboxNumber, limits: limits,
            mounts: MountValidation.sandboxMounts(record.config.mounts ?? []) + toolMounts, imageLayers: imageLayers,
            configuration: configuration, key: key)
    }

    /// The sandbox of workspace `id` (its files in `directory`) as a boot starts it: what ``BlankWorkspaces`` boots
    /// ahead too, so that the workspace made from a blank finds it parked.
    static func sandboxSpec(
        id: String, directory: URL, sandboxNumber: Int, limits: WorkspaceLimits, mounts: [SandboxMount], imageLayers: [URL],
        configuration: AgentBoxConfiguration, key: WorkspaceKey?
    ) throws -> SandboxSpec {
        guard configuration.sandbox?.runsAsWorkspaceUID != true || configuration.isValidSandboxNumber(sandboxNumber) else {
            throw AgentBoxError(.internalError, "workspace '\(key?.rawValue ?? id)' has sandbox number \(sandboxNumber), which has no range of host ids of its own")
        }
        return SandboxSpec(
            id: id, hostDirectory: directory,
            hostUID: configuration.hostUID(sandboxNumber: sandboxNumber),
            limits: SandboxLimits(
                memoryBytes: limits.memoryMb.map { Int64($0) << 20 }, cpuPercent: limits.cpuPercent, pids: limits.pids),
            mounts: mounts,
            ids: configuration.workspaceIDs(sandboxNumber: sandboxNumber), storageIDs: configuration.storageIDs,
            imageLayers: imageLayers)
    }

    private func prepareDirectories() throws {
        try Self.prepareDirectories(directory, sandboxNumber: record.sandboxNumber, configuration: configuration, logger: logger)
    }

    /// Makes the workspace's `workspace/` and `home/` in `directory` when missing, and hands files that do not carry
    /// the ids they should on disk to them, once: a workspace from before id ranges (one host uid each), from before
    /// the storage range (its own range), or forked from one of those.
    static func prepareDirectories(_ directory: URL, sandboxNumber: Int, configuration: AgentBoxConfiguration, logger: Logger) throws {
        let files = FileManager.default
        for sub in ["workspace", "home"] {
            try files.createDirectory(
                at: directory.appendingPathComponent(sub, isDirectory: true), withIntermediateDirectories: true)
        }
        guard let walk = configuration.ownershipWalk(sandboxNumber: sandboxNumber) else { return }
        if configuration.storageIDs != nil {
            // Done when the marker says so, and recorded only after the whole walk (which is safe to repeat).
            guard !configuration.filesCarryStorageIDs(in: directory) else { return }
            logger.info("handing the workspace's files to the storage range")
            try walk.apply(to: directory.path)
            try configuration.markStorageIDs(in: directory)
            return
        }
        let ids = configuration.fileIDs(sandboxNumber: sandboxNumber)
        var info = stat()
        if stat(directory.appendingPathComponent("workspace").path, &info) == 0, ids.inside(info.st_uid) == nil {
            logger.info("handing the workspace's files to its id range", metadata: ["owner": "\(info.st_uid)"])
            // No storage range here (any more): its marker goes before the walk, which makes the files untrue to it.
            configuration.forgetStorageIDs(in: directory)
            try walk.apply(to: directory.path)
        }
    }

    /// The sandbox ended; unless it was asked to (its init died), the workspace stops with reason `error`. Starts
    /// the stop without waiting for it: the stop waits for this watcher's task.
    private func sandboxEnded(generation ended: Int, task: UInt64) {
        sandboxTasks.finished(task)
        guard ended == lifecycle.generation, lifecycle.phase == .running else { return }
        logger.warning("workspace sandbox ended unexpectedly")
        beginStop(reason: .error)
    }

    /// A task of ``sandboxTasks`` has ended.
    func sandboxTaskEnded(_ task: UInt64) {
        sandboxTasks.finished(task)
    }

    /// Puts the workspace to sleep now, whatever holds it awake: every process is killed.
    public func sleep() async {
        if lifecycle.phase == .booting { _ = try? await bootTask?.value }
        await stop(reason: .sleep)
    }

    private func stop(reason: ShutdownReason) async {
        await beginStop(reason: reason)?.value
    }

    /// Starts stopping a running workspace and returns the stop under way (nil when the workspace does not run).
    @discardableResult
    private func beginStop(reason: ShutdownReason) -> Task<Void, Never>? {
        if lifecycle.phase == .stopping { return stopTask }
        guard lifecycle.allows(.stop) else { return nil }
        transition(.stop)
        let task = Task { await self.performStop(reason: reason) }
        stopTask = task
        return task
    }

    private func performStop(reason: ShutdownReason) async {
        // Stopped while something held it awake (a sleep asked for, the server's stop): it was active until now. An
        // idle workspace's last activity stays the end of its last one, not the moment its grace ran out.
        let busy = !lifecycle.activities.isEmpty
        let timer = idleTimer
        idleTimer = nil
        timer?.cancel()
        await timer?.value
        let hooks = Array(stopHooks.values)
        stopHooks.removeAll()
        await withTaskGroup(of: Void.self) { group in
            for hook in hooks { group.addTask { await hook() } }
        }
        await shutDownNetwork(keepingListenerIn: reason == .sleep ? sandbox : nil)
        if let sandbox {
            // A sleep parks the sandbox where the backend can (its next wake then only starts processes); else, and
            // for every other reason, it is stopped.
            let parked = reason == .sleep ? await sandbox.park() : false
            if !parked { await sandbox.stop() }
            self.sandbox = nil
        }
        await closeToolSocket()
        // The processes' pumps publish their last output and their exit before the workspace reports shutdown.
        await drainProcesses()
        await drainShells()
        // The sandbox is gone: its end's watcher and the archives' releases are done or end now.
        for task in sandboxTasks.cancelAll() { await task.value }
        // Their processes have exited, so each follower has its process's exit to forward, and ends.
        for task in followers.running { await task.value }
        stopTask = nil
        transition(.stopped)
        if busy {
            let now = Date()
            stateSnapshot.withLock { $0.lastActiveAt = max($0.lastActiveAt, now) }
        }
        persistLastActive(stateSnapshot.withLock { $0.lastActiveAt })
        logger.debug("workspace stopped", metadata: ["reason": "\(reason.rawValue)"])
        await publish(.vmShutdown(VMShutdown(reason: reason)))
        if reason != .destroy { onSlept?(key) }
    }

    /// Stops the workspace for good and ends its event streams. The caller removes its records and files.
    func destroy() async {
        if lifecycle.phase == .booting { _ = try? await bootTask?.value }
        if lifecycle.phase == .running || lifecycle.phase == .stopping {
            await stop(reason: .destroy)
        } else {
            await publish(.vmShutdown(VMShutdown(reason: .destroy)))
        }
        lifecycle.destroy()
        eventLog.finishSubscriptions()
        stopWatchers()
        refreshResidency()
        // What still runs in the background ends with the workspace.
        for task in followers.cancelAll() { await task.value }
        let (drainer, reservation) = eventLog.finish()
        await drainer?.value
        _ = try? await reservation?.value
        await lastActiveWriter.finish().value
    }

    /// Stores the last activity time still pending and ends the writer (the server is stopping and the store is about
    /// to close). Activity recorded after this is not stored.
    func finishActivityWriter() async {
        await lastActiveWriter.finish().value
    }

    /// Ends the event streams and file watches (the server is stopping) without changing the workspace.
    func finishEventStreams() {
        eventLog.finishSubscriptions()
        stopWatchers()
        refreshResidency()
    }

    /// The running sandbox, booting the workspace first if needed. Call inside an activity.
    func runningSandbox() throws -> any Sandbox {
        guard let sandbox else {
            if configuration.sandbox == nil {
                throw AgentBoxError(.unsupported, "this AgentBox runs no processes (no sandbox backend configured)")
            }
            throw AgentBoxError(.conflict, "workspace '\(key)' is stopping")
        }
        return sandbox
    }

    // MARK: Events

    /// Numbers `event` and delivers it to the workspace's subscribers.
    public func publish(_ event: WorkspaceEvent) async {
        metrics.workspaceEvents.increment()
        await eventLog.publish(event)
    }

    /// The workspace's events from now on, preceded by the remembered ones numbered above `after`.
    /// Subscribing does not boot the workspace. The stream ends when the workspace is destroyed.
    public func events(after: Int64? = nil) -> AsyncStream<WorkspaceEventEnvelope> {
        if lifecycle.destroyed { return AsyncStream { $0.finish() } }
        let stream = eventLog.subscribe(after: after) { [weak self] in await self?.removeEndedSubscriptions() }
        refreshResidency()
        return stream
    }

    private func removeEndedSubscriptions() {
        eventLog.removeEndedSubscriptions()
        refreshResidency()
    }

    /// How many owned background tasks run: the sandbox's (its end's watcher, archives' releases) and the output
    /// followers (for tests).
    var backgroundTaskCounts: (sandbox: Int, followers: Int) { (sandboxTasks.count, followers.count) }

    /// How many event subscribers are attached (for tests and metrics).
    public var subscriberCount: Int { eventLog.subscriberCount }
}
