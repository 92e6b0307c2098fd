import AgentBox
import AgentBoxAPI
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
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

/// A manager whose workspaces run in real sandboxes of `kind`.
func makeManager(
    _ directory: URL, kind: SandboxKind = .linux, idleGrace: Duration = .seconds(60),
    limits: WorkspaceLimits = AgentBoxConfiguration.standardLimits, allowHostMounts: [String] = [],
    portWaitLimit: Duration = .seconds(10)
) throws -> WorkspaceManager {
    var logger = Logger(label: "test")
    logger.logLevel = .error
    let (backend, _) = try kind.makeBackend(dataDirectory: directory)
    var configuration = AgentBoxConfiguration(dataDirectory: directory, idleGrace: idleGrace, defaultLimits: limits, sandbox: backend)
    configuration.processOutputBufferBytes = 64 << 10
    configuration.allowedHostMountPrefixes = allowHostMounts
    configuration.portWaitLimit = portWaitLimit
    // Tests run in parallel with stores of their own: give each its own range of host uids.
    configuration.sandboxUIDBase = 300_000 + UInt32.random(in: 0..<10_000) * 1000
    return try WorkspaceManager.open(configuration: configuration, logger: logger)
}

func key(_ raw: String) -> WorkspaceKey { WorkspaceKey(rawValue: raw)! }

extension WorkspaceManager {
    /// Creates the workspace if needed and runs `command` in it.
    func run(_ workspace: String, _ command: String, timeoutMs: Int? = nil, config: WorkspaceConfig = WorkspaceConfig()) async throws -> ExecResult {
        _ = try await create(key: key(workspace), config: config)
        return try await runtime(for: key(workspace)).exec(ExecRequest(command: command, timeoutMs: timeoutMs))
    }
}

/// Host pids of processes owned by `uid`.
func hostProcesses(uid: UInt32) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { Int32($0) }.filter { pid in
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        return status.split(separator: "\n").contains { $0.hasPrefix("Uid:") && $0.split(separator: "\t").dropFirst().first == Substring(String(uid)) }
    }
}

/// Whether `pid` is a live process (a zombie is not).
func isAlive(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let end = stat.lastIndex(of: ")")
    else { return false }
    return !stat[stat.index(after: end)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
}
