import AgentBox
import AgentBoxAPI
import AgentBoxSandbox
import ChildProcessSupport
import Foundation
import NIOCore
import Synchronization
import Testing

// The escape suite (#17): what a hostile workspace tries from inside, one case each, with the observable that shows
// it was stopped (an errno, a refusal, or a planted secret that never shows up). Path attacks through the API's routes
// are in AgentBoxServerTests/EscapeRouteTests.swift.
//
// Every case runs in one shared scene (one manager, a handful of workspaces) that is set up once for the suite. The
// scene plants three secrets that no case may ever print: a file in the server's data directory, files of a
// neighbouring workspace (and its environment, its sockets, its shared memory), and a variable in the server's own
// environment.

// MARK: - The scene

/// The manager, the workspaces and the planted secrets that every case attacks.
final class EscapeScene: Sendable {
    @TaskLocal static var current: EscapeScene?

    let dataDirectory: URL
    let manager: WorkspaceManager
    /// `<data>/host-dir`, a directory of the host (root's, 0755) that holds `secret` (0644): only the sandbox keeps
    /// a workspace from reading it, not its mode.
    let hostDirectory: String
    let hostSecret: String
    /// In the neighbour's files, environment, loopback server, abstract socket and shared memory.
    let neighbourSecret: String
    /// In the server's (this test process's) environment.
    let environmentSecret: String
    /// The host directory of the neighbour's persistent files.
    let neighbourDirectory: String
    let neighbourHostPIDs: [Int32]
    let attackerHostUID: UInt32
    /// `<data>/shared`, allowed for host mounts (the "mounter" workspace mounts it writable and `shared/data` read-only).
    let sharedDirectory: String
    let hostServer: HostHTTPServer
    /// Kernel settings a case tries to change, as they were before.
    let hostSettings: [String: String]
    /// The host's interface addresses when the manager started (which is when its egress proxy learns them; other
    /// tests give the host addresses of their own for a while), as `host:port` authorities of the host's server.
    let hostAddressTargets: [String]

    static let environmentVariable = "AGENTBOX_ESCAPE_CANARY"
    static let settingPaths = [
        "/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/proc/sys/kernel/sysrq", "/proc/sys/vm/panic_on_oom",
    ] + ["blkio", "cpu", "memory", "pids", "systemd", "unified"].map { "/sys/fs/cgroup/\($0)/release_agent" }

    var secrets: [(String, String)] {
        [("the host's secret", hostSecret), ("the neighbour's secret", neighbourSecret), ("the server's environment", environmentSecret)]
    }

    /// The test process's executable name, which no workspace may see in its process list.
    static var testProcessName: String {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "agentboxPackageTests.xctest"
        return URL(fileURLWithPath: path).lastPathComponent
    }

    static func readSettings() -> [String: String] {
        var settings: [String: String] = [:]
        for path in settingPaths {
            if let value = try? String(contentsOfFile: path, encoding: .utf8) { settings[path] = value }
        }
        return settings
    }

    private init(
        dataDirectory: URL, manager: WorkspaceManager, hostDirectory: String, hostSecret: String, neighbourSecret: String,
        environmentSecret: String, neighbourDirectory: String, neighbourHostPIDs: [Int32], attackerHostUID: UInt32,
        sharedDirectory: String, hostServer: HostHTTPServer, hostSettings: [String: String], hostAddressTargets: [String]
    ) {
        self.dataDirectory = dataDirectory
        self.manager = manager
        self.hostDirectory = hostDirectory
        self.hostSecret = hostSecret
        self.neighbourSecret = neighbourSecret
        self.environmentSecret = environmentSecret
        self.neighbourDirectory = neighbourDirectory
        self.neighbourHostPIDs = neighbourHostPIDs
        self.attackerHostUID = attackerHostUID
        self.sharedDirectory = sharedDirectory
        self.hostServer = hostServer
        self.hostSettings = hostSettings
        self.hostAddressTargets = hostAddressTargets
    }

    static func make(_ directory: URL) async throws -> EscapeScene {
        func secret(_ kind: String) -> String { "\(kind)-SECRET-\(UUID().uuidString.replacingOccurrences(of: "-", with: ""))" }
        let hostSecret = secret("HOST"), neighbourSecret = secret("NEIGHBOUR"), environmentSecret = secret("ENV")
        let hostServer = try HostHTTPServer()
        let hostAddresses = HostHTTPServer.interfaceAddresses.filter { !$0.interface.hasPrefix(TestHostAddresses.prefix) }
        let hostAddressTargets = hostAddresses.map { $0.ipv4 ? "\($0.address):\(hostServer.port)" : "[\($0.address)]:\(hostServer.port)" }
        // A new variable: glibc copies the initial environment once and frees nothing, so readers elsewhere are safe.
        setenv(environmentVariable, environmentSecret, 1)

        let hostDirectory = directory.appendingPathComponent("host-dir").path
        try FileManager.default.createDirectory(atPath: hostDirectory, withIntermediateDirectories: true)
        try hostSecret.write(toFile: hostDirectory + "/secret", atomically: false, encoding: .utf8)
        try hostSecret.write(toFile: directory.appendingPathComponent("host-secret.txt").path, atomically: false, encoding: .utf8)
        chmod(hostDirectory, 0o755)
        chmod(hostDirectory + "/secret", 0o644)
        chmod(directory.appendingPathComponent("host-secret.txt").path, 0o644)
        let shared = directory.appendingPathComponent("shared").path
        try FileManager.default.createDirectory(atPath: shared + "/data", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: shared + "/writable", withIntermediateDirectories: true)
        try "mounted".write(toFile: shared + "/data/readme", atomically: false, encoding: .utf8)
        chmod(shared, 0o777)  // the mounter's uid may rename what is in it, as a writable mount of a parent allows
        chmod(shared + "/writable", 0o777)
        chmod(shared + "/data/readme", 0o644)

        let manager = try makeManager(directory, allowHostMounts: [shared])
        let mounts = WorkspaceConfig(mounts: [
            WorkspaceMount(type: .host, path: "/mnt/shared", hostPath: shared, readOnly: false),
            WorkspaceMount(type: .host, path: "/data", hostPath: shared + "/data"),
            WorkspaceMount(type: .host, path: "/out", hostPath: shared + "/writable", readOnly: false),
        ])
        let configs: [(String, WorkspaceConfig)] = [
            ("attacker", WorkspaceConfig()), ("victim", WorkspaceConfig()), ("killer", WorkspaceConfig()),
            ("flooder", WorkspaceConfig()), ("mounter", mounts),
            ("egress", WorkspaceConfig(network: NetworkPolicy(egress: .allow))),
            ("neighbour", WorkspaceConfig(env: ["NEIGHBOUR_TOKEN": neighbourSecret])),
        ]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (name, config) in configs {
                group.addTask { _ = try await manager.run(name, "true", config: config) }
            }
            try await group.waitForAll()
        }

