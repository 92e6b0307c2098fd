import CAgentBoxSandbox
import Foundation
import Logging
import Synchronization

/// The Linux backend: each sandbox is a bubblewrap container with its own user, mount, PID, IPC, UTS, cgroup and
/// network namespaces (loopback only), whose first process is `agentbox-sandbox-init`, inside cgroups that limit its
/// memory, CPU and processes.
///
/// When the server runs as root, each workspace runs as its own unprivileged host uid (so that an escape from the
/// namespaces meets ordinary Unix permissions); otherwise as the server's uid. Inside, processes are uid 1000
/// (`agent`), with no capabilities and `no_new_privs`, under a seccomp filter (`ab_seccomp_program`) that bwrap loads
/// before it starts the sandbox's init.
public struct BubblewrapBackend: SandboxBackend {
    public let name = "linux"
    let bwrapPath: String
    let initPath: String
    /// Host binaries mounted read-only into every sandbox under `/.agentbox/bin` (the static mock agent, when it
    /// was built beside the init): name in the sandbox → host path.
    let tools: [(name: String, path: String)]
    /// Installed agents (`<data-dir>/agents`), mounted read-only at `/.agentbox/agents` in every sandbox.
    private(set) var agentsDirectory: URL
    private(set) var etcDirectory: URL
    /// The lower layer of every workspace's /var (dpkg's and apt's state, copied from the host).
    let varDirectory: URL
    /// `nil` when this server may not create cgroups: limits fall back to rlimits.
    let cgroups: SandboxCgroups.Version?
    let switchesUser: Bool
    public var runsAsWorkspaceUID: Bool { switchesUser }
    /// Set by ``make`` when an idmapped mount of the data directory works here (root, Linux 5.12+, a file system
    /// that supports them: ext4, xfs, btrfs, overlayfs on 5.19+).
    public private(set) var idmapsStorage = false
    /// The storage namespaces of the workspaces booted last (a wake reuses its workspace's).
    let storageNamespaces = StorageNamespaceCache(capacity: 256)
    /// The system layers' overlays of the workspaces booted last (a wake clones its workspace's).
    let systemLayers = SystemLayerCache(capacity: 256)

    /// How many workspaces' system layers are kept between boots.
    public var keptSystemLayerCount: Int { systemLayers.count }
    /// How many boots used the kept system layer of their workspace's last boot.
    public var systemLayerReuses: Int { systemLayers.reuses.load(ordering: .relaxed) }

    /// Sandboxes of sleeping workspaces, kept for their next wake (see ``ParkedSandboxes``).
    public let parked: ParkedSandboxes

    /// How many sandboxes are parked.
    public var parkedSandboxCount: Int { parked.count }
    /// How many boots took their workspace's parked sandbox.
    public var parkedSandboxReuses: Int { parked.reuses.load(ordering: .relaxed) }

    public func forgetWorkspace(_ id: String) async {
        systemLayers.forget(workspace: id)
        await parked.remove(id)?.stop()
    }

    public func shutDown() async {
        await parked.stopAll()
    }
    /// Network and IPC namespaces made ahead of boots (root only; `nil` without a pool): see ``SandboxPool``.
    public let pool: SandboxPool?

    public func toolPath(_ name: String) -> String? {
        tools.contains { $0.name == name } ? "/.agentbox/bin/\(name)" : nil
    }

    public var agentsPath: String { "/.agentbox/agents" }

