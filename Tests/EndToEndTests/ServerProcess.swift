import AgentBoxAPI
import AgentBoxClient
import AgentBoxSandbox
import ChildProcessSupport
import Foundation
import Synchronization

/// The real `agentbox` binary, built beside the tests, started as a child process.
enum AgentBoxBinary {
    static var path: String {
        if let explicit = ProcessInfo.processInfo.environment["AGENTBOX_BIN"] { return explicit }
        // The test bundle runs from the build directory, where `swift build` also put the executable.
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("agentbox").path
    }

    /// Runs `agentbox` with `arguments` to completion; returns its exit code and outputs.
    static func run(_ arguments: [String], environment: [String: String] = [:], stdin: Data? = nil) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runProgram(path, arguments, environment: environment, stdin: stdin)
    }
}

/// Runs the program at `path` with `arguments` to completion (stdin `stdin`, then closed; empty when `nil`;
/// `environment` over the test's own); returns its exit code and outputs.
func runProgram(_ path: String, _ arguments: [String], environment: [String: String] = [:], stdin: Data? = nil) async throws -> (status: Int32, stdout: String, stderr: String) {
    let process = ChildProcess()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let input = stdin.map { _ in Pipe() }
    process.standardInput = input ?? FileHandle.nullDevice
    try process.run()
    if let input, let stdin {
        let writer = input.fileHandleForWriting
        Thread.detachNewThread {
            try? writer.write(contentsOf: stdin)
            try? writer.close()
        }
    }
    // Read both pipes to the end, each on a thread of its own, so a chatty child never blocks on a full pipe.
    async let stdout = onOwnThread { out.fileHandleForReading.readDataToEndOfFile() }
    async let stderr = onOwnThread { err.fileHandleForReading.readDataToEndOfFile() }
    let (o, e) = await (stdout, stderr)
    let status = await waitForExit(process)
    return (status, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// Runs the blocking `work` on a thread of its own and returns its result.
///
/// Not on the cooperative pool (a `Task.detached` is on it): that pool has one thread per core, two here, and a read
/// that blocks until a child process exits held one of them for the child's lifetime. With the CLI tests' reads of
/// stdout and stderr both blocked, every other test of the process stalled, for as long as 40 s in full runs.
func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: work()) }
    }
}

/// Waits for `process` to exit and returns its exit code (or the number of the signal that ended it).
func waitForExit(_ process: ChildProcess) async -> Int32 {
    await process.exitStatus()
}

/// A running `agentbox serve` on a free loopback port with its own data directory.
final class ServerProcess: Sendable {
    let process: ChildProcess
    let port: Int
    let dataDirectory: URL
    let token: String?
    private let stderrLog: URL
    private let exited = Atomic<Bool>(false)

    var endpoint: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// The blank workspaces a test's server keeps, unless its arguments say otherwise.
    static let blankWorkspaces = 1