        // The neighbour: its secret in its files, its /tmp and /dev/shm, served on its loopback and on an abstract
        // socket, and held in SysV shared memory. It checks that it can read all of them itself (so that the cases
        // would see them if they could reach them).
        let neighbour = try await manager.runtime(for: key("neighbour"))
        _ = try await neighbour.exec(
            ExecRequest(command: #"for f in /workspace/secret.txt /home/agent/secret.txt /tmp/secret.txt /dev/shm/secret.txt; do printf %s "$NEIGHBOUR_TOKEN" > $f; done"#))
        _ = try await neighbour.spawn(SpawnRequest(command: "python3", args: ["-c", neighbourServer, "agentbox-neighbour-marker"]))
        _ = try await neighbour.spawn(SpawnRequest(command: "sleep", args: ["600"]))
        // Unbuffered (-u), so that a check cut short by its time limit still shows how far it got; the limit is
        // generous because two loaded cores have taken over 30 s to start the server and answer.
        let check = try await neighbour.exec(ExecRequest(command: "python3 -u - <<'EOF'\n\(neighbourSelfCheck)\nEOF", timeoutMs: 120_000))
        if check.stdout.components(separatedBy: neighbourSecret).count != 4 {
            Issue.record("the neighbour cannot read its own secrets (timed out: \(check.timedOut)): \(check.stdout) \(check.stderr)")
        }
        let neighbourPIDs = hostProcesses(ofWorkspaceWithAgentUID: neighbour.hostUID)
        if neighbourPIDs.isEmpty { Issue.record("the neighbour has no processes on the host") }
        let attacker = try await manager.runtime(for: key("attacker"))

        return EscapeScene(
            dataDirectory: directory, manager: manager, hostDirectory: hostDirectory, hostSecret: hostSecret,
            neighbourSecret: neighbourSecret, environmentSecret: environmentSecret, neighbourDirectory: neighbour.directory.path,
            neighbourHostPIDs: neighbourPIDs, attackerHostUID: attacker.hostUID - WorkspaceIDs.agent, sharedDirectory: shared,
            hostServer: hostServer, hostSettings: readSettings(), hostAddressTargets: hostAddressTargets)
    }

    func tearDown() async {
        hostServer.stop()
        await manager.shutdown()
        unsetenv(Self.environmentVariable)
    }

    /// Serves the neighbour's secret on 127.0.0.1:7801 and on the abstract socket `@agentbox-neighbour`, and keeps it
    /// in a SysV shared memory segment (key 0x4142).
    static let neighbourServer = """
        import ctypes, os, socket, threading
        secret = os.environ["NEIGHBOUR_TOKEN"].encode()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        segment = libc.shmget(0x4142, 4096, 0o1666)
        ctypes.memmove(libc.shmat(segment, None, 0), secret, len(secret))
        def serve(listener):
            while True:
                connection, _ = listener.accept()
                connection.sendall(secret)
                connection.close()
        abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        abstract.bind("\\0agentbox-neighbour")
        abstract.listen(8)
        threading.Thread(target=serve, args=(abstract,), daemon=True).start()
        tcp = socket.socket()
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("127.0.0.1", 7801))
        tcp.listen(8)
        serve(tcp)
        """

    static let neighbourSelfCheck = """
        import ctypes, socket, time
        def fetch(family, address):
            for _ in range(600):
                try:
                    connection = socket.socket(family, socket.SOCK_STREAM)
                    connection.connect(address)
                    return connection.recv(4096).decode()
                except OSError:
                    time.sleep(0.1)
            return "unreachable"
        print(fetch(socket.AF_INET, ("127.0.0.1", 7801)))
        print(fetch(socket.AF_UNIX, "\\0agentbox-neighbour"))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        for _ in range(600):
            segment = libc.shmget(0x4142, 0, 0)
            if segment >= 0:
                break
            time.sleep(0.1)
        print(ctypes.string_at(libc.shmat(segment, None, 0), 64).split(b"\\0")[0].decode() if segment >= 0 else "no segment")
        """
}

/// Sets the scene up once around the whole suite and tears it down after.
struct EscapeSceneTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard Host.canSandbox else { return try await function() }
        try await withTemporaryDirectory { directory in
            let scene = try await EscapeScene.make(directory)
            do {
                try await EscapeScene.$current.withValue(scene) { try await function() }
            } catch {
                await scene.tearDown()
                throw error
            }
            await scene.tearDown()
        }
    }
}

// MARK: - Cases

/// One attack from inside a workspace and what proves that it failed.
struct SandboxAttack: Sendable, CustomTestStringConvertible {
    enum Area: String, Sendable {
        case hostFiles = "host files"
        case otherWorkspaces = "other workspaces"
        case hostProcesses = "host processes"
        case procAndSys = "/proc, /sys and /dev"
        case supervisor = "the supervisor"
        case mountsAndNamespaces = "mounts and namespaces"
        case systemCalls = "system calls"
        case privileges = "privileges"
        case egress = "egress"
        case channel = "output channel"
    }

    enum Action: Sendable {
        /// A `/bin/sh` command line.
        case shell(@Sendable (EscapeScene) -> String)
        /// A Python program, after `pythonPrelude` (`attempt(label, action)` prints `label OK` or `label ERRNO`).
        case python(@Sendable (EscapeScene) -> String)
        /// Anything else: does its own checks and returns everything it saw, which is searched for the secrets.
        case custom(@Sendable (EscapeScene) async throws -> String)
    }

    var area: Area
    var name: String
    var workspace = "attacker"
    var action: Action
    /// Lines that must each appear, exactly, in the output: the observable of the refusal.
    var lines: [String] = []
    /// Text that must appear somewhere in stdout or stderr.
    var contains: [String] = []
    /// Text that must not appear (the planted secrets never may, whatever the case).
    var absent: [String] = []
    /// Further checks once the attack has run (on the host, on the neighbour, ...).
    var verify: (@Sendable (EscapeScene, ExecResult) async throws -> Void)?

    var testDescription: String { "\(area.rawValue): \(name)" }
}

/// System call numbers on x86_64 and aarch64.
let escapeSyscalls: [String: (x86_64: Int, aarch64: Int)] = [
    "io_uring_setup": (425, 425), "bpf": (321, 280), "userfaultfd": (323, 282), "perf_event_open": (298, 241),
    "add_key": (248, 217), "request_key": (249, 218), "keyctl": (250, 219), "kexec_load": (246, 104),
    "kexec_file_load": (320, 294), "init_module": (175, 105), "finit_module": (313, 273),
    "name_to_handle_at": (303, 264), "open_by_handle_at": (304, 265), "mount": (165, 40), "umount2": (166, 39),
    "pivot_root": (155, 41), "chroot": (161, 51), "setns": (308, 268), "unshare": (272, 97), "syslog": (103, 116),
    "open_tree": (428, 428), "fsopen": (430, 430), "capset": (126, 91), "ptrace": (101, 117),
]

let pythonPrelude: String = {
    #if arch(arm64)
        let numbers = escapeSyscalls.map { "\"\($0.key)\": \($0.value.aarch64)" }
    #else
        let numbers = escapeSyscalls.map { "\"\($0.key)\": \($0.value.x86_64)" }
    #endif
    return """
        import ctypes, errno, os, signal, socket, stat, struct, subprocess, sys, time
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        NR = {\(numbers.sorted().joined(separator: ", "))}
        def files_outside(skipped=("/proc", "/sys", "/usr")):
            # Walks the whole tree but never descends into the skipped ones (the system's own files, and /proc's
            # thousands of entries), so a loaded machine walks it well within the time limit.
            for d, dirs, files in os.walk("/"):
                dirs[:] = [x for x in dirs if os.path.join(d, x) not in skipped]
                for f in files:
                    yield d, f
        def attempt(label, action):
            try:
                action()
                print(label, "OK")
            except OSError as error:
                print(label, errno.errorcode.get(error.errno, error.errno))
        def call(name, *arguments):
            ctypes.set_errno(0)
            result = libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_long(a) if isinstance(a, int) else a for a in arguments])
            if result < 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))
            return result
        def read(path):
            with open(path, "rb") as f:
                return f.read()
        def write(path, data):
            with open(path, "wb") as f:
                f.write(data)
        """
}()

/// Tries `operation` on each path and prints `path refused` when it failed with EACCES (or ENOENT where the host's
/// kernel has no such file either: then it is not the sandbox's doing), or else what happened.
func pythonRefusals(_ paths: [String], _ operation: String) -> String {
    let list = paths.map { "('\($0)', '\(FileManager.default.fileExists(atPath: $0) ? "EACCES" : "ENOENT")')" }.joined(separator: ", ")
    return """
        for path, expected in [\(list)]:
            try:
                (\(operation))(path)
                print(path, "done")
            except OSError as error:
                name = errno.errorcode.get(error.errno, str(error.errno))
                print(path, "refused" if name == expected else name)
        """
}

/// Which errno each path gets, as one line: `label ['ENOENT']` when they all got the same.
func pythonErrnos(_ label: String, _ paths: [String], _ operation: String = "read") -> String {
    let list = paths.map { "'\($0)'" }.joined(separator: ", ")
    return """
        seen = set()
        for path in [\(list)]:
            try:
                (\(operation))(path)
                seen.add("OK " + path)
            except OSError as error:
                seen.add(errno.errorcode.get(error.errno, str(error.errno)))
        print("\(label)", sorted(seen))
        """
}

let sandboxAttacks: [SandboxAttack] = hostFileAttacks + workspaceAttacks + processAttacks + procAttacks + supervisorAttacks
    + namespaceAttacks + syscallAttacks + privilegeAttacks + egressAttacks + channelAttacks

// MARK: Host files

