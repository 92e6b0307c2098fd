import AgentBoxAPI
import AgentBoxSandbox
import Foundation

/// How an embedded AgentBox behaves. The server's flags fill one of these in.
public struct AgentBoxConfiguration: Sendable {
    /// Where the database and the workspaces' files live.
    public var dataDirectory: URL
    /// How long a workspace with nothing active stays awake before it sleeps.
    public var idleGrace: Duration
    /// Limits for the fields a workspace leaves unset.
    public var defaultLimits: WorkspaceLimits
    /// Events each workspace keeps in memory for `Last-Event-ID` replay.
    public var eventReplayCapacity: Int
    /// How long a sleeping workspace that nobody listens to stays in the server's memory, with its recent events for
    /// `Last-Event-ID` replay; then it costs nothing until its next action (see ``WorkspaceManagerService``).
    public var sleepingRetention: Duration = .seconds(30)
    /// Events a slow subscriber may have outstanding before it is cut off (it may resume with `Last-Event-ID`).
    public var subscriberBufferCapacity: Int
    /// The most workspaces awake at once (see ``AwakeBudget``): a boot past it puts the workspace idle longest to sleep,
    /// or, when every awake one is in use, fails with `unavailable`. `nil` (the default of an embedded AgentBox): no
    /// budget; `agentbox serve` sets one from its descriptor limit (`--max-awake`).
    public var maxAwakeWorkspaces: Int?
    /// Runs the workspaces' processes. `nil` runs none: actions that need a process fail with `unsupported`.
    public var sandbox: (any SandboxBackend)?
    /// Host uids of sandboxes are this plus the workspace's sandbox number (when the server runs as root).
    public var sandboxUIDBase: UInt32 = 100_000_000
    /// Output kept per stream of a spawned process (the most recent part).
    public var processOutputBufferBytes = 1 << 20
    /// Output kept per stream of an exec when the request names no `maxOutputBytes`.
    public var execDefaultMaxOutputBytes = 1 << 20
    /// The largest `maxOutputBytes` an exec may ask for.
    public var execMaxOutputBytesLimit = 64 << 20
    /// Exited processes remembered per workspace (the oldest are forgotten first).
    public var exitedProcessMemory = 256
    /// Host directories that `host` mounts may name (each a prefix of the mount's real path). None by default.
    public var allowedHostMountPrefixes: [String] = []
    /// Private and special-purpose blocks (and host addresses) that egress may reach for workspaces whose policy
    /// allows the target: the server admin's explicit choice (`serve --egress-allow-private`). None by default; a
    /// workspace's policy alone never opens them. See ``EgressAddressGuard``.
    public var egressAllowedPrivateRanges: [IPNetwork] = []
    /// How long a fetch or a preview request waits for a server inside the workspace to accept on its port (a
    /// server started a moment ago, or a workspace waking up, is given that long); then 502.
    public var portWaitLimit: Duration = .seconds(10)
    /// Blank workspaces kept ready for creates (see ``BlankWorkspaces``): each an id and sandbox number reserved in
    /// the store, its storage made and its sandbox booted and parked, so that a create takes one in a single store
    /// write and its first action wakes it like a sleeping workspace. 0 (the default of an embedded AgentBox): none;
    /// `agentbox serve --blank-workspaces`. Not used in a cluster.
    public var blankWorkspaces = 0
    /// Where workspaces' files live: in a btrfs disk pool that enforces `limits.diskMb`, or in plain directories of
    /// the data directory, where it is not enforced (the default of an embedded AgentBox; `agentbox serve` makes a
    /// pool when it can).
    public var diskPool: DiskPoolSetting = .none
    /// How long a preview URL works when its request names no expiry.
    public var previewDefaultLifetime: Duration = .seconds(3600)
    /// The longest a preview URL may work.
    public var previewMaxLifetime: Duration = .seconds(86400)
    /// How long the preview proxy keeps a connection into a workspace open unused (it holds the workspace awake): it
    /// closes between one and two of these after its last answer, never during one.
    public var previewConnectionIdle: Duration = .seconds(10)