    /// Prepares the backend: finds bwrap and the init binary, writes the sandbox /etc, and checks which
    /// privileges the host grants. `notes` lists, one line each, what cannot be enforced here.
    /// `poolSize` sandboxes (or namespaces) are kept ready for boots when the server is root (see ``SandboxPool``; 0:
    /// none): whole pre-started sandboxes where the host allows them and `prestartedSandboxes` is not false (`nil`:
    /// unless `AGENTBOX_PRESTARTED_SANDBOXES=0`). Up to `parkedSandboxes` sandboxes of sleeping workspaces are kept
    /// for their wakes (see ``ParkedSandboxes``; with pre-started sandboxes only).
    public static func make(
        stateDirectory: URL, initPath: String, poolSize: Int = 0, prestartedSandboxes: Bool? = nil, parkedSandboxes: Int = 0,
        logger: Logger = Logger(label: "agentbox.sandbox")
    ) throws -> (backend: BubblewrapBackend, notes: [String]) {
        guard let bwrap = findExecutable("bwrap") else {
            throw SandboxError(.startFailed, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
        }
        guard FileManager.default.isExecutableFile(atPath: initPath) else {
            throw SandboxError(.startFailed, "the sandbox init \(initPath) is missing (build the agentbox-sandbox-init product)")
        }
        let etc = try SandboxRoot.prepareEtc(cache: URL(fileURLWithPath: SandboxRoot.etcCache))
        let variable = try SandboxRoot.prepareVar(cache: URL(fileURLWithPath: SandboxRoot.varCache))
        var notes: [String] = []
        let (version, problem) = SandboxCgroups.probe()
        if let problem { notes.append("\(problem): memory, CPU and process limits fall back to rlimits") }
        let root = getuid() == 0
        if !root { notes.append("not running as root: every workspace runs as this server's uid \(getuid())") }
        if root, let closed = firstUntraversableAncestor(of: stateDirectory) {
            // bwrap runs as the workspace's uid and resolves the paths of what it mounts: it must be able to pass.
            throw SandboxError(
                .startFailed,
                "workspaces run as their own uids, which cannot enter \(closed.path) (mode \(String(closed.mode, radix: 8))): "
                    + "choose a --data-dir outside it (for example /var/lib/agentbox), or chmod o+x \(closed.path)")
        }
        let beside = URL(fileURLWithPath: initPath).deletingLastPathComponent()
        let tools = [
            ("mock-agent", beside.appendingPathComponent("agentbox-mock-agent").path),
            ("acp-adapter", beside.appendingPathComponent("agentbox-acp-adapter").path),
            ("tool", beside.appendingPathComponent("agentbox-tool").path),
        ].filter { FileManager.default.isExecutableFile(atPath: $0.1) }
        let agents = stateDirectory.deletingLastPathComponent().appendingPathComponent("agents", isDirectory: true)
        try? FileManager.default.createDirectory(at: agents, withIntermediateDirectories: true)
        let idmaps = root && canIdmap(stateDirectory)
        if root && !idmaps {
            notes.append("idmapped mounts do not work on \(stateDirectory.path): each workspace's files carry its own ids (forks walk every file)")
        }
        let cgroups = problem == nil ? version : nil
        // Whole sandboxes started ahead of their workspaces need root, cgroups (limits are the cgroups', set at bind)
        // and idmapped storage (the workspace's files reach the sandbox as one detached tree);
        // AGENTBOX_PRESTARTED_SANDBOXES=0 keeps the pool to namespaces (bwrap starts every sandbox).
        let prestart = root && idmaps && cgroups != nil
            && (prestartedSandboxes ?? (ProcessInfo.processInfo.environment["AGENTBOX_PRESTARTED_SANDBOXES"] != "0"))
        var backend = BubblewrapBackend(
            bwrapPath: bwrap, initPath: initPath, tools: tools, agentsDirectory: agents, etcDirectory: etc,
            varDirectory: variable, cgroups: cgroups, switchesUser: root,
            parked: ParkedSandboxes(capacity: prestart && poolSize > 0 ? parkedSandboxes : 0, logger: logger),
            pool: root && poolSize > 0
                ? SandboxPool(
                    size: poolSize, kind: prestart ? .sandboxes(initPath: initPath, stage: try SandboxRoot.prepareStage().path) : .namespaces,
                    cgroups: cgroups, logger: logger) : nil)
        backend.idmapsStorage = idmaps
        try backend.checkUserNamespaces()
        let filter = ab_seccomp_open()
        guard filter >= 0 else {
            throw SandboxError(.startFailed, "no seccomp filter for this architecture (x86_64 and aarch64 have one)")
        }
        close(filter)
        return (backend, notes)
    }

    /// The backend's background work: the pool of pre-started sandboxes until cancelled; and, once per process, the
    /// sweep of cgroups that sandboxes left behind (on a thread of its own, not waited for).
    public func runPool() async {
        if let cgroups { LeftoverCgroups.shared.sweepOnce(version: cgroups) }
        await pool?.run()
    }

    public func keepingSystemFiles(in directory: URL) throws -> (any SandboxBackend)? {
        var backend = self
        // /etc stays the host-wide copy: with the system layer it is an idmapped lower layer, whose path no mount
        // table shows.
        backend.agentsDirectory = directory.appendingPathComponent("agents", isDirectory: true)
        try FileManager.default.createDirectory(at: backend.agentsDirectory, withIntermediateDirectories: true)
        return backend
    }

    /// Whether `directory` can be mounted idmapped (through a namespace that maps the storage range of base 0 to the
    /// next): the mount is made, detached, and closed at once.
    static func canIdmap(_ directory: URL) -> Bool {
        guard let mapping = try? UserNamespace(mapping: WorkspaceIDs(start: 100_000_000), to: WorkspaceIDs(start: 100_000_000 + WorkspaceIDs.slot)) else {
            return false
        }
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        guard let tree = try? mapping.idmappedTree(of: directory.path) else { return false }
        close(tree)
        return true
    }

    /// The first directory from `/` down to `directory` that other users may not enter (no `o+x`), or `nil`.
    static func firstUntraversableAncestor(of directory: URL) -> (path: String, mode: UInt32)? {
        var path = ""
        for component in directory.standardizedFileURL.pathComponents.dropFirst() {
            path += "/" + component
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }  // created later, by us, traversable
            if info.st_mode & S_IXOTH == 0 { return (path, info.st_mode & 0o7777) }
        }
        return nil
    }