let hostFileAttacks: [SandboxAttack] = [
    SandboxAttack(
        area: .hostFiles, name: "read /etc/shadow, /etc/gshadow, /etc/sudoers and SSH host keys",
        action: .python { _ in
            pythonErrnos("secrets", ["/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"])
                + "\nprint('shadow listed', any('shadow' in name for name in os.listdir('/etc')))"
        },
        lines: ["secrets ['ENOENT']", "shadow listed False"]),
    SandboxAttack(
        area: .hostFiles, name: "list /root and read root's SSH keys and shell history",
        // /root is the workspace's own root's home (its /home/agent), never the host's.
        action: .python { _ in pythonErrnos("root", ["/root/.ssh/id_rsa", "/root/.ssh/authorized_keys", "/root/.bash_history"]) + "\nprint('root is', os.readlink('/root'))" },
        lines: ["root ['ENOENT']", "root is home/agent"]),
    SandboxAttack(
        area: .hostFiles, name: "other users' home directories",
        action: .python { _ in
            let homes = (try? FileManager.default.contentsOfDirectory(atPath: "/home")) ?? []
            return "print('homes', sorted(os.listdir('/home')))\n"
                + pythonErrnos("host homes", (homes + ["ubuntu", "admin"]).map { "/home/\($0)" }, "os.listdir")
        },
        lines: ["homes ['agent']", "host homes ['ENOENT']"]),
    SandboxAttack(
        area: .hostFiles, name: "the server's data directory by its host path",
        action: .python { scene in
            let data = scene.dataDirectory.path
            return pythonErrnos("data files", [data + "/host-secret.txt", scene.hostDirectory + "/secret", data + "/sandbox/etc/passwd"])
                + "\n" + pythonErrnos("data directories", [data, data + "/workspaces", scene.hostDirectory, data + "/snapshots"], "os.listdir")
                + """

                found = [os.path.join(d, f) for d, f in files_outside() if f.startswith("host-secret")]
                print("found", found)
                """
        },
        lines: ["data files ['ENOENT']", "data directories ['ENOENT']", "found []"]),
    SandboxAttack(
        area: .hostFiles, name: "the store (agentbox.sqlite) by path, by name and among its descriptors",
        action: .python { scene in
            let store = scene.dataDirectory.appendingPathComponent("agentbox.sqlite").path
            return pythonErrnos("store", [store, store + "-wal", store + "-shm"])
                + """

                names = [f for d, f in files_outside() if f.startswith("agentbox.sqlite")]
                print("store files", names)
                def target(fd):
                    try:
                        return os.readlink("/proc/self/fd/" + fd)
                    except OSError:
                        return ""  # the listing's own descriptor, closed since
                print("store descriptors", [target(fd) for fd in os.listdir("/proc/self/fd") if "sqlite" in target(fd)])
                """
        },
        lines: ["store ['ENOENT']", "store files []", "store descriptors []"]),
    SandboxAttack(
        area: .hostFiles, name: "the host's / through /proc/1/root, /proc/1/cwd and /proc/self/root",
        action: .python { _ in
            pythonErrnos("through pid 1", ["/proc/1/root/etc/shadow", "/proc/1/cwd/etc/shadow"])
                + "\nattempt('list /proc/1/root', lambda: os.listdir('/proc/1/root'))"
                + "\nattempt('/proc/self/root/etc/shadow', lambda: read('/proc/self/root/etc/shadow'))"
        },
        lines: ["through pid 1 ['EACCES']", "list /proc/1/root EACCES", "/proc/self/root/etc/shadow ENOENT"]),
    SandboxAttack(
        area: .hostFiles, name: "fs routes on a host mount whose directory the workspace swapped for a symlink to /",
        workspace: "mounter",
        action: .custom { scene in
            // The workspace mounts the shared directory writable and a directory in it read-only (and another one
            // writable): it can rename that directory away and leave a symlink to the host's / in its place. The
            // running sandbox keeps its mount (made from a descriptor), but the fs routes open the host path anew on
            // every request, as root.
            let runtime = try await scene.manager.runtime(for: key("mounter"))
            let files = try runtime.files()
            let (readme, _) = try files.openForReading(try WorkspacePath("/data/readme"))
            #expect(String(buffer: try WorkspaceFiles.readChunk(readme, maximum: 64)) == "mounted", "the fs routes reach the mount")
            close(readme)
            let swap = try await runtime.exec(
                ExecRequest(command: "mv /mnt/shared/data /mnt/shared/data.away && ln -s / /mnt/shared/data && mv /mnt/shared/writable /mnt/shared/writable.away && ln -s / /mnt/shared/writable && echo swapped"))
            #expect(swap.stdout == "swapped\n", "\(swap)")
            defer {
                for name in ["data", "writable"] {
                    unlink(scene.sharedDirectory + "/" + name)
                    rename(scene.sharedDirectory + "/\(name).away", scene.sharedDirectory + "/" + name)
                }
                unlink(scene.hostDirectory + "/pwned")
            }
            var seen = ""
            let secretPath = "/data" + scene.hostDirectory + "/secret"
            do {
                let (fd, _) = try files.openForReading(try WorkspacePath(secretPath))
                seen += String(decoding: try WorkspaceFiles.readChunk(fd, maximum: 4096).readableBytesView, as: UTF8.self)
                close(fd)
                Issue.record("read \(secretPath) through the swapped mount")
            } catch let error as AgentBoxError {
                #expect(error.code == .conflict, "\(error)")
                #expect(error.message.contains("not what was allowed"), "\(error)")
            }
            do {
                seen += try files.list(try WorkspacePath("/data" + scene.dataDirectory.path), maxDepth: 1).items.map(\.name).joined(separator: " ")
                Issue.record("listed the data directory through the swapped mount: \(seen)")
            } catch let error as AgentBoxError {
                #expect(error.code == .conflict, "\(error)")
            }
            do {
                let path = try WorkspacePath("/out" + scene.hostDirectory + "/pwned")
                _ = try await files.write(path, chunks: AsyncThrowingStream<ByteBuffer, any Error> { $0.yield(ByteBuffer(string: "pwned")); $0.finish() })
                Issue.record("wrote into the host's \(scene.hostDirectory) through the swapped mount")
            } catch let error as AgentBoxError {
                #expect(error.code == .conflict, "\(error)")
            }
            #expect(!FileManager.default.fileExists(atPath: scene.hostDirectory + "/pwned"))
            return seen
        }),
]

// MARK: Other workspaces

let workspaceAttacks: [SandboxAttack] = [
    SandboxAttack(
        area: .otherWorkspaces, name: "a neighbour's files by their host path",
        action: .python { scene in
            pythonErrnos("neighbour files", [scene.neighbourDirectory + "/workspace/secret.txt", scene.neighbourDirectory + "/home/secret.txt"])
                + "\n" + pythonErrnos("workspaces", [scene.dataDirectory.path + "/workspaces", scene.neighbourDirectory], "os.listdir")
                + "\nprint('own secret', os.path.exists('/workspace/secret.txt'))"
        },
        lines: ["neighbour files ['ENOENT']", "workspaces ['ENOENT']", "own secret False"]),
    SandboxAttack(
        area: .otherWorkspaces, name: "/proc/<pid>/root and environ of a neighbour's processes (host pids and every visible pid)",
        action: .python { scene in
            let pids = scene.neighbourHostPIDs.map(String.init).joined(separator: ", ")
            return """
                seen = set()
                for pid in [\(pids)]:
                    for path in ["/proc/%d/root/workspace/secret.txt" % pid, "/proc/%d/environ" % pid]:
                        try:
                            read(path)
                            seen.add("OK")
                        except OSError as error:
                            seen.add(errno.errorcode[error.errno])
                print("neighbour pids", sorted(seen))
                found = []
                for pid in filter(str.isdigit, os.listdir("/proc")):
                    try:
                        found.append(read("/proc/%s/root/workspace/secret.txt" % pid))
                    except OSError:
                        pass
                print("secret files through /proc", len(found))
                """
        },
        lines: ["neighbour pids ['ENOENT']", "secret files through /proc 0"]),
    SandboxAttack(
        area: .otherWorkspaces, name: "a neighbour's /tmp and /dev/shm",
        action: .python { _ in pythonErrnos("shared temporary files", ["/tmp/secret.txt", "/dev/shm/secret.txt", "/var/tmp/secret.txt"]) },
        lines: ["shared temporary files ['ENOENT']"]),
    SandboxAttack(
        area: .otherWorkspaces, name: "a neighbour's abstract unix socket",
        action: .python { _ in
            """
            def connect():
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                connection.connect("\\0agentbox-neighbour")
                print(connection.recv(4096))
            attempt("abstract socket", connect)
            """
        },
        lines: ["abstract socket ECONNREFUSED"]),
    SandboxAttack(
        area: .otherWorkspaces, name: "a neighbour's server on 127.0.0.1",
        action: .python { _ in
            """
            def connect():
                print(socket.create_connection(("127.0.0.1", 7801), 3).recv(4096))
            attempt("loopback 7801", connect)
            """
        },
        lines: ["loopback 7801 ECONNREFUSED"]),
    SandboxAttack(
        area: .otherWorkspaces, name: "a neighbour's SysV shared memory",
        action: .python { _ in
            """
            ctypes.set_errno(0)
            segment = libc.shmget(0x4142, 0, 0)
            print("shmget", segment if segment >= 0 else errno.errorcode[ctypes.get_errno()])
            print("segments", len(open("/proc/sysvipc/shm").read().splitlines()) - 1)
            """
        },
        lines: ["shmget ENOENT", "segments 0"]),
]