    /// The agents sessions may run, by id.
    public var agents: [AgentDefinition] = [.mock, .claude, .codex, .amp, .opencode, .gemini, .pi]
    /// Download URLs of agents' binaries, by agent id: the last install source, after PATH, npm and PyPI.
    public var agentDownloads: [String: URL] = [:]
    /// The Python package index whose JSON API agent installs download wheels from (then pip, with the machine's own
    /// configuration, when it does not answer).
    public var packageIndex = URL(string: "https://pypi.org")!
    /// Refuse sessions of agents that are not installed, instead of installing them on first use.
    public var requirePreinstall = false
    /// How permission requests of agents are answered when a session sets no rule of its own.
    public var permissionPolicy = AgentBoxConfiguration.standardPermissionPolicy
    /// How long an agent's question (`session/elicitation`) waits for its answer before it is answered `cancel`.
    public var questionTimeout: Duration = .seconds(600)
    /// How long the agent of a cancelled turn has to end it before its process is stopped.
    public var cancelGrace: Duration = .seconds(10)
    /// How long starting an agent (its process, `initialize` and `session/new` or `session/load`) may take.
    public var agentStartTimeout: Duration = .seconds(60)
    /// The most of an earlier transcript handed as context to an agent that cannot load its old session.
    public var resumeContextBytes = 32 << 10
    /// Cron: how long an `exec` job's command may run when its action sets no `timeoutMs`.
    public var cronDefaultTimeout: Duration = .seconds(3600)
    /// Cron: the runs kept per job (older ones are deleted as new ones come).
    public var cronRunRetention = 100
    /// Cron: the most jobs one workspace may have.
    public var cronMaxJobsPerWorkspace = 100
    /// Cron: the most runs executing at once across all workspaces; further due runs wait for a place (each still
    /// runs once, late).
    public var cronMaxConcurrentRuns = 32
    /// Where the server-wide metrics go: by default a Prometheus registry of this configuration's own (what
    /// `GET /metrics` serves); an embedder may hand its own swift-metrics factory (``AgentBoxMetrics/init(factory:)``).
    public var metrics = AgentBoxMetrics()
    /// Speaks MCP to the workspaces' toolkit MCP servers (`/.agentbox/bin/tool mcp`, given to every agent session of
    /// a workspace with toolkits). The server sets AgentBoxMCP's; without one, sessions get no toolkit MCP server (the
    /// `agentbox-{toolkit}` commands work all the same).
    public var toolkitMCP: (any ToolkitMCPServing)?
    /// The LLM gateway (`/llm/...`): model calls of the workspaces, forwarded with the host's keys, within their
    /// budgets. `nil`: none, and workspaces get no gateway variables.
    public var llmGateway: LLMGateway?
    /// This node's part in a cluster (with a ``ClusterStore``); `nil` for a single server.
    public var cluster: ClusterOptions?
    /// Where a cluster checkpoints workspaces' files (an S3-compatible blob store); `nil`: no checkpoints, so a
    /// workspace taken over from a dead node starts with the files this node has of it (none, usually).
    public var checkpoints: (any WorkspaceCheckpointStore)?
    /// Where to ask about bearer tokens this server does not know (`serve --auth-hook`); `nil`: they are refused.
    public var authHook: URL?

    /// The most workspaces awake at once that `descriptorLimit` (the process's limit on open files) leaves room for:
    /// an awake workspace with one shell holds 3 of the server's descriptors (ARCHITECTURE.md, "Descriptors"), each of
    /// `otherSandboxes` (parked, pre-started, a blank's) 3, and an eighth of the limit, at least 1,024, is kept for the
    /// rest (connections, the store, the boot caches, agents).
    ///
    /// With `memoryBytes` (the machine's memory, or less under a memory cgroup's limit: `WorkspaceMemory.bound`), at
    /// most one per 4 MiB of it as well: an idle awake workspace with a shell costs the machine about 2.6 MB at 5,761
    /// awake (1.8 MB of it kernel slab, 0.77 MB its processes' PSS: BENCHMARKS.md), so that bound leaves about a third
    /// of the memory to what they run. It is the one that counts when the descriptor limit is the kernel's most (a
    /// server run as root raises its own: `DescriptorLimit.raise`).
    public static func awakeCapacity(forDescriptorLimit descriptorLimit: Int, otherSandboxes: Int = 0, memoryBytes: Int? = nil) -> Int {
        let reserve = max(1024, descriptorLimit / 8) + 3 * max(0, otherSandboxes)
        let byDescriptors = max(1, (descriptorLimit - reserve) / 3)
        guard let memoryBytes else { return byDescriptors }
        return max(1, min(byDescriptors, memoryBytes / (4 << 20)))
    }

