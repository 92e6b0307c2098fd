@testable import AgentBoxMCP
import AgentBoxAPI
import Foundation
import Synchronization

/// Workspace operations over an in-memory file table, recording each call: the tools' logic without a server.
final class FakeWorkspace: WorkspaceOperations {
    struct Refused: Error {}

    let files = Mutex<[String: Data]>([:])
    /// "operation key" per call, in order.
    let calls = Mutex<[String]>([])
    /// While false, exec waits before answering (to hold a request under way).
    let execGateOpen: Mutex<Bool>
    let workspaces: Set<String>

    init(workspaces: Set<String> = ["demo", "other"], execGateOpen: Bool = true) {
        self.workspaces = workspaces
        self.execGateOpen = Mutex(execGateOpen)
    }

    var execCount: Int { calls.withLock { $0.filter { $0.hasPrefix("exec ") }.count } }

    private func record(_ operation: String, _ key: WorkspaceKey) throws {
        calls.withLock { $0.append("\(operation) \(key)") }
        guard workspaces.contains(key.rawValue) else { throw MCPToolError("no workspace '\(key)'") }
    }

    func exec(_ workspace: WorkspaceKey, _ request: ExecRequest) async throws -> ExecResult {
        try record("exec", workspace)
        while !execGateOpen.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
        let output = request.command.hasPrefix("echo ") ? String(request.command.dropFirst(5)) + "\n" : ""
        return ExecResult(exitCode: 0, stdout: output, stderr: "", timedOut: false, truncated: false, durationMs: 1, processId: "proc_1")
    }

    func readFile(_ workspace: WorkspaceKey, path: String, maxBytes: Int) async throws -> FileHead {
        try record("readFile", workspace)
        guard let data = files.withLock({ $0[path] }) else { throw MCPToolError("no such file '\(path)'") }
        return FileHead(bytes: data.prefix(maxBytes), size: Int64(data.count))
    }

    func writeFile(_ workspace: WorkspaceKey, path: String, data: Data) async throws -> FileWriteResult {
        try record("writeFile", workspace)
        files.withLock { $0[path] = data }
        return FileWriteResult(path: path, bytesWritten: Int64(data.count))
    }

    func listFiles(_ workspace: WorkspaceKey, path: String, recursive: Bool) async throws -> FileEntryList {
        try record("listFiles", workspace)
        let names = files.withLock { Array($0.keys) }.sorted()
        return FileEntryList(items: names.map { FileEntry(name: $0, path: $0, type: .file, size: 1, modifiedAt: Date(timeIntervalSince1970: 0)) })
    }

    func spawn(_ workspace: WorkspaceKey, _ request: SpawnRequest) async throws -> WorkspaceProcess {
        try record("spawn", workspace)
        return process(request.command, request.args ?? [])
    }

    func processes(_ workspace: WorkspaceKey) async throws -> ProcessList {
        try record("processes", workspace)
        return ProcessList(items: [process("sleep", ["60"])])
    }

    func process(_ workspace: WorkspaceKey, id: String) async throws -> WorkspaceProcess {
        try record("process", workspace)
        return process("sleep", ["60"])
    }

    func output(_ workspace: WorkspaceKey, id: String) async throws -> ProcessOutput {
        try record("output", workspace)
        return ProcessOutput(stdout: String(repeating: "a", count: 100_000) + "é", stderr: "", truncated: false)
    }

    func signal(_ workspace: WorkspaceKey, id: String, _ signal: ProcessSignal) async throws {
        try record("signal \(signal.rawValue)", workspace)
    }

    func message(for error: any Error) -> String {
        (error as? MCPToolError)?.message ?? "internal error"
    }

    private func process(_ command: String, _ args: [String]) -> WorkspaceProcess {
        WorkspaceProcess(id: "proc_abc", pid: 7, command: command, args: args, cwd: "/workspace", status: .running, startedAt: Date(timeIntervalSince1970: 0))
    }
}