// MARK: Host processes

let processAttacks: [SandboxAttack] = [
    SandboxAttack(
        area: .hostProcesses, name: "list the host's processes (ps, /proc)",
        // Other cases run in this workspace at the same time, so its own processes are many; but a process whose
        // parent is outside the namespace shows parent 0, and only the supervisor may.
        action: .shell { _ in "ps -e -o pid=,args=; echo orphans=$(ps -e -o ppid= | grep -cx ' *0')" },
        lines: ["orphans=1"],
        contains: ["1 /.agentbox/init"],
        absent: [SandboxAttack.testProcessName, "agentbox-neighbour-marker", "sleep 600", "bwrap"]),
    SandboxAttack(
        area: .hostProcesses, name: "signal host processes by their host pids (the server, a neighbour's)",
        action: .python { scene in
            """
            attempt("kill the server", lambda: os.kill(\(getpid()), signal.SIGKILL))
            \(pythonErrnos("kill the neighbour", scene.neighbourHostPIDs.map(String.init), "lambda pid: os.kill(int(pid), signal.SIGKILL)"))
            """
        },
        lines: ["kill the server ESRCH", "kill the neighbour ['ESRCH']"],
        verify: { scene, _ in
            #expect(scene.neighbourHostPIDs.allSatisfy(isAlive), "the neighbour's processes live")
        }),
    SandboxAttack(
        area: .hostProcesses, name: "PID 1 is the supervisor, not the host's init",
        action: .python { _ in
            """
            print("pid 1", read("/proc/1/cmdline").split(b"\\0")[0].decode())
            print("pid 1 parent", [line for line in open("/proc/1/status").read().splitlines() if line.startswith("PPid")])
            print("levels", [line for line in open("/proc/self/status").read().splitlines() if line.startswith("NSpid")][0].count("\\t"))
            """
        },
        lines: ["pid 1 /.agentbox/init", "pid 1 parent ['PPid:\\t0']", "levels 1"]),
    SandboxAttack(
        area: .hostProcesses, name: "kill -9 -1 reaches the sandbox's processes only", workspace: "killer",
        action: .shell { _ in "sleep 300 & sleep 0.2; kill -9 -1; echo killed=$?; sleep 0.2; echo left=$(ps -e -o comm= | grep -c sleep)" },
        lines: ["killed=0", "left=0"],
        verify: { scene, _ in
            #expect(scene.neighbourHostPIDs.allSatisfy(isAlive), "the neighbour's processes live")
            let again = try await scene.manager.run("killer", "echo again")
            #expect(again.stdout == "again\n", "the supervisor survived: \(again)")
        }),
]

extension SandboxAttack {
    static var testProcessName: String { EscapeScene.testProcessName }
}

// MARK: /proc, /sys and /dev

let procAttacks: [SandboxAttack] = [
    SandboxAttack(
        area: .procAndSys, name: "write core_pattern, modprobe, sysrq and panic_on_oom under /proc/sys",
        action: .python { _ in
            pythonRefusals(
                ["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/proc/sys/kernel/sysrq", "/proc/sys/vm/panic_on_oom"],
                "lambda path: write(path, b'escape-test')")
        },
        lines: ["/proc/sys/kernel/core_pattern refused", "/proc/sys/kernel/modprobe refused", "/proc/sys/kernel/sysrq refused", "/proc/sys/vm/panic_on_oom refused"],
        verify: { scene, _ in
            #expect(EscapeScene.readSettings() == scene.hostSettings, "the host's settings are unchanged")
        }),
    SandboxAttack(
        area: .procAndSys, name: "write /proc/sysrq-trigger",
        action: .python { _ in pythonRefusals(["/proc/sysrq-trigger"], "lambda path: write(path, b'h')") },
        lines: ["/proc/sysrq-trigger refused"]),
    SandboxAttack(
        area: .procAndSys, name: "cgroup release_agent: no /sys, and no cgroup file system of its own",
        action: .python { _ in
            """
            attempt("list /sys", lambda: os.listdir("/sys"))
            \(pythonErrnos("release_agent", ["/sys/fs/cgroup/memory/release_agent", "/sys/fs/cgroup/release_agent"], "lambda path: write(path, b'/tmp/x')"))
            os.makedirs("/tmp/cgroup", exist_ok=True)
            attempt("mount cgroup", lambda: call("mount", b"cgroup", b"/tmp/cgroup", b"cgroup", 0, b"memory"))
            attempt("mount cgroup2", lambda: call("mount", b"cgroup2", b"/tmp/cgroup", b"cgroup2", 0, None))
            """
        },
        lines: ["list /sys ENOENT", "release_agent ['ENOENT']", "mount cgroup EPERM", "mount cgroup2 EPERM"],
        verify: { scene, _ in
            #expect(EscapeScene.readSettings() == scene.hostSettings, "the host's release agents are unchanged")
        }),
    SandboxAttack(
        area: .procAndSys, name: "move itself out of its cgroup through cgroup.procs",
        action: .python { _ in
            pythonErrnos(
                "cgroup.procs", ["/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/memory/cgroup.procs", "/sys/fs/cgroup/unified/cgroup.procs"],
                "lambda path: write(path, str(os.getpid()).encode())")
        },
        lines: ["cgroup.procs ['ENOENT']"]),
    SandboxAttack(
        area: .procAndSys, name: "read or write the supervisor's memory (/proc/1/mem, maps)", workspace: "victim",
        action: .python { _ in
            """
            attempt("mem read", lambda: read("/proc/1/mem"))
            attempt("mem write", lambda: open("/proc/1/mem", "r+b").close())
            attempt("maps", lambda: read("/proc/1/maps"))
            """
        },
        lines: ["mem read EACCES", "mem write EACCES", "maps EACCES"]),
    SandboxAttack(
        area: .procAndSys, name: "/proc/1/environ and every process's environment",
        action: .python { _ in
            """
            attempt("environ of pid 1", lambda: read("/proc/1/environ"))
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    print(read("/proc/%s/environ" % pid).decode(errors="replace"))
                except OSError:
                    pass
            print(dict(os.environ))
            """
        },
        lines: ["environ of pid 1 EACCES"],
        absent: [EscapeScene.environmentVariable]),
    SandboxAttack(
        area: .procAndSys, name: "/proc/1/fd, /proc/1/exe and /proc/1/cwd of the supervisor", workspace: "victim",
        action: .python { _ in
            """
            attempt("list fd", lambda: os.listdir("/proc/1/fd"))
            \(pythonErrnos("open fd", ["/proc/1/fd/0", "/proc/1/fd/1", "/proc/1/fd/2"]))
            \(pythonErrnos("links", ["/proc/1/exe", "/proc/1/cwd", "/proc/1/root"], "os.readlink"))
            """
        },
        // The workspace's root may list the numbers of its own init's descriptors, never open or follow them.
        lines: ["open fd ['EACCES']", "links ['EACCES']"]),
    SandboxAttack(
        area: .procAndSys, name: "/proc/self/mountinfo names no host path",
        action: .shell { _ in "cat /proc/self/mountinfo" },
        contains: [" /workspace ", " /home/agent "],
        verify: { scene, result in
            // The sandbox's own directories show as mounts; where they come from on the host does not: with the
            // disk pool they are subvolumes of the pool's own file system, named by their path inside it. Without a
            // pool (not root, `--disk-pool none`: this suite's manager) a bind mount names its source's host path.
            let pooled = result.stdout.split(separator: "\n").contains { $0.contains(" /workspace ") && $0.contains(" - btrfs ") }
            if pooled {
                #expect(!result.stdout.contains(scene.dataDirectory.path), "\(result.stdout)")
            } else {
                withKnownIssue("without a disk pool, bind mounts name their source's path in mountinfo (the data directory and the workspace's id)") {
                    #expect(!result.stdout.contains(scene.dataDirectory.path), "\(result.stdout)")
                }
            }
            #expect(!result.stdout.contains(scene.neighbourDirectory), "a neighbour's directory is not named")
        }),
    SandboxAttack(
        area: .procAndSys, name: "/proc/kcore and /proc/kmsg",
        action: .python { _ in pythonRefusals(["/proc/kcore", "/proc/kmsg"], "read") },
        lines: ["/proc/kcore refused", "/proc/kmsg refused"]),
    SandboxAttack(
        area: .procAndSys, name: "/dev/mem, /dev/kmem, /dev/port and the host's disks",
        action: .python { _ in
            pythonErrnos("devices", ["/dev/mem", "/dev/kmem", "/dev/port", "/dev/sda", "/dev/vda", "/dev/nvme0n1", "/dev/loop0", "/dev/fuse"])
                + "\nprint('dev', sorted(os.listdir('/dev')))"
        },
        lines: ["devices ['ENOENT']"],
        verify: { _, result in
            let listed = result.stdout.split(separator: "\n").first { $0.hasPrefix("dev [") } ?? ""
            let allowed: Set<String> = ["console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"]
            let names = listed.dropFirst(5).dropLast().split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " '")) }
            #expect(!names.isEmpty && Set(names).isSubset(of: allowed), "\(listed)")
        }),
    SandboxAttack(
        area: .procAndSys, name: "/dev/kmsg and the kernel log (dmesg, syslog)",
        action: .python { _ in
            """
            attempt("/dev/kmsg", lambda: read("/dev/kmsg"))
            buffer = ctypes.create_string_buffer(4096)
            attempt("syslog read all", lambda: call("syslog", 3, buffer, 4096))
            print(subprocess.run(["dmesg"], capture_output=True, text=True).stderr.strip())
            """
        },
        lines: ["/dev/kmsg ENOENT", "syslog read all EPERM"],
        contains: ["dmesg: read kernel buffer failed: Operation not permitted"]),
    SandboxAttack(
        area: .procAndSys, name: "mknod a memory or disk device",
        action: .python { _ in
            """
            attempt("char 1:1", lambda: os.mknod("/tmp/mem", 0o600 | stat.S_IFCHR, os.makedev(1, 1)))
            attempt("block 8:0", lambda: os.mknod("/workspace/sda", 0o600 | stat.S_IFBLK, os.makedev(8, 0)))
            """
        },
        lines: ["char 1:1 EPERM", "block 8:0 EPERM"]),
]