    static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs a minimal sandbox once, so that a host without user namespaces is told at start-up, not at first use.
    private func checkUserNamespaces() throws {
        let diagnostics = try PipePair()
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer {
            close(diagnostics.read)
            close(devNull)
        }
        let probeUID: UInt32 = 65534
        let pid = try HostSpawn.spawn(
            executable: bwrapPath,
            arguments: [bwrapPath, "--unshare-all", "--uid", "1000", "--gid", "1000", "--ro-bind", "/usr", "/usr"]
                + SandboxRoot.topLevel.compactMap { name in
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/\(name)")).map { ["--symlink", $0, "/\(name)"] }
                }.flatMap { $0 } + ["/usr/bin/true"],
            environment: ["PATH": "/usr/bin:/bin"], descriptors: [devNull, devNull, diagnostics.write],
            credentials: switchesUser ? .init(uid: probeUID, gid: probeUID) : nil)
        close(diagnostics.write)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        guard status == 0 else {
            var buffer = [UInt8](repeating: 0, count: 1024)
            let count = read(diagnostics.read, &buffer, buffer.count)
            let message = count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : "exit status \(status)"
            throw SandboxError(.startFailed, "bubblewrap cannot create namespaces here (user namespaces disabled?): \(message.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    public func start(_ spec: SandboxSpec, logger: Logger) async throws -> any Sandbox {
        try await start(spec, logger: logger, prestarted: nil)
    }

    /// Boots workspace `spec.id`'s sandbox on a pre-started sandbox made for it (not one of the pool's, which are kept
    /// for boots under way) and parks it at once, for the workspace's first boot to take (as the most recently parked:
    /// the least recently parked one goes when they are full); `false` when it is not parked (the backend parks none,
    /// keeps no pre-started sandboxes, or it could not be parked).
    public func parkAhead(_ spec: SandboxSpec, listenerPort: Int?, logger: Logger) async throws -> Bool {
        guard parked.accepts, let pool, switchesUser, spec.ids != nil, spec.storageIDs != nil, spec.storageIDs != spec.ids, cgroups != nil,
            let prestarted = try await pool.makeSandbox()
        else { return false }
        // Cancelled meanwhile (the server is stopping): not bound (let go, it ends itself).
        if Task.isCancelled { throw CancellationError() }
        // Once started it is parked or stopped, whatever happens: nothing checks for cancellation in between.
        let sandbox = try await start(spec, logger: logger, prestarted: prestarted)
        if let listenerPort, let namespace = try? sandbox.openNetworkNamespace() {
            let socket = ab_listen_in_network_namespace(namespace, Int32(listenerPort))
            close(namespace)
            if socket >= 0 { sandbox.keepListener(socket) }
        }
        if await sandbox.park() { return true }
        await sandbox.stop()
        return false
    }

    /// Starts the sandbox of `spec`: its parked one, else bound to `prestarted` or to one of the pool's, else with bwrap.
    private func start(_ spec: SandboxSpec, logger: Logger, prestarted given: PrestartedSandbox?) async throws -> any Sandbox {
        let clock = ContinuousClock()
        let began = clock.now
        let workspaceDirectory = spec.hostDirectory.appendingPathComponent("workspace", isDirectory: true)
        let homeDirectory = spec.hostDirectory.appendingPathComponent("home", isDirectory: true)
        // bwrap runs as the workspace's root uid (the owner of its user namespace), or as its one uid without one.
        let launcherUID = spec.ids?.start ?? spec.hostUID
        let credentials = switchesUser ? launcherUID.map { HostSpawn.Credentials(uid: $0, gid: $0) } : nil
        // The storage range, when the workspace's files are kept in it (then its directories are owned by its agent
        // on disk, and mounted idmapped to its own range below).
        let storage = switchesUser && spec.ids != nil && spec.storageIDs != spec.ids ? spec.storageIDs : nil
        for directory in [spec.hostDirectory, workspaceDirectory, homeDirectory] {
            let owner = switchesUser ? (storage.map { $0.start + WorkspaceIDs.agent } ?? spec.hostUID) : nil
            // Through a descriptor of the directory itself: a symlink put in its place is refused, never followed.
            let fd = open(directory.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw SandboxError.errno("open \(directory.path) (a directory, not a symlink)") }
            defer { close(fd) }
            if let owner, fchown(fd, owner, owner) != 0 {
                throw SandboxError.errno("chown \(directory.path)")
            }
            // Owner only: another workspace's uid (after an escape) cannot even look inside.
            guard fchmod(fd, 0o700) == 0 else { throw SandboxError.errno("chmod \(directory.path)") }
        }
        // The workspace's own sandbox, parked when it went to sleep: only processes are started in it.
        if parked.holds(spec.id), let ids = spec.ids, let storage {
            let fingerprint = ParkedSandboxes.Fingerprint.of(spec, ids: ids, storage: storage, layers: systemLayer.directories.map(\.name))
            // One that does not match is stopped off this boot's path: it holds nothing this boot needs (its cgroups
            // are its own, `pool-…`).
            if let entry = parked.take(spec.id, matching: fingerprint), let fingerprint {
                do {
                    if entry.limits != spec.limits { try entry.cgroups.apply(spec.limits, unsetting: true) }
                    entry.supervisor.unpark()
                    logger.debug("sandbox started", metadata: ["parked": "true", "launch.ms": "\((clock.now - began).milliseconds)"])
                    return LinuxSandbox(
                        supervisor: entry.supervisor, cgroups: entry.cgroups, runsAsRoot: true,
                        parking: .init(sandboxes: parked, workspace: spec.id, fingerprint: fingerprint, limits: spec.limits, logger: logger),
                        listener: entry.listener)
                } catch {
                    logger.warning("a parked sandbox could not take its workspace's limits: it is stopped", metadata: ["error": "\(error)"])
                    await entry.stop()
                }
            }
        }
        // A sandbox started ahead of its workspace, when the pool keeps them and one is ready: bound to this workspace.
        if let pool, case .sandboxes = pool.kind, switchesUser, let ids = spec.ids, let storage, cgroups != nil,
            let prestarted = given ?? pool.takeSandbox()
        {
            do {
                return try await bind(prestarted, spec: spec, ids: ids, storage: storage, began: began, logger: logger)
            } catch let error as PrestartedSandbox.Unusable {
                // One made to be parked ahead: not parked, rather than started with bwrap (which never parks).
                if given != nil { throw SandboxError(.startFailed, "the sandbox made to be parked could not be bound: \(error.reason)") }
                // It died in the pool, or could not be bound before anything was sent to it: bwrap starts this one.
                logger.warning("a pre-started sandbox could not be bound: bwrap starts this one", metadata: ["error": "\(error.reason)"])
            }
        }
        // Root inside, an unprivileged range outside: a user namespace with the workspace's ids, and its system layer.
        var namespace: UserNamespace?
        var system: SystemLayer.Mounted?
        var systemTimes: (directories: Double, namespace: Double, overlays: Double)?
        // The workspace's directory idmapped from the storage range to its own: attached over its own path in the
        // launcher's mount namespace (before the system layer's overlays, which are attached below it), so that every
        // path bwrap binds from it (workspace, home, the plain system directories) goes through the mapping.
        var storageTree: Int32?
        defer { storageTree.map { _ = close($0) } }
        if switchesUser, let ids = spec.ids {
            let layer = systemLayer
            try SystemLayer.prepare(workspace: spec.hostDirectory, names: layer.directories.map(\.name), root: (storage ?? ids).start)
            let directoriesReady = clock.now
            let made = try UserNamespace(ids)
            namespace = made
            if let storage {
                storageTree = try storageNamespaces.namespace(mapping: storage, to: ids).idmappedTree(of: spec.hostDirectory.path)
            }
            let namespaceReady = clock.now
            system = try layer.mount(
                workspace: spec.hostDirectory, imageLayers: spec.imageLayers, namespace: made, storage: storageTree, cache: systemLayers,
                key: SystemLayerCache.key(workspace: spec.id, ids: ids, imageLayers: spec.imageLayers))
            systemTimes = ((directoriesReady - began).milliseconds, (namespaceReady - directoriesReady).milliseconds, (clock.now - namespaceReady).milliseconds)
        }
        defer { system?.close() }
        let launcherMounts = (storageTree.map { [($0, spec.hostDirectory.path)] } ?? []) + (system?.mounts ?? [])
        // A name of this boot's own: the last boot's groups may still be waiting for their removal (LeftoverCgroups, or
        // a start's sweep), which must never take a new group of the same name between its making and the spawn.
        let cgroups = try cgroups.map {
            try SandboxCgroups.create(id: spec.id + "-" + String(UInt32.random(in: .min ... .max), radix: 16), version: $0, limits: spec.limits)
        }
        let prepared = clock.now
        var opened: [Int32] = []
        defer { opened.forEach { close($0) } }
        func openPath(_ url: URL, directory: Bool) throws -> Int32 {
            let fd = ab_open_path(url.path, directory ? 1 : 0)
            guard fd >= 0 else { throw SandboxError.errno("open \(url.path)") }
            opened.append(fd)
            return fd
        }
        var extra: [Int32]
        let procs: [Int32]
        var mountArguments: [String] = []
        do {
            let filter = ab_seccomp_open()
            guard filter >= 0 else { throw SandboxError.errno("seccomp filter") }
            opened.append(filter)
            extra = [
                try openPath(workspaceDirectory, directory: true), try openPath(homeDirectory, directory: true),
                try openPath(etcDirectory, directory: true), try openPath(URL(fileURLWithPath: initPath), directory: false),
                filter,
            ]
            for tool in tools {
                extra.append(try openPath(URL(fileURLWithPath: tool.path), directory: false))
                mountArguments += ["--ro-bind-fd", String(3 + extra.count - 1), "/.agentbox/bin/\(tool.name)"]
            }
            extra.append(try openPath(agentsDirectory, directory: true))
            mountArguments += ["--ro-bind-fd", String(3 + extra.count - 1), "/.agentbox/agents"]
            for mount in spec.mounts {
                switch mount {
                case .tmpfs(let path, let bytes):
                    mountArguments += ["--size", String(bytes), "--perms", "0777", "--tmpfs", path]
                case .host(let hostPath, let path, let readOnly):
                    // Opened here, as the server: the sandbox's uid need not be able to reach the host path.
                    let fd = try Self.openHostDirectory(hostPath)
                    opened.append(fd)
                    extra.append(fd)
                    mountArguments += [readOnly ? "--ro-bind-fd" : "--bind-fd", String(3 + extra.count - 1), path]
                }
            }
            if let namespace { extra.append(namespace.fd) }
            procs = try cgroups?.openProcsFiles() ?? []
        } catch {
            await cgroups?.remove()
            throw error
        }
        opened += procs
        // Child descriptors: 0, 1 and 2 the control socket (requests; replies and diagnostics), then 3 workspace, 4 home, 5 etc, 6 init, 7 the seccomp
        // filter (a pipe bwrap reads to its end), 8… tools, agents and host mounts.
        // The seccomp filter refuses new user namespaces either way; bwrap's --disable-userns exists only for those it
        // makes itself.
        var arguments = [bwrapPath]
        if namespace != nil {
            arguments += ["--userns", String(3 + extra.count - 1), "--uid", "0", "--gid", "0"]
        } else {
            arguments += ["--unshare-user", "--disable-userns", "--uid", String(SandboxRoot.uid), "--gid", String(SandboxRoot.uid)]
        }
        // A pooled network and IPC namespace is joined by the launcher (as root, before it drops to the workspace's
        // ids): bwrap keeps it. Taken here, used by this boot only, closed when the boot ends either way.
        var pooled: SandboxPool.Namespaces?
        if credentials != nil, let pool, pool.kind == .namespaces, case .namespaces(let namespaces)? = pool.take() {
            pooled = namespaces
        }
        arguments += pooled == nil ? ["--unshare-ipc", "--unshare-net"] : []
        arguments += [
            "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", spec.hostname, "--cap-drop", "ALL", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
        ]
        if namespace != nil { arguments += SandboxRoot.rootCapabilities.flatMap { ["--cap-add", $0] } }
        arguments += SandboxRoot.bwrapArguments(
            workspaceFD: 3, homeFD: 4, etcFD: 5, initFD: 6, system: system?.arguments,
            // Through the idmapped tree, which only a path reaches (the descriptors were opened on the host's view).
            directories: storageTree == nil ? nil : (workspaceDirectory.path, homeDirectory.path))
        arguments += mountArguments
        arguments += ["--seccomp", "7"]
        arguments += ["--as-pid-1", "/.agentbox/init"]
        if credentials != nil { arguments.append("--oom-reset") }
        if cgroups == nil {
            if let pids = spec.limits.pids { arguments += ["--nproc", String(pids)] }
            if let memory = spec.limits.memoryBytes { arguments += ["--as", String(memory)] }
        }
        let supervisor: Supervisor
        do {
            supervisor = try await Supervisor.launch(logger: logger) { stdio in
                try HostSpawn.spawn(
                    executable: bwrapPath, arguments: arguments, environment: ["PATH": "/usr/bin:/bin"],
                    descriptors: stdio + extra, cgroupProcs: procs, credentials: credentials, mounts: launcherMounts,
                    namespaces: pooled?.descriptors ?? [])
            }
        } catch {
            await cgroups?.remove()
            throw error
        }
        if credentials != nil { Self.protectFromOOMKiller(launcher: supervisor.launcherPID) }
        logger.debug(
            "sandbox started",
            metadata: [
                "prepare.ms": "\((prepared - began).milliseconds)",
                "system.ms": "\(systemTimes.map { "directories \($0.directories), namespace \($0.namespace), overlays \($0.overlays)" } ?? "none")",
                "launch.ms": "\((clock.now - prepared).milliseconds)",
                "pooled": "\(pooled != nil)",
            ])
        return LinuxSandbox(supervisor: supervisor, cgroups: cgroups, runsAsRoot: namespace != nil)
    }

    /// The system layer's directories: `/usr` over the host's, `/etc` and `/var` over AgentBox's copies.
    var systemLayer: SystemLayer {
        SystemLayer(directories: [
            .init(name: "usr", base: URL(fileURLWithPath: "/usr")), .init(name: "etc", base: etcDirectory),
            .init(name: "var", base: varDirectory),
        ])
    }

    /// Opens a host directory allowed as a mount (its real path, as checked against the allowed prefixes when the
    /// workspace was configured) without following any symlink on the way: whoever can write near it (another
    /// workspace with a writable mount, say) may have swapped a component for a symlink since, to have the host's `/`
    /// mounted at the next boot. Such a path is refused, and the workspace does not boot until it is fixed.
    static func openHostDirectory(_ hostPath: String) throws -> Int32 {
        let fd = ab_open_directory_path_nofollow(hostPath)
        if fd >= 0 { return fd }
        let error = errno
        if error == ELOOP || error == EXDEV || error == ENOTDIR || error == ENOENT {
            throw SandboxError(
                .hostMountChanged,
                "the host directory \(hostPath) is not what was allowed any more (\(String(cString: strerror(error)))): a symlink or a missing directory on its path")
        }
        throw SandboxError.errno("open the host mount \(hostPath)", error)
    }

    /// Makes the OOM killer spare bwrap and the sandbox's init (each child resets itself with --oom-reset), so a
    /// workspace that runs out of memory loses the process that ate it, not its supervisor.
    static func protectFromOOMKiller(launcher: pid_t) {
        var pids = [launcher]
        if let children = KernelFile.read("/proc/\(launcher)/task/\(launcher)/children") {
            pids += children.split(separator: " ").compactMap { Int32($0) }
        }
        for pid in pids {
            try? "-1000".write(toFile: "/proc/\(pid)/oom_score_adj", atomically: false, encoding: .utf8)
        }
    }
}

/// A running bubblewrap sandbox.
final class LinuxSandbox: Sandbox {
    let supervisor: Supervisor
    let cgroups: SandboxCgroups?
    let baseEnvironment: [String: String]
    let defaultWorkingDirectory = SandboxRoot.workspace
    /// Where and as what it parks when its workspace sleeps (a sandbox bound from the pool); `nil`: it never parks.
    let parking: Parking?
    /// Raised once it is parked: this boot's hold on it ends there (the next boot gets it as another LinuxSandbox).
    private let parked = Alarm()

    struct Parking: Sendable {
        let sandboxes: ParkedSandboxes
        let workspace: String
        let fingerprint: ParkedSandboxes.Fingerprint
        let limits: SandboxLimits
        let logger: Logger
    }

    /// The egress proxy's listening socket, kept from the last boot (a parked sandbox's) or for the next one.
    private let listener: KeptSocket

    init(supervisor: Supervisor, cgroups: SandboxCgroups?, runsAsRoot: Bool, parking: Parking? = nil, listener: KeptSocket = KeptSocket()) {
        self.supervisor = supervisor
        self.cgroups = cgroups
        self.parking = parking
        self.listener = listener
        baseEnvironment =
            runsAsRoot ? SandboxRoot.baseEnvironment(home: "/root", user: "root") : SandboxRoot.baseEnvironment(home: SandboxRoot.home)
    }

    func park() async -> Bool {
        guard let parking, let cgroups, parking.sandboxes.accepts else { return false }
        switch await supervisor.park() {
        case .parked:
            parked.raise("parked")
            let entry = ParkedSandboxes.Entry(
                supervisor: supervisor, cgroups: cgroups, fingerprint: parking.fingerprint, limits: parking.limits,
                listener: KeptSocket(listener.take()))
            // Parking closed meanwhile (the server is stopping): the caller stops it now.
            return parking.sandboxes.put(parking.workspace, entry)
        case .refused(let reason):
            parking.logger.debug("the sandbox cannot be parked: it is stopped", metadata: ["reason": "\(reason)"])
            return false
        case .failed:
            return false
        }
    }

    var hostPIDs: [Int32] { [supervisor.launcherPID] }

    func takeKeptListener() -> Int32? { listener.take() }

    /// Kept only by a sandbox that may park; else closed at once.
    func keepListener(_ fd: Int32) {
        if parking != nil { listener.keep(fd) } else { Glibc.close(fd) }
    }

    /// The namespace of the sandbox's init, bwrap's child (bwrap itself stays in the host's namespaces).
    func openNetworkNamespace() throws -> Int32? {
        let launcher = supervisor.launcherPID
        guard let children = KernelFile.read("/proc/\(launcher)/task/\(launcher)/children"),
            let initPID = children.split(separator: " ").first.flatMap({ Int32($0) })
        else { throw SandboxError(.system, "the sandbox's init is gone") }
        let fd = open("/proc/\(initPID)/ns/net", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SandboxError.errno("open the network namespace of pid \(initPID)") }
        return fd
    }

    func spawn(_ spec: SandboxProcessSpec) async throws -> SandboxProcess {
        try checkNotParked()
        return try await SandboxProcess.start(spec, supervisor: supervisor)
    }

    func spawnTerminal(_ spec: SandboxProcessSpec, cols: Int, rows: Int) async throws -> SandboxTerminal {
        try checkNotParked()
        return try await SandboxTerminal.start(spec, cols: cols, rows: rows, supervisor: supervisor)
    }

    /// This boot's hold ended at the park: a caller still holding it starts nothing (the next boot has its own).
    private func checkNotParked() throws {
        if parked.reason != nil { throw SandboxError(.stopped, "the sandbox has stopped") }
    }

    func stop() async {
        listener.close()
        await supervisor.stop()
        await cgroups?.remove()
    }

    /// The cgroups' figures; without cgroups, those of the process tree.
    func resourceUsage() -> SandboxResourceUsage {
        cgroups?.usage() ?? SandboxResourceUsage.processTree(root: supervisor.launcherPID)
    }

    func waitUntilEnded() async {
        guard parking != nil else { return await supervisor.waitUntilEnded() }
        // Ended, or parked: whichever comes first (both waits end when cancelled).
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await self.supervisor.endAlarm.wait() }
            group.addTask { _ = await self.parked.wait() }
            await group.next()
            group.cancelAll()
        }
    }
}