    /// Reads and searches go ahead; edits, commands and the rest are asked; an unanswered question is rejected
    /// after five minutes.
    public static let standardPermissionPolicy = PermissionPolicy(
        rules: ["read": .allow, "search": .allow, "think": .allow], default: .ask, timeoutMs: 300_000)

    /// Defaults that suit coding agents: 2 GiB, one core, 512 processes.
    public static let standardLimits = WorkspaceLimits(memoryMb: 2048, cpuPercent: 100, pids: 512, diskMb: nil)

    public init(
        dataDirectory: URL, idleGrace: Duration = .seconds(60), defaultLimits: WorkspaceLimits = standardLimits,
        eventReplayCapacity: Int = 1024, subscriberBufferCapacity: Int = 256, sandbox: (any SandboxBackend)? = nil
    ) {
        self.sandbox = sandbox
        self.dataDirectory = dataDirectory
        self.idleGrace = idleGrace
        self.defaultLimits = defaultLimits
        self.eventReplayCapacity = eventReplayCapacity
        self.subscriberBufferCapacity = subscriberBufferCapacity
    }

    /// The data directory when none is given: `$AGENTBOX_DATA_DIR`, else `$XDG_DATA_HOME/agentbox`,
    /// else `~/.local/share/agentbox` — except for root, whose home (`/root`, mode 0700) the workspaces' own uids
    /// cannot enter: root's default is `/var/lib/agentbox`.
    public static func defaultDataDirectory(
        environment: [String: String] = ProcessInfo.processInfo.environment, root: Bool = getuid() == 0
    ) -> URL {
        if let explicit = environment["AGENTBOX_DATA_DIR"], !explicit.isEmpty {
            return URL(fileURLWithPath: explicit, isDirectory: true)
        }
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg, isDirectory: true).appendingPathComponent("agentbox", isDirectory: true)
        }
        if root { return URL(fileURLWithPath: "/var/lib/agentbox", isDirectory: true) }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home, isDirectory: true)
            .appendingPathComponent(".local/share/agentbox", isDirectory: true)
    }

    /// Where the sandbox init binary is: `$AGENTBOX_SANDBOX_INIT`, else `agentbox-sandbox-init` beside the running
    /// executable (SwiftPM builds both into one directory).
    public static func defaultSandboxInitPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit = environment["AGENTBOX_SANDBOX_INIT"], !explicit.isEmpty { return explicit }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("agentbox-sandbox-init").path
    }

    /// Where installed agents live (`agents/claude/claude`, ...), mounted read-only into every sandbox:
    /// `<data-dir>/agents`, or `system/agents` in the disk pool.
    public var agentsDirectory: URL {
        agentsDirectoryInPool ?? dataDirectory.appendingPathComponent("agents", isDirectory: true)
    }
    /// Set when the disk pool holds the installed agents.
    var agentsDirectoryInPool: URL?

    /// The host directory that holds a workspace's persistent files.
    func workspaceDirectory(id: String) -> URL {
        dataDirectory.appendingPathComponent("workspaces", isDirectory: true).appendingPathComponent(id, isDirectory: true)
    }

    /// The directory that holds every snapshot, one subdirectory each, named by the snapshot's id.
    var snapshotsDirectory: URL { dataDirectory.appendingPathComponent("snapshots", isDirectory: true) }

    /// The host ids of the sandbox with `sandboxNumber`: a range of ``WorkspaceIDs/slot`` from the base up.
    func workspaceIDs(sandboxNumber: Int) -> WorkspaceIDs {
        WorkspaceIDs(start: sandboxUIDBase &+ UInt32(clamping: sandboxNumber) &* WorkspaceIDs.slot)
    }

    /// The host uid of the agent user (uid 1000 inside) of the sandbox with `sandboxNumber`: what its processes run as.
    func hostUID(sandboxNumber: Int) -> UInt32 { workspaceIDs(sandboxNumber: sandboxNumber).start + WorkspaceIDs.agent }

    /// The storage range: the ids every workspace's files carry on disk when the sandbox can mount them idmapped
    /// (root, and idmapped mounts work). It is the range of sandbox number 0, which no workspace gets (numbers start
    /// at 1), so no process ever runs as these ids: an escaped process owns no workspace's files, its own included.
    /// Snapshots, forks and images keep the ids as they are: no walk over the files. `nil`: each workspace's files
    /// carry its own range (and a fork walks every inode to hand it to the fork's).
    var storageIDs: WorkspaceIDs? {
        sandbox?.runsAsWorkspaceUID == true && sandbox?.idmapsStorage == true ? workspaceIDs(sandboxNumber: 0) : nil
    }

    /// The file, in a workspace's directory (its subvolume's root: snapshots and forks in the pool carry it), that says
    /// every one of its files carries the storage range: written only once a walk has handed them all over, so a
    /// walk cut short (a crash, a full disk) is done again at the next boot, never left half-way.
    static let storageMarker = ".storage-ids"

    /// Whether the workspace's files in `directory` all carry the storage range (its marker names this range).
    func filesCarryStorageIDs(in directory: URL) -> Bool {
        guard let storageIDs else { return false }
        let text = try? String(contentsOf: directory.appendingPathComponent(Self.storageMarker), encoding: .utf8)
        return text == "\(storageIDs.start)\n"
    }

    /// Records that the workspace's files in `directory` all carry the storage range; nothing without one.
    func markStorageIDs(in directory: URL) throws {
        guard let storageIDs else { return }
        // Written in place, without the fsync and rename of an atomic write (1.8 ms of a new workspace's first boot): a
        // marker cut short by a crash reads as no marker (the walk, which is safe to repeat, runs again), and the file
        // systems that hold workspaces commit its creation after the walk's changes of owner.
        let path = directory.appendingPathComponent(Self.storageMarker).path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw AgentBoxError(.internalError, "cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let text = Array("\(storageIDs.start)\n".utf8)
        guard write(fd, text, text.count) == text.count else {
            throw AgentBoxError(.internalError, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Removes that record (a walk is about to hand the files to another range).
    func forgetStorageIDs(in directory: URL) {
        try? FileManager.default.removeItem(at: directory.appendingPathComponent(Self.storageMarker))
    }

    /// Whether `sandboxNumber` gives a range of its own: not the storage range (0), and not past the top of the ids
    /// (the arithmetic would wrap onto the storage range or the host's low ids).
    func isValidSandboxNumber(_ sandboxNumber: Int) -> Bool {
        sandboxNumber >= 1 && UInt64(sandboxUIDBase) + UInt64(sandboxNumber + 1) * UInt64(WorkspaceIDs.slot) <= UInt64(UInt32.max)
    }

    /// The ids the files of the workspace with `sandboxNumber` carry on disk: the storage range, else its own.
    func fileIDs(sandboxNumber: Int) -> WorkspaceIDs {
        storageIDs ?? workspaceIDs(sandboxNumber: sandboxNumber)
    }

    /// The walk that hands a tree made for another workspace (an image, a workspace from before the storage range)
    /// to the ids this one's files carry, when its processes run as its own ids.
    func ownershipWalk(sandboxNumber: Int) -> OwnershipWalk? {
        sandbox?.runsAsWorkspaceUID == true
            ? OwnershipWalk(ids: fileIDs(sandboxNumber: sandboxNumber), base: sandboxUIDBase) : nil
    }

    /// The owner of the files the server creates for the workspace with `sandboxNumber`: its agent's id on disk (in
    /// the storage range, or its own) when its processes run as their own ids, else `nil` (the server's own uid).
    func fileOwner(sandboxNumber: Int) -> UInt32? {
        sandbox?.runsAsWorkspaceUID == true ? fileIDs(sandboxNumber: sandboxNumber).start + WorkspaceIDs.agent : nil
    }
}

/// Whether an AgentBox keeps its workspaces' files in a ``DiskPool``.
public enum DiskPoolSetting: Sendable, Equatable {
    /// Plain directories: `diskMb` is not enforced.
    case none
    /// The pool at `<data-dir>/pool`: a btrfs mounted there, else AgentBox's own image of `sizeBytes` (default: the
    /// smaller of 64 GiB and half the free space), made on first start. Without root or btrfs, plain directories.
    case automatic(sizeBytes: Int64? = nil)
}

extension Duration {
    /// Parses `500ms`, `60s`, `2m`, `1h`, or a bare number of seconds; `nil` when the text is none of these.
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, seconds) in units where trimmed.hasSuffix(suffix) {
            guard let value = Double(trimmed.dropLast(suffix.count)), value >= 0, value.isFinite else { return nil }
            return .milliseconds(Int64((value * seconds * 1000).rounded()))
        }
        guard let value = Double(trimmed), value >= 0, value.isFinite else { return nil }
        return .milliseconds(Int64((value * 1000).rounded()))
    }
}
