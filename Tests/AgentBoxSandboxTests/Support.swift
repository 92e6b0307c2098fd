import AgentBox
import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import ChildProcessSupport
import Foundation
import Logging
import Testing

/// Real sandboxes need bubblewrap, and per-workspace host uids and cgroups need root: CI runs as root.
enum Host {
    static let canSandbox: Bool = FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") && getuid() == 0
}

/// A fresh data directory, removed afterwards (its files belong to sandbox uids; root removes them).
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-sandbox-\(UUID())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer {
        unmountEverything(below: directory)
        try? FileManager.default.removeItem(at: directory)
    }
    return try await body(directory)
}

/// Unmounts what a test left mounted below `directory` (the disk pool of a server that was killed), so that removing
/// the directory does not reach into a live file system, and no mount outlives the test.
func unmountEverything(below directory: URL) {
    let table = KernelFile.read("/proc/self/mountinfo") ?? ""
    for line in table.split(separator: "\n") {
        let fields = line.split(separator: " ")
        guard fields.count > 4, fields[4].hasPrefix(directory.path + "/") else { continue }
        umount2(String(fields[4]), Int32(MNT_DETACH))
    }
}


/// A manager whose workspaces run in real sandboxes of `kind`.
func makeManager(
    _ directory: URL, kind: SandboxKind = .linux, idleGrace: Duration = .seconds(60),
    limits: WorkspaceLimits = AgentBoxConfiguration.standardLimits, allowHostMounts: [String] = [],
    portWaitLimit: Duration = .seconds(10), sandboxPool: Int? = nil, prestartedSandboxes: Bool? = nil, parkedSandboxes: Int? = nil,
    configure: (inout AgentBoxConfiguration) -> Void = { _ in }
) throws -> WorkspaceManager {
    var logger = Logger(label: "test")
    logger.logLevel = .error
    // AGENTBOX_TEST_SANDBOX_POOL=N runs every sandbox test on pre-started sandboxes (the escape suite among them), or on
    // pooled namespaces with AGENTBOX_PRESTARTED_SANDBOXES=0.
    let fromEnvironment = sandboxPool == nil ? ProcessInfo.processInfo.environment["AGENTBOX_TEST_SANDBOX_POOL"].flatMap { Int($0) } : nil
    // On the pool of the environment, sleeping workspaces park their sandboxes too (their next wake takes them back).
    let (backend, _) = try kind.makeBackend(
        dataDirectory: directory, sandboxPool: sandboxPool ?? fromEnvironment ?? 0, prestartedSandboxes: prestartedSandboxes,
        parkedSandboxes: parkedSandboxes ?? (fromEnvironment != nil ? 8 : 0), logger: logger)
    if fromEnvironment != nil, let pool = (backend as? BubblewrapBackend)?.pool {
        // The test's manager runs no background work: the pool is filled now, and refilled by a task of its own, which
        // lives as long as the test process (a few descriptors per manager).
        try pool.fillNow()
        Task { await pool.run() }
    }
    var configuration = AgentBoxConfiguration(dataDirectory: directory, idleGrace: idleGrace, defaultLimits: limits, sandbox: backend)
    configuration.processOutputBufferBytes = 64 << 10
    configuration.allowedHostMountPrefixes = allowHostMounts
    configuration.portWaitLimit = portWaitLimit
    // Tests run in parallel with stores of their own: give each its own range of host uids.
    configuration.sandboxUIDBase = 100_000_000 + UInt32.random(in: 0..<15_000) * 262_144
    configure(&configuration)
    return try WorkspaceManager.open(configuration: configuration, store: try SQLiteStore.open(in: directory), logger: logger)
}

func key(_ raw: String) -> WorkspaceKey { WorkspaceKey(rawValue: raw)! }

extension WorkspaceManager {
    /// Creates the workspace if needed and runs `command` in it.
    func run(_ workspace: String, _ command: String, timeoutMs: Int? = nil, config: WorkspaceConfig = WorkspaceConfig()) async throws -> ExecResult {
        _ = try await create(key: key(workspace), config: config)
        return try await runtime(for: key(workspace)).exec(ExecRequest(command: command, timeoutMs: timeoutMs))
    }
}

