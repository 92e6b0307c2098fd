import Foundation

/// What a sandbox is started with: one per awake workspace.
public struct SandboxSpec: Sendable {
    /// The workspace's internal id (names its cgroups).
    public var id: String
    /// The host directory holding the workspace's persistent `workspace/` and `home/` directories.
    public var hostDirectory: URL
    /// The unprivileged host uid (and gid) the sandbox's processes run as, when the server may switch to it (root).
    public var hostUID: UInt32?
    /// The workspace's range of host ids: when set (and the server is root), its processes run as root of a user
    /// namespace of its own over these ids, with a writable system layer under `<hostDirectory>/system`.
    public var ids: WorkspaceIDs?
    /// The ids the workspace's files carry on disk, when not `ids` (with `ids` set): the server's storage range, owned
    /// by no process. `<hostDirectory>` is then mounted into the sandbox idmapped from these ids to `ids`, so that
    /// inside they are the workspace's own (see docs/STORAGE.md, "Forks and ids").
    public var storageIDs: WorkspaceIDs?
    /// Image system layers under the workspace's own, top first (each holds `usr`, `etc` and `var`).
    public var imageLayers: [URL]
    public var limits: SandboxLimits
    /// The sandbox's host name.
    public var hostname: String
    /// Extra file systems, mounted in order after the workspace's own directories.
    public var mounts: [SandboxMount]

    public init(
        id: String, hostDirectory: URL, hostUID: UInt32?, limits: SandboxLimits, hostname: String = "workspace",
        mounts: [SandboxMount] = [], ids: WorkspaceIDs? = nil, storageIDs: WorkspaceIDs? = nil, imageLayers: [URL] = []
    ) {
        self.ids = ids
        self.storageIDs = storageIDs
        self.imageLayers = imageLayers
        self.id = id
        self.hostDirectory = hostDirectory
        self.hostUID = hostUID
        self.limits = limits
        self.hostname = hostname
        self.mounts = mounts
    }
}

/// An extra file system in a sandbox (the caller has validated paths and permissions).
public enum SandboxMount: Sendable, Equatable {
    /// An empty in-memory file system of at most `bytes`, gone when the sandbox stops.
    case tmpfs(path: String, bytes: Int64)
    /// A host directory.
    case host(hostPath: String, path: String, readOnly: Bool)
}

/// Resource limits of one sandbox; `nil` leaves a resource unlimited.
public struct SandboxLimits: Sendable, Equatable {
    public var memoryBytes: Int64?
    /// Percent of one core.
    public var cpuPercent: Int?
    public var pids: Int?

    public init(memoryBytes: Int64? = nil, cpuPercent: Int? = nil, pids: Int? = nil) {
        self.memoryBytes = memoryBytes
        self.cpuPercent = cpuPercent
        self.pids = pids
    }
}

/// What to launch inside a sandbox: one value, consumed by every backend.
public struct SandboxProcessSpec: Sendable {
    /// The program and its arguments; the program is looked up on the `PATH` of `environment`.
    public var arguments: [String]
    /// The whole environment of the process.
    public var environment: [String: String]
    /// The working directory in the sandbox's own view (`/workspace/src`).
    public var workingDirectory: String
    /// What the process reads on stdin.
    public var stdin: Stdin

    /// Where a process's standard input comes from.
    public enum Stdin: Sendable {
        /// End of file at once.
        case empty
        /// These bytes, then end of file.
        case data([UInt8])
        /// A pipe the caller writes to with ``SandboxProcess/write(stdin:)`` and closes.
        case pipe
    }

    public init(arguments: [String], environment: [String: String], workingDirectory: String, stdin: Stdin = .empty) {
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.stdin = stdin
    }
}

/// How a sandboxed process ended.
public struct SandboxExitStatus: Sendable, Equatable {
    /// The exit code, or `nil` when a signal ended the process.
    public var exitCode: Int32?
    /// The signal that ended the process, if one did.
    public var signal: Int32?

    public init(exitCode: Int32?, signal: Int32?) {
        self.exitCode = exitCode
        self.signal = signal
    }

    /// The code a shell would report: the exit code, or 128 + the signal.
    public var shellExitCode: Int32 { exitCode ?? (128 + (signal ?? 0)) }
}

/// An error of the sandbox layer.
public struct SandboxError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// The sandbox could not be started.
        public static let startFailed = Code(name: "startFailed")
        /// The program was not found or could not be executed.
        public static let executableNotFound = Code(name: "executableNotFound")
        /// The working directory does not exist or is not a directory.
        public static let badWorkingDirectory = Code(name: "badWorkingDirectory")
        /// The sandbox has stopped.
        public static let stopped = Code(name: "stopped")
        /// A system call failed.
        public static let system = Code(name: "system")
        /// A host directory allowed as a mount is no longer what was allowed (a symlink now lies on its path).
        public static let hostMountChanged = Code(name: "hostMountChanged")
        /// The sandbox is at its process limit: no process can be started until one ends.
        public static let processLimit = Code(name: "processLimit")
        public var description: String { name }
    }

    public let code: Code
    public let message: String
    /// The `errno` of the system call that failed, for a ``Code/system`` error made from one.
    public let errnoCode: Int32?

    public init(_ code: Code, _ message: String, errnoCode: Int32? = nil) {
        self.code = code
        self.message = message
        self.errnoCode = errnoCode
    }

    public var description: String { message }

    static func errno(_ what: String, _ value: Int32 = Glibc.errno) -> SandboxError {
        SandboxError(.system, "\(what): \(String(cString: strerror(value)))", errnoCode: value)
    }
}

extension Duration {
    /// This duration in milliseconds, as a `Double`.
    public var milliseconds: Double {
        let parts = components
        return Double(parts.seconds) * 1000 + Double(parts.attoseconds) / 1e15
    }
}