    /// Starts the server and returns once it listens.
    /// `uidBase` picks the sandboxes' host uids; a restart that must find the workspaces' files readable again passes
    /// the first server's ``uidBase``.
    static func start(
        dataDirectory: URL, token: String? = "e2e-token", extraArguments: [String] = [], uidBase: String? = nil, environment extra: [String: String] = [:]
    ) async throws -> ServerProcess {
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: AgentBoxBinary.path)
        // Servers of parallel tests each get their own range of sandbox host uids.
        let uidBase = uidBase ?? String(100_000_000 + Int.random(in: 0..<15_000) * 262_144)
        var arguments = ["serve", "--port", "0", "--data-dir", dataDirectory.path, "--log-level", "info", "--sandbox-uid-base", uidBase]
            + extraArguments
        // One blank workspace (not the default 4): dozens of servers start at once on CI's two cores, and each blank is
        // a sandbox booted and parked at start. The first create of each server still takes one.
        if !extraArguments.contains("--blank-workspaces") { arguments += ["--blank-workspaces", String(blankWorkspaces)] }
        if let token { arguments += ["--token", token] }
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["AGENTBOX_TOKEN"] = nil
        environment.merge(extra) { $1 }
        process.environment = environment
        let out = Pipe()
        let stderrLog = dataDirectory.deletingLastPathComponent().appendingPathComponent("serve-\(UUID()).log")
        FileManager.default.createFile(atPath: stderrLog.path, contents: nil)
        process.standardOutput = out
        process.standardError = try FileHandle(forWritingTo: stderrLog)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let line = await onOwnThread { () -> String? in
            // The server prints one line once it listens; read until it arrives or stdout closes.
            var buffer = Data()
            while true {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { return nil }
                buffer += chunk
                if let text = String(data: buffer, encoding: .utf8), let newline = text.firstIndex(of: "\n") {
                    return String(text[..<newline])
                }
            }
        }
        guard let line, let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
            process.terminate()
            let log = (try? String(contentsOf: stderrLog, encoding: .utf8)) ?? ""
            throw ServerStartFailed(message: "agentbox serve did not report a port; stdout: \(line ?? "<closed>"); stderr: \(log)")
        }
        return ServerProcess(process: process, port: port, dataDirectory: dataDirectory, token: token, stderrLog: stderrLog, uidBase: uidBase)
    }

    let uidBase: String

    private init(process: ChildProcess, port: Int, dataDirectory: URL, token: String?, stderrLog: URL, uidBase: String) {
        self.uidBase = uidBase
        self.process = process
        self.port = port
        self.dataDirectory = dataDirectory
        self.token = token
        self.stderrLog = stderrLog
    }

    /// Sends `signal` and waits for the process to exit; returns its exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) async -> Int32 {
        process.signal(signal)
        let status = await waitForExit(process)
        exited.store(true, ordering: .relaxed)
        if signal == SIGTERM, status != 0 {
            // A stop that failed explains itself in the test's output (the log goes with the server).
            let lines = log.split(separator: "\n").filter { $0.contains(" agentbox: ") && !$0.contains(" trace ") }
            print("agentbox serve exited \(status) after SIGTERM; its log ends:\n\(lines.suffix(80).joined(separator: "\n"))")
        }
        return status
    }

    var log: String { (try? String(contentsOf: stderrLog, encoding: .utf8)) ?? "" }

    deinit {
        if !exited.load(ordering: .relaxed) { process.signal(SIGKILL) }
        try? FileManager.default.removeItem(at: stderrLog)
    }
}

struct ServerStartFailed: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Real sandboxes need bubblewrap, and per-workspace host uids need root: CI runs as root.
let canSandbox = FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") && getuid() == 0

/// A fresh directory, removed when the closure returns.
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-e2e-\(UUID())")
    try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
    defer {
        unmountEverything(below: base)
        try? FileManager.default.removeItem(at: base)
    }
    return try await body(base.appendingPathComponent("data"))
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


/// Starts the test helper `Tests/Support/<script>` with /usr/bin/python3 (it prints its port on its first line) and
/// runs `body` with that port and the process; the helper is killed when `body` returns (or earlier, by `body`).
func withPythonHelper<T>(_ script: String, _ body: (_ port: Int, _ process: ChildProcess) async throws -> T) async throws -> T {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Support/\(script)")
    let process = ChildProcess()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = [path.path]
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    defer {
        process.signal(SIGKILL)
        process.waitUntilExit()
    }
    let line = await onOwnThread { () -> String in
        var data = Data()
        while !data.contains(0x0A) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            data += chunk
        }
        return String(decoding: data, as: UTF8.self)
    }
    guard let port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw ServerStartFailed(message: "\(script) did not print its port: \(line)")
    }
    return try await body(port, process)
}

/// Prompts session `id` of workspace `key` with `text` and follows its events to the turn's end, answering each
/// permission question `once`; the turn's events.
func promptAndFollow(_ client: AgentBoxClient, _ key: String, _ id: String, _ text: String) async throws -> [SessionEvent] {
    let before = try await client.session(key, id).lastEventSeq
    try await client.startPrompt(key, id, PromptRequest(text: text))
    var events: [SessionEvent] = []
    for try await event in try await client.sessionEvents(key, id, after: before) {
        events.append(event)
        if event.type == "permission_request", let permissionId = event.payload["permissionId"]?.stringValue {
            try await client.replyPermission(key, id, permissionId: permissionId, .once)
        }
        if event.type == "turn_end" { break }
    }
    return events
}