// MARK: The supervisor

let supervisorAttacks: [SandboxAttack] = [
    SandboxAttack(
        area: .supervisor, name: "ptrace the supervisor (attach, seize)", workspace: "victim",
        action: .python { _ in
            """
            def trace(request):
                if libc.ptrace(request, 1, 0, 0) != 0:
                    raise OSError(ctypes.get_errno(), "ptrace")
                libc.ptrace(17, 1, 0, 0)  # PTRACE_DETACH, should it ever work
            attempt("attach", lambda: trace(16))
            attempt("seize", lambda: trace(0x4206))
            """
        },
        lines: ["attach EPERM", "seize EPERM"]),
    SandboxAttack(
        area: .supervisor, name: "kill or stop the supervisor (KILL, STOP, TERM, SEGV, INT, HUP)", workspace: "victim",
        // Alive and not stopped: sleeping, or running (it may be starting another case's process at that moment).
        action: .shell { _ in "for s in KILL STOP TERM SEGV INT HUP; do kill -$s 1; done; sleep 0.3; grep -qE '^State:.(S|R) ' /proc/1/status && echo alive" },
        lines: ["alive"],
        verify: { scene, _ in
            let again = try await scene.manager.run("victim", "echo answered")
            #expect(again.stdout == "answered\n", "the supervisor still starts processes: \(again)")
        }),
    SandboxAttack(
        area: .supervisor, name: "forge replies or requests through /proc/1/fd (the reply pipe, the control socket)", workspace: "victim",
        action: .python { _ in
            """
            attempt("reply pipe", lambda: write("/proc/1/fd/1", b"exited 1 0 0\\n"))
            attempt("reply pipe by task", lambda: write("/proc/1/task/1/fd/1", b"exited 1 0 0\\n"))
            attempt("control socket", lambda: write("/proc/1/fd/0", b"kill\\x001\\x00"))
            """
        },
        lines: ["reply pipe EACCES", "reply pipe by task EACCES", "control socket EACCES"]),
    SandboxAttack(
        area: .supervisor, name: "inherit a descriptor of the supervisor", workspace: "victim",
        action: .python { _ in "print('descriptors', sorted(int(fd) for fd in os.listdir('/proc/self/fd')))" },
        lines: ["descriptors [0, 1, 2, 3]"]),
    SandboxAttack(
        area: .supervisor, name: "forged 'exited' and 'started' lines on a process's own output", workspace: "victim",
        action: .custom { scene in
            let runtime = try await scene.manager.runtime(for: key("victim"))
            let sleeper = try await runtime.spawn(SpawnRequest(command: "sleep", args: ["120"]))
            let forged = "for i in range(1, 400):\n    line = 'exited %d 0 0\\nstarted %d 1\\nfailed %d 2 exec\\nready\\nerror forged\\n' % (i, i, i)\n"
                + "    sys.stdout.write(line); sys.stderr.write(line)\nsys.stdout.write('exited 7 0 0')"
            let result = try await runtime.exec(ExecRequest(command: "python3 - <<'EOF'\n\(pythonPrelude)\n\(forged)\nEOF", timeoutMs: 30_000))
            #expect(result.exitCode == 0 && result.stdout.hasPrefix("exited 1 0 0\n"), "the lines are the process's output, nothing else")
            #expect(try await runtime.process(sleeper.id).status == .running, "no forged line ended another process")
            #expect(try await runtime.exec(ExecRequest(command: "echo fine")).stdout == "fine\n")
            try await runtime.signal(sleeper.id, .KILL)
            let ended = try await runtime.wait(sleeper.id, timeout: .seconds(10))
            #expect(ended.status == .exited && ended.signal == "KILL", "its real end is reported: \(ended)")
            return result.stdout + result.stderr
        }),
]

// MARK: Mounts and namespaces