/// The host pids of a workspace's processes: those whose uid is in its id range (given by its agent's host uid).
func hostProcesses(ofWorkspaceWithAgentUID agent: UInt32) -> [Int32] {
    let start = agent - WorkspaceIDs.agent
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { Int32($0) }.filter { pid in
        guard let status = KernelFile.read("/proc/\(pid)/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }),
            let uid = line.split(separator: "\t").dropFirst().first.flatMap({ UInt32($0) })
        else { return false }
        return uid >= start && uid < start + WorkspaceIDs.slot
    }
}

/// Replaces a sleeping workspace's `/usr` upper directory by an empty one of the same owner and mode (as a restore
/// would); the old one is kept as `upper-before`.
func replaceSystemUpperDirectory(of workspace: URL) throws {
    let upper = workspace.appendingPathComponent("system/usr/upper")
    let owner = try FileManager.default.attributesOfItem(atPath: upper.path)
    try FileManager.default.moveItem(at: upper, to: workspace.appendingPathComponent("system/usr/upper-before"))
    try FileManager.default.createDirectory(at: upper, withIntermediateDirectories: false)
    let uid = try #require(owner[.ownerAccountID] as? NSNumber), gid = try #require(owner[.groupOwnerAccountID] as? NSNumber)
    #expect(chown(upper.path, uid.uint32Value, gid.uint32Value) == 0)
    chmod(upper.path, 0o755)
}

/// The processes a sandbox has now, named by its PID namespace (as `readlink /proc/self/ns/pid` shows it inside), to
/// check later whether they are gone. The pids are taken now because the kernel gives a freed namespace's number to
/// the next namespace made (another sandbox, say one the pool starts): later, the name alone may match another sandbox.
struct SandboxProcesses: Sendable {
    let namespace: String
    let pids: [Int32]

    init(_ namespace: String) {
        self.namespace = namespace
        pids = hostProcesses(inPIDNamespace: namespace)
    }

    /// Those of the processes still alive in the namespace.
    var alive: [Int32] {
        pids.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\($0)/ns/pid")) == namespace && isAlive($0) }
    }
}

/// Host pids of the processes in the PID namespace `namespace` (as `readlink /proc/self/ns/pid` shows it inside).
func hostProcesses(inPIDNamespace namespace: String) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { Int32($0) }.filter { pid in
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/pid")) == namespace && isAlive(pid)
    }
}

/// Host pids of processes owned by `uid`.
func hostProcesses(uid: UInt32) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { Int32($0) }.filter { pid in
        guard let status = KernelFile.read("/proc/\(pid)/status") else { return false }
        return status.split(separator: "\n").contains { $0.hasPrefix("Uid:") && $0.split(separator: "\t").dropFirst().first == Substring(String(uid)) }
    }
}

/// Whether `pid` is a live process (a zombie is not).
func isAlive(_ pid: Int32) -> Bool {
    guard let stat = KernelFile.read("/proc/\(pid)/stat"),
        let end = stat.lastIndex(of: ")")
    else { return false }
    return !stat[stat.index(after: end)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
}

/// A tiny HTTP server on the host (all addresses, a free port): answers every request `200 host-ok` and closes.
final class HostHTTPServer: @unchecked Sendable {
    let port: Int
    private let fd: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = INADDR_ANY
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 64) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRINUSE) }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                var buffer = [UInt8](repeating: 0, count: 65536)
                var request: [UInt8] = []
                while !String(decoding: request, as: UTF8.self).contains("\r\n\r\n") {
                    let count = read(client, &buffer, buffer.count)
                    if count <= 0 { break }
                    request += buffer[..<count]
                }
                let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nhost-ok".utf8)
                _ = write(client, answer, answer.count)
                close(client)
            }
        }
    }

    func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }

    /// An IPv4 address of this host that is not loopback, if it has one (not one a test gave it for a while).
    static var externalAddress: String? {
        interfaceAddresses.first { $0.ipv4 && !$0.address.hasPrefix("127.") && !$0.interface.hasPrefix(TestHostAddresses.prefix) }?.address
    }

    /// Every address of this host's interfaces, IPv4 and IPv6, as text.
    static var interfaceAddresses: [(interface: String, address: String, ipv4: Bool)] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var addresses: [(String, String, Bool)] = []
        var current = list
        while let entry = current {
            defer { current = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr else { continue }
            let family = Int32(address.pointee.sa_family)
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            switch family {
            case AF_INET:
                var raw = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                inet_ntop(family, &raw, &text, socklen_t(text.count))
            case AF_INET6:
                var raw = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                inet_ntop(family, &raw, &text, socklen_t(text.count))
            default:
                continue
            }
            addresses.append((String(cString: entry.pointee.ifa_name), String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), family == AF_INET))
        }
        return addresses
    }
}

/// IPv4 addresses given to this host for one test, on a veth pair of their own (on `lo` where veth is missing), so
/// that the host has them when a manager opens. `remove()` takes them away.
struct TestHostAddresses {
    static let prefix = "abeg"
    let device: String
    let addresses: [String]
    private let ownDevice: Bool

    init(_ addresses: [String]) throws {
        let name = Self.prefix + String(Int.random(in: 100_000...999_999))
        if Self.ip("link", "add", name + "a", "type", "veth", "peer", "name", name + "b") {
            (device, ownDevice) = (name + "a", true)
            _ = Self.ip("link", "set", name + "b", "up")
            _ = Self.ip("link", "set", device, "up")
        } else {
            (device, ownDevice) = ("lo", false)
        }
        self.addresses = addresses
        for address in addresses where !Self.ip("addr", "add", address + "/32", "dev", device) {
            remove()
            throw POSIXError(.EPERM)
        }
    }

    func remove() {
        if ownDevice {
            _ = Self.ip("link", "del", device)
        } else {
            for address in addresses { _ = Self.ip("addr", "del", address + "/32", "dev", device) }
        }
    }

    private static func ip(_ arguments: String...) -> Bool {
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") ? "/usr/sbin/ip" : "/sbin/ip")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}
