import Foundation
import Logging
import NIOCore

/// A way of running a workspace's processes in isolation. One backend serves every workspace of a server.
public protocol SandboxBackend: Sendable {
    /// A short name for logs and `/v1/health` (`linux`, `unsandboxed`).
    var name: String { get }
    /// Whether the workspace's processes run as its own host uid (``SandboxSpec/hostUID``): then files the server
    /// creates for the workspace must belong to that uid.
    var runsAsWorkspaceUID: Bool { get }
    /// Whether workspaces' files may be kept in one storage range of ids and mounted idmapped into each sandbox
    /// (``SandboxSpec/storageIDs``): root, and a kernel and file system with idmapped mounts.
    var idmapsStorage: Bool { get }
    /// Starts an empty sandbox for a workspace; its processes are started with ``Sandbox/spawn(_:)``.
    func start(_ spec: SandboxSpec, logger: Logger) async throws -> any Sandbox
    /// Where the AgentBox tool `name` (`mock-agent`) is, in a sandbox's own view; `nil` when it was not built.
    func toolPath(_ name: String) -> String?
    /// Where the installed agents (`<data-dir>/agents`) are, in a sandbox's own view.
    var agentsPath: String { get }
    /// This backend with the host files it mounts into every sandbox (its `/etc`, the installed agents) kept in
    /// `directory` instead (`etc/`, `agents/`, made here), or `nil` when it mounts none. A bind mount shows its source's
    /// path within its file system in the sandbox's `/proc/self/mountinfo`: kept in the disk pool, that path names
    /// nothing of the host.
    func keepingSystemFiles(in directory: URL) throws -> (any SandboxBackend)?
    /// Keeps the backend's pool of what boots can take ready-made full (see ``SandboxPool``) until cancelled; returns
    /// at once when it has none. The workspace manager runs it among its background work.
    func runPool() async
    /// Lets go of what the backend keeps of workspace `id` between its boots (its system layer's overlays, its parked
    /// sandbox, stopped before this returns): its files are being destroyed or replaced.
    func forgetWorkspace(_ id: String) async
    /// Parks no more sandboxes and stops the parked ones (the server is stopping).
    func shutDown() async
    /// How many sandboxes of sleeping workspaces are parked now (0 for a backend that parks none).
    var parkedSandboxCount: Int { get }
    /// Boots the sandbox of workspace `spec.id` ahead of the workspace's first boot and parks it at once, for that
    /// boot to take (a blank workspace's); `false` when it is not parked (the backend parks none, or not now).
    /// With `listenerPort`, a socket listening on that port of its loopback is kept with it too (see
    /// ``Sandbox/keepListener(_:)``): the egress proxy's, which the first boot then serves.
    func parkAhead(_ spec: SandboxSpec, listenerPort: Int?, logger: Logger) async throws -> Bool
}

extension SandboxBackend {
    public var idmapsStorage: Bool { false }
    public func keepingSystemFiles(in directory: URL) throws -> (any SandboxBackend)? { nil }
    public func runPool() async {}
    public func forgetWorkspace(_ id: String) async {}
    public func shutDown() async {}
    public var parkedSandboxCount: Int { 0 }
    public func parkAhead(_ spec: SandboxSpec, listenerPort: Int?, logger: Logger) async throws -> Bool { false }
}

/// One running sandbox: the processes of one awake workspace share it (file system view, PIDs, network).
public protocol Sandbox: AnyObject, Sendable {
    /// Starts a process. Fails with `executableNotFound` or `badWorkingDirectory` for bad input. Paths in `spec`
    /// are in the sandbox's own view.
    func spawn(_ spec: SandboxProcessSpec) async throws -> SandboxProcess
    /// Starts a process on a new pseudo-terminal of the sandbox (`cols` × `rows`), its controlling terminal.
    /// `spec.stdin` is ignored: input goes through the terminal.
    func spawnTerminal(_ spec: SandboxProcessSpec, cols: Int, rows: Int) async throws -> SandboxTerminal
    /// Kills every process of the sandbox and releases its resources; returns once all are gone.
    func stop() async
    /// Kills every process of the sandbox and keeps the rest of it for its workspace's next boot (a sleep); returns
    /// `true` once parked, or `false` when it cannot be parked: then the caller stops it. Its ``waitUntilEnded()``
    /// returns once it is parked; the next boot gets it back as another ``Sandbox``.
    func park() async -> Bool
    /// Returns when the sandbox has ended, for whatever reason (``stop()``, or its first process died).
    func waitUntilEnded() async
    /// The environment every process starts from (`PATH`, `HOME`, `USER`, ...).
    var baseEnvironment: [String: String] { get }
    /// The working directory of a process that names none.
    var defaultWorkingDirectory: String { get }
    /// Host pids of the sandbox's own machinery (for memory accounting).
    var hostPIDs: [Int32] { get }
    /// A new descriptor of the sandbox's network namespace (the caller closes it), or `nil` when the sandbox shares
    /// the host's network (unsandboxed). A thread that joins it creates its sockets there: that is how the server
    /// reaches the workspace's loopback and serves it an egress proxy without a helper process inside.
    func openNetworkNamespace() throws -> Int32?
    /// The listening socket a previous boot kept with the sandbox (``keepListener(_:)``), taken once: the caller owns
    /// it; `nil` when none was kept.
    func takeKeptListener() -> Int32?
    /// Keeps `fd`, a socket listening in the sandbox's network namespace (owned from here on), with the sandbox if it
    /// is parked, for its next boot (``takeKeptListener()``); it is closed when the sandbox stops.
    func keepListener(_ fd: Int32)
    /// What the sandbox uses now (CPU time, memory, tasks). Reads kernel files: call it off the cooperative pool
    /// when many are read at once. The default walks the process tree under the first of ``hostPIDs``.
    func resourceUsage() -> SandboxResourceUsage
}

extension Sandbox {
    public func park() async -> Bool { false }
    public func takeKeptListener() -> Int32? { nil }
    public func keepListener(_ fd: Int32) { Glibc.close(fd) }

    public func resourceUsage() -> SandboxResourceUsage {
        hostPIDs.first.map { SandboxResourceUsage.processTree(root: $0) }
            ?? SandboxResourceUsage(cpuNanoseconds: 0, memoryBytes: 0, memoryPeakBytes: 0, tasks: 0, source: .processTree)
    }
}