let namespaceAttacks: [SandboxAttack] = [
    SandboxAttack(
        area: .mountsAndNamespaces, name: "mount a tmpfs (mount(8) and mount(2))",
        action: .python { _ in
            """
            print(subprocess.run(["mount", "-t", "tmpfs", "none", "/tmp"], capture_output=True, text=True).stderr.strip())
            attempt("tmpfs", lambda: call("mount", b"none", b"/tmp", b"tmpfs", 0, None))
            attempt("fsopen tmpfs", lambda: call("fsopen", b"tmpfs", 0))
            """
        },
        lines: ["tmpfs EPERM", "fsopen tmpfs EPERM"],
        contains: ["mount: /tmp: permission denied"]),
    SandboxAttack(
        area: .mountsAndNamespaces, name: "bind-mount / or clone a mount tree (open_tree)",
        action: .python { _ in
            """
            os.makedirs("/tmp/bind", exist_ok=True)
            attempt("bind /", lambda: call("mount", b"/", b"/tmp/bind", None, 0x1000 | 0x4000, None))
            attempt("remount /usr writable", lambda: call("mount", None, b"/usr", None, 0x20 | 0x1000, None))
            attempt("open_tree clone", lambda: call("open_tree", -100, b"/", 1))
            """
        },
        lines: ["bind / EPERM", "remount /usr writable EPERM", "open_tree clone EPERM"]),
    SandboxAttack(
        area: .mountsAndNamespaces, name: "mount proc or sysfs",
        action: .python { _ in
            """
            os.makedirs("/tmp/proc", exist_ok=True)
            attempt("proc", lambda: call("mount", b"proc", b"/tmp/proc", b"proc", 0, None))
            attempt("sysfs", lambda: call("mount", b"sysfs", b"/tmp/proc", b"sysfs", 0, None))
            """
        },
        lines: ["proc EPERM", "sysfs EPERM"]),
    SandboxAttack(
        area: .mountsAndNamespaces, name: "unshare -U / -r: a user namespace with root in it",
        action: .python { _ in
            """
            print(subprocess.run(["unshare", "-U", "-r", "id", "-u"], capture_output=True, text=True).stderr.strip())
            attempt("CLONE_NEWUSER", lambda: call("unshare", 0x10000000))
            """
        },
        lines: ["CLONE_NEWUSER EPERM"],
        contains: ["unshare failed: Operation not permitted"]),
    SandboxAttack(
        area: .mountsAndNamespaces, name: "unshare -m, -n, -p, -i, -u, -C, -T",
        action: .python { _ in
            """
            for name, flag in [("mount", 0x20000), ("net", 0x40000000), ("pid", 0x20000000), ("ipc", 0x08000000),
                               ("uts", 0x04000000), ("cgroup", 0x02000000), ("time", 0x80)]:
                attempt("unshare " + name, lambda: call("unshare", flag))
            """
        },
        lines: ["unshare mount EPERM", "unshare net EPERM", "unshare pid EPERM", "unshare ipc EPERM", "unshare uts EPERM", "unshare cgroup EPERM", "unshare time EPERM"]),
    SandboxAttack(
        area: .mountsAndNamespaces, name: "setns or nsenter into /proc/1/ns/* and its own namespaces",
        action: .python { _ in
            """
            \(pythonErrnos("pid 1 namespaces", ["/proc/1/ns/mnt", "/proc/1/ns/user", "/proc/1/ns/net", "/proc/1/ns/pid"], "lambda path: os.close(os.open(path, os.O_RDONLY))"))
            own = os.open("/proc/self/ns/mnt", os.O_RDONLY)
            attempt("setns own mount namespace", lambda: call("setns", own, 0))
            print(subprocess.run(["nsenter", "-t", "1", "-m", "-p", "true"], capture_output=True, text=True).stderr.strip())
            """
        },
        lines: ["pid 1 namespaces ['EACCES']", "setns own mount namespace EPERM"],
        contains: ["nsenter: "]),
    SandboxAttack(
        area: .mountsAndNamespaces, name: "pivot_root",
        action: .python { _ in "os.makedirs('/tmp/old', exist_ok=True)\nattempt('pivot_root', lambda: call('pivot_root', b'/tmp', b'/tmp/old'))" },
        lines: ["pivot_root EPERM"]),
    SandboxAttack(
        area: .mountsAndNamespaces, name: "chroot (chroot(8) and chroot(2))",
        action: .python { _ in
            """
            attempt("chroot", lambda: call("chroot", b"/tmp"))
            print(subprocess.run(["chroot", "/tmp", "/bin/true"], capture_output=True, text=True).stderr.strip())
            """
        },
        lines: ["chroot EPERM"],
        contains: ["chroot: cannot change root directory to '/tmp': Operation not permitted"]),
]

// MARK: System calls

let syscallAttacks: [SandboxAttack] = [
    SandboxAttack(
        area: .systemCalls, name: "io_uring",
        action: .python { _ in "params = ctypes.create_string_buffer(120)\nattempt('io_uring_setup', lambda: call('io_uring_setup', 8, params))" },
        lines: ["io_uring_setup EPERM"]),
    SandboxAttack(
        area: .systemCalls, name: "bpf: load a socket filter, create a map",
        action: .python { _ in
            """
            program = ctypes.create_string_buffer(struct.pack("<BBhi", 0xb7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0))
            license = ctypes.create_string_buffer(b"GPL")
            load = ctypes.create_string_buffer(struct.pack("<IIQQIIQ", 1, 2, ctypes.addressof(program), ctypes.addressof(license), 0, 0, 0), 128)
            attempt("BPF_PROG_LOAD", lambda: call("bpf", 5, load, 128))
            create = ctypes.create_string_buffer(struct.pack("<IIII", 2, 4, 4, 1), 128)
            attempt("BPF_MAP_CREATE", lambda: call("bpf", 0, create, 128))
            """
        },
        lines: ["BPF_PROG_LOAD EPERM", "BPF_MAP_CREATE EPERM"]),
    SandboxAttack(
        area: .systemCalls, name: "userfaultfd",
        action: .python { _ in "attempt('userfaultfd', lambda: call('userfaultfd', os.O_CLOEXEC | os.O_NONBLOCK))" },
        lines: ["userfaultfd EPERM"]),
    SandboxAttack(
        area: .systemCalls, name: "perf_event_open",
        action: .python { _ in
            """
            attr = ctypes.create_string_buffer(struct.pack("<IIQ", 1, 128, 0), 128)  # PERF_TYPE_SOFTWARE, CPU clock
            attempt("perf_event_open", lambda: call("perf_event_open", attr, 0, -1, -1, 0))
            """
        },
        lines: ["perf_event_open EPERM"]),
    SandboxAttack(
        area: .systemCalls, name: "the kernel keyrings (add_key, keyctl, request_key)",
        action: .python { _ in
            """
            attempt("add_key", lambda: call("add_key", b"user", b"escape", b"payload", 7, -2))
            attempt("keyctl join", lambda: call("keyctl", 1, None))
            attempt("request_key", lambda: call("request_key", b"user", b"escape", None, -2))
            """
        },
        lines: ["add_key EPERM", "keyctl join EPERM", "request_key EPERM"]),
    SandboxAttack(
        area: .systemCalls, name: "kexec_load and kexec_file_load",
        action: .python { _ in
            """
            attempt("kexec_load", lambda: call("kexec_load", 0, 0, None, 0))
            kernel = os.open("/usr/bin/true", os.O_RDONLY)
            attempt("kexec_file_load", lambda: call("kexec_file_load", kernel, kernel, 1, b"", 0))
            """
        },
        lines: ["kexec_load EPERM", "kexec_file_load EPERM"]),
    SandboxAttack(
        area: .systemCalls, name: "init_module and finit_module",
        action: .python { _ in
            """
            image = ctypes.create_string_buffer(b"\\x7fELF" + b"\\0" * 60)
            attempt("init_module", lambda: call("init_module", image, 64, b""))
            module = os.open("/usr/bin/true", os.O_RDONLY)
            attempt("finit_module", lambda: call("finit_module", module, b"", 0))
            """
        },
        lines: ["init_module EPERM", "finit_module EPERM"]),
    SandboxAttack(
        area: .systemCalls, name: "open_by_handle_at (the 'shocker' escape), with a real and a forged handle",
        action: .python { _ in
            """
            handle = ctypes.create_string_buffer(8 + 128)
            struct.pack_into("<I", handle, 0, 128)
            mount_id = ctypes.c_int()
            try:
                call("name_to_handle_at", -100, b"/workspace", handle, ctypes.byref(mount_id), 0)
            except OSError:
                pass
            directory = os.open("/workspace", os.O_RDONLY)
            attempt("open_by_handle_at", lambda: call("open_by_handle_at", directory, handle, os.O_RDONLY))
            forged = ctypes.create_string_buffer(struct.pack("<IiQ", 8, 1, 2))  # inode 2: the file system's root
            attempt("open_by_handle_at forged", lambda: call("open_by_handle_at", directory, forged, os.O_RDONLY))
            """
        },
        lines: ["open_by_handle_at EPERM", "open_by_handle_at forged EPERM"]),
    SandboxAttack(
        area: .systemCalls, name: "AF_VSOCK towards the hypervisor's host (CID 2)",
        action: .python { _ in
            """
            def vsock():
                connection = socket.socket(40, socket.SOCK_STREAM)
                connection.settimeout(2)
                connection.connect((2, 22))
            attempt("vsock", vsock)
            """
        },
        lines: ["vsock EPERM"]),
    SandboxAttack(
        area: .systemCalls, name: "raw and packet sockets",
        action: .python { _ in
            """
            attempt("raw icmp", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
            attempt("raw icmpv6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6))
            attempt("packet", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))
            """
        },
        lines: ["raw icmp EPERM", "raw icmpv6 EPERM", "packet EPERM"]),
    SandboxAttack(
        area: .systemCalls, name: "netlink: add a route, a link or an address, take lo down",
        action: .shell { _ in
            "ip route add default via 127.0.0.2 dev lo 2>&1; ip link add escape0 type dummy 2>&1; ip addr add 10.9.9.9/32 dev lo 2>&1; ip link set lo down 2>&1; echo routes=$(ip route | wc -l); ip -o link show lo"
        },
        lines: ["routes=0"],
        verify: { _, result in
            #expect(result.stdout.components(separatedBy: "RTNETLINK answers: Operation not permitted").count == 5, "\(result.stdout)")
            #expect(result.stdout.contains("state UNKNOWN") || result.stdout.contains(",UP"), "lo stays up: \(result.stdout)")
        }),
]

// MARK: Privileges

let privilegeAttacks: [SandboxAttack] = [
    SandboxAttack(
        area: .privileges, name: "setuid-root programs (su, passwd, newgrp, chsh, chfn, gpasswd, mount)",
        action: .python { _ in
            """
            os.setgroups([])
            os.setgid(1000)
            os.setuid(1000)  # the workspace's root gains nothing from set-uid programs; its other users neither
            print([line for line in open("/proc/self/status").read().splitlines() if line.startswith("NoNewPrivs")][0])
            for name in ["su", "passwd", "newgrp", "chsh", "chfn", "gpasswd", "mount"]:
                path = "/usr/bin/" + name
                if not os.path.exists(path) or not os.stat(path).st_mode & stat.S_ISUID:
                    continue
                child = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                uids = None
                for _ in range(50):
                    try:
                        status = open("/proc/%d/status" % child.pid).read()
                    except OSError:
                        break
                    if "Name:\\t" + name[:15] in status:
                        uids = [line for line in status.splitlines() if line.startswith("Uid:")][0].split()[1:]
                        break
                    time.sleep(0.02)
                child.kill()
                child.wait()
                print(name, "effective uid", uids[1] if uids else "exited before it could be seen")
            """
        },
        lines: ["NoNewPrivs:\t1"],
        absent: ["effective uid 0"],
        verify: { _, result in
            #expect(result.stdout.contains("effective uid 1000"), "at least one setuid-root program was seen running, as 1000: \(result.stdout)")
        }),
    SandboxAttack(
        area: .privileges, name: "chmod u+s a copy of a program",
        action: .shell { _ in
            "cp /usr/bin/id /workspace/suid-id && chmod 4755 /workspace/suid-id && stat -c %a /workspace/suid-id && setpriv --reuid 1000 --regid 1000 --clear-groups /workspace/suid-id -u; echo nosuid=$(grep -c ' /workspace rw,nosuid' /proc/self/mountinfo)"
        },
        // The bit is set (by the workspace's root, who owns the copy), but /workspace is mounted nosuid: the agent
        // user running it stays 1000.
        lines: ["4755", "1000", "nosuid=1"],
        verify: { scene, _ in
            // On the host the file belongs to the root of the ids the workspace's files carry on disk (the storage
            // range, which no process runs as), an unprivileged uid: a setuid bit there gains nothing.
            let runtime = try await scene.manager.runtime(for: key("attacker"))
            var info = stat()
            #expect(stat(runtime.directory.appendingPathComponent("workspace/suid-id").path, &info) == 0)
            #expect(info.st_uid == runtime.diskIDs.start && info.st_uid != 0, "owner \(info.st_uid)")
        }),
    SandboxAttack(
        area: .privileges, name: "chown a file to another uid, and to one outside the workspace's range",
        action: .shell { _ in "touch /workspace/to-root && chown 1001:1001 /workspace/to-root && chown 5000 /workspace/to-root 2>&1; chown 4294967294 /workspace/to-root 2>&1; stat -c %u /workspace/to-root" },
        // Ids the workspace's user namespace maps (0-1999, 65534-65535) are its own; any other is refused.
        contains: ["chown: changing ownership of '/workspace/to-root': Invalid argument"],
        verify: { scene, result in
            #expect(result.stdout.hasSuffix("1001\n"), "\(result.stdout)")
            let runtime = try await scene.manager.runtime(for: key("attacker"))
            var info = stat()
            #expect(stat(runtime.directory.appendingPathComponent("workspace/to-root").path, &info) == 0)
            #expect(info.st_uid == runtime.diskIDs.start + 1001, "owner on the host \(info.st_uid): inside the range of the workspace's files")
        }),
    SandboxAttack(
        area: .privileges, name: "file capabilities (setcap, security.capability), capset and ambient capabilities",
        action: .python { _ in
            """
            open("/workspace/capbin", "wb").close()
            blob = struct.pack("<IIIII", 0x02000000, 1 << 21, 0, 0, 0)  # VFS_CAP_REVISION_2, CAP_SYS_ADMIN permitted
            attempt("security.capability", lambda: os.setxattr("/workspace/capbin", "security.capability", blob))
            print(subprocess.run(["setcap", "cap_sys_admin+ep", "/workspace/capbin"], capture_output=True, text=True).stderr.strip())
            header = ctypes.create_string_buffer(struct.pack("<Ii", 0x20080522, 0))
            data = ctypes.create_string_buffer(struct.pack("<IIIIII", 1 << 21, 1 << 21, 1 << 21, 0, 0, 0))
            attempt("capset", lambda: call("capset", header, data))
            ctypes.set_errno(0)
            print("ambient raise", errno.errorcode.get(ctypes.get_errno()) if libc.prctl(47, 2, 21, 0, 0) != 0 else "OK")
            print([line for line in open("/proc/self/status").read().splitlines() if line.startswith("CapBnd")][0])
            """
        },
        // The workspace's root may set file capabilities, but the kernel records them for its own user namespace
        // only (revision 3, with its root's host uid), and none beyond its bounding set can be gained.
        lines: ["capset EPERM", "ambient raise EPERM", "CapBnd:\t00000000800005fb"],
        verify: { scene, _ in
            let runtime = try await scene.manager.runtime(for: key("attacker"))
            // Read on the host (Swift's Glibc module has no getxattr): revision 3 names the root it is valid under.
            let reader = ChildProcess()
            reader.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            reader.arguments = ["-c", "import os, struct, sys\ntry:\n  b = os.getxattr(sys.argv[1], 'security.capability')\n  print(b[3], struct.unpack('<I', b[20:24])[0] if len(b) >= 24 else -1)\nexcept OSError:\n  print('none')", runtime.directory.appendingPathComponent("workspace/capbin").path]
            let pipe = Pipe()
            reader.standardOutput = pipe
            try reader.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            reader.waitUntilExit()
            // Through the idmapped mount the kernel stores the root id mapped to the storage range: on the host it names
            // a root no process runs as.
            if text != "none\n" {
                #expect(text == "3 \(runtime.diskIDs.start)\n", "a namespaced capability, valid only where the workspace's root is root: \(text)")
            }
        }),
    SandboxAttack(
        area: .privileges, name: "setuid, setgid and setgroups to an id outside the workspace's range",
        action: .python { _ in "attempt('setuid', lambda: os.setuid(5000))\nattempt('setgid', lambda: os.setgid(5000))\nattempt('setgroups', lambda: os.setgroups([5000]))" },
        // The workspace's root is uid 0 of its own namespace; an id its namespace does not map cannot be taken.
        lines: ["setuid EINVAL", "setgid EINVAL", "setgroups EINVAL"]),
]

// MARK: Egress

/// Sends, from inside `workspace`, a plain GET and a CONNECT for each target to the workspace's proxy, with the
/// authority exactly as written; returns `target plain tunnel` per target, and whether the host's server answered.
func proxyProbe(_ scene: EscapeScene, _ workspace: String, _ targets: [String]) async throws -> (statuses: [String: String], output: String) {
    let script = """
        import socket, sys
        from concurrent.futures import ThreadPoolExecutor
        def status(request):
            try:
                connection = socket.create_connection(("127.0.0.1", 3128), 5)
                connection.settimeout(15)
                connection.sendall(request.encode())
                data = b""
                while True:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                    if b"\\r\\n\\r\\n" in data and not data.startswith(b"HTTP/1.1 200"):
                        break
                    if len(data) > 65536:
                        break
                line = data.split(b"\\r\\n")[0].split(b" ")
                return (line[1].decode() if len(line) > 1 else "none") + (" host-answered" if b"host-ok" in data else "")
            except Exception as error:
                return type(error).__name__
        def probe(target):
            plain = status(f"GET http://{target}/ HTTP/1.1\\r\\nHost: {target}\\r\\nConnection: close\\r\\n\\r\\n")
            tunnel = status(f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n")
            return f"{target} {plain} {tunnel}"
        with ThreadPoolExecutor(len(sys.argv) - 1) as pool:
            for line in pool.map(probe, sys.argv[1:]):
                print(line)
        """
    let quoted = targets.map { "'\($0)'" }.joined(separator: " ")
    let result = try await scene.manager.run(workspace, "python3 - \(quoted) <<'EOF'\n\(script)\nEOF", timeoutMs: 60_000)
    var statuses: [String: String] = [:]
    for line in result.stdout.split(separator: "\n") {
        let fields = line.split(separator: " ", maxSplits: 1).map(String.init)
        if fields.count == 2 { statuses[fields[0]] = fields[1] }
    }
    return (statuses, result.stdout + result.stderr)
}

/// A case that sends `targets` through the proxy of the workspace whose policy is `allow`: each gets the proxy's own
/// 403 for both forms (the host's server, listening on every address, never answers).
func refusedByTheProxy(_ name: String, _ targets: @escaping @Sendable (EscapeScene) -> [String], alsoAccept: Set<String> = []) -> SandboxAttack {
    SandboxAttack(
        area: .egress, name: name, workspace: "egress",
        action: .custom { scene in
            let list = targets(scene)
            let (statuses, output) = try await proxyProbe(scene, "egress", list)
            for target in list {
                let status = statuses[target] ?? "no answer"
                #expect(status == "403 403" || alsoAccept.contains(status), "\(target): \(status)")
            }
            #expect(!output.contains("host-answered"), "\(output)")
            return output
        })
}

let egressAttacks: [SandboxAttack] = [
    SandboxAttack(
        area: .egress, name: "connect out directly, ignoring the proxy (TCP and UDP, IPv4 and IPv6)", workspace: "egress",
        action: .python { scene in
            let external = HostHTTPServer.externalAddress ?? "192.0.2.1"
            return """
                seen = set()
                for target in [("\(external)", \(scene.hostServer.port)), ("10.0.0.1", 80), ("169.254.169.254", 80), ("8.8.8.8", 53), ("2001:4860:4860::8888", 53)]:
                    try:
                        socket.create_connection(target, 3)
                        seen.add("connected")
                    except OSError as error:
                        seen.add(errno.errorcode.get(error.errno, str(error.errno)))
                print("tcp", sorted(seen))
                attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53)))
                """
        },
        lines: ["tcp ['ENETUNREACH']", "udp ENETUNREACH"]),
    refusedByTheProxy("CONNECT and GET to the host's loopback (127.0.0.1, [::1], 127.1, 0x7f000001)") { scene in
        ["127.0.0.1", "[::1]", "127.1", "0x7f000001", "0.0.0.0"].map { "\($0):\(scene.hostServer.port)" }
    },
    refusedByTheProxy("CONNECT and GET to every address of the host's interfaces") { scene in scene.hostAddressTargets },
    refusedByTheProxy("the cloud metadata endpoint (169.254.169.254, fd00:ec2::254, its IPv4-mapped form)") { _ in
        ["169.254.169.254:80", "169.254.169.254:443", "[fd00:ec2::254]:80", "[::ffff:169.254.169.254]:80"]
    },
    refusedByTheProxy("private networks (10.0.0.1, 172.16.0.1, 192.168.1.1, 100.64.0.1)") { scene in
        ["10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1"].map { "\($0):\(scene.hostServer.port)" }
    },
    refusedByTheProxy(
        "names that resolve to the host (localhost, LOCALHOST., the host's own name, 127.0.0.1.nip.io)",
        { scene in
            var hostName = [CChar](repeating: 0, count: 256)
            gethostname(&hostName, 255)
            return ["localhost", "LOCALHOST.", String(cString: hostName), "127.0.0.1.nip.io"].map { "\($0):\(scene.hostServer.port)" }
        },
        // Without DNS on the host a name that needs it cannot be resolved: the proxy's 502, which reaches nothing either.
        alsoAccept: ["502 502"]),
    refusedByTheProxy("the host alias (host.agentbox.internal) with `allow` but no entry naming it") { scene in
        ["host.agentbox.internal:\(scene.hostServer.port)"]
    },
]

// MARK: The output channel

/// `python3` writing 64 MiB without a newline to stdout and to stderr at once.
let floodProgram = "import os, threading\nblock = b'x' * (1 << 20)\n"
    + "def flood(fd):\n    for _ in range(64):\n        os.write(fd, block)\n"
    + "threads = [threading.Thread(target=flood, args=(fd,)) for fd in (1, 2)]\n[t.start() for t in threads]\n[t.join() for t in threads]\n"

/// Set once, from another task.
final class DoneFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// Runs `flood` while the neighbour and the manager are asked for something every 200 ms; the slowest answer, and
/// what `flood` returned.
func slowestAnswerDuring<T: Sendable>(_ scene: EscapeScene, _ flood: @escaping @Sendable () async throws -> T) async throws -> (Duration, T) {
    let done = DoneFlag()
    let flooding = Task {
        defer { done.set() }
        return try await flood()
    }
    let clock = ContinuousClock()
    var slowest = Duration.zero
    var rounds = 0
    while rounds < 3 || (!done.isSet && rounds < 600) {
        let start = clock.now
        let answer = try await scene.manager.run("neighbour", "echo alive")
        _ = try await scene.manager.workspace(key: key("flooder"))
        #expect(answer.stdout == "alive\n")
        slowest = max(slowest, clock.now - start)
        rounds += 1
        try await Task.sleep(for: .milliseconds(200))
    }
    return (slowest, try await flooding.value)
}

let channelAttacks: [SandboxAttack] = [
    SandboxAttack(
        area: .channel, name: "64 MiB without a newline on stdout and stderr of an exec, while a neighbour works", workspace: "flooder",
        action: .custom { scene in
            let runtime = try await scene.manager.runtime(for: key("flooder"))
            let (slowest, result) = try await slowestAnswerDuring(scene) {
                try await runtime.exec(ExecRequest(command: "python3 - <<'EOF'\n\(floodProgram)\nEOF", timeoutMs: 90_000))
            }
            #expect(result.exitCode == 0 && result.truncated, "\(result.exitCode) \(result.stderr.prefix(200))")
            #expect(result.stdout.utf8.count <= 1 << 20 && result.stderr.utf8.count <= 1 << 20, "kept at most the cap")
            #expect(slowest < .seconds(10), "the neighbour and the manager answered within \(slowest)")
            #expect(try await runtime.exec(ExecRequest(command: "echo after")).stdout == "after\n")
            return ""
        }),
    SandboxAttack(
        area: .channel, name: "64 MiB without a newline from a spawned process, while a neighbour works", workspace: "flooder",
        action: .custom { scene in
            let runtime = try await scene.manager.runtime(for: key("flooder"))
            _ = try await runtime.exec(ExecRequest(command: "cat > /tmp/flood.py", stdin: floodProgram))
            let (slowest, _) = try await slowestAnswerDuring(scene) {
                let process = try await runtime.spawn(SpawnRequest(command: "python3", args: ["/tmp/flood.py"]))
                let ended = try await runtime.wait(process.id, timeout: .seconds(90))
                #expect(ended.exitCode == 0, "\(ended)")
                let output = try await runtime.output(process.id)
                #expect(output.truncated && output.stdout.utf8.count <= 64 << 10 && output.stderr.utf8.count <= 64 << 10, "only the last bytes are kept")
            }
            #expect(slowest < .seconds(10), "the neighbour and the manager answered within \(slowest)")
            return ""
        }),
]

// MARK: - The suite

@Suite(
    "Escape suite: from inside a workspace", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(3)),
    EscapeSceneTrait())
struct EscapeSuiteTests {
    @Test(arguments: sandboxAttacks)
    func attack(_ attack: SandboxAttack) async throws {
        let scene = try #require(EscapeScene.current, "the scene is set up around the suite")
        var result = ExecResult(exitCode: 0, stdout: "", stderr: "", timedOut: false, truncated: false, durationMs: 0, processId: "")
        switch attack.action {
        case .shell(let command):
            result = try await scene.manager.run(attack.workspace, command(scene), timeoutMs: 60_000)
        case .python(let program):
            result = try await scene.manager.run(attack.workspace, "python3 - <<'EOF'\n\(pythonPrelude)\n\(program(scene))\nEOF", timeoutMs: 60_000)
        case .custom(let body):
            result.stdout = try await body(scene)
        }
        let output = result.stdout + result.stderr
        #expect(!result.timedOut, "the attack ran out of time (exit \(result.exitCode)): \(output)")
        let lines = Set(result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
        for line in attack.lines {
            #expect(lines.contains(line), "expected the line '\(line)' in:\n\(result.stdout)\(result.stderr)")
        }
        for text in attack.contains {
            #expect(output.contains(text), "expected '\(text)' in:\n\(output)")
        }
        for text in attack.absent {
            #expect(!output.contains(text), "'\(text)' showed:\n\(output)")
        }
        for (what, secret) in scene.secrets {
            #expect(!output.contains(secret), "\(what) leaked:\n\(output)")
        }
        try await attack.verify?(scene, result)
    }
}
