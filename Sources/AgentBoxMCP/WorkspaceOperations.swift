import AgentBoxAPI
import Foundation

/// What the MCP tools do to a workspace, in the HTTP API's own wire types. Two implementations: the library's
/// `WorkspaceManager` (the server's `POST /v1/mcp`) and the Swift client (`agentbox mcp`, which reaches a server
/// over HTTP). Neither is a second implementation of exec or files: each forwards to the one that exists.
public protocol WorkspaceOperations: Sendable {
    /// Runs a shell command line to completion.
    func exec(_ workspace: WorkspaceKey, _ request: ExecRequest) async throws -> ExecResult
    /// The first `maxBytes` bytes of a regular file, and its whole size.
    func readFile(_ workspace: WorkspaceKey, path: String, maxBytes: Int) async throws -> FileHead
    /// Writes a file whole (parents created, replaced atomically).
    func writeFile(_ workspace: WorkspaceKey, path: String, data: Data) async throws -> FileWriteResult
    /// A directory's entries; with `recursive`, its subdirectories' too.
    func listFiles(_ workspace: WorkspaceKey, path: String, recursive: Bool) async throws -> FileEntryList
    /// Starts a program without a shell and leaves it running.
    func spawn(_ workspace: WorkspaceKey, _ request: SpawnRequest) async throws -> WorkspaceProcess
    /// Running and recently exited processes.
    func processes(_ workspace: WorkspaceKey) async throws -> ProcessList
    /// One process.
    func process(_ workspace: WorkspaceKey, id: String) async throws -> WorkspaceProcess
    /// What a process wrote, as kept in its buffers.
    func output(_ workspace: WorkspaceKey, id: String) async throws -> ProcessOutput
    /// Sends a signal to a running process (KILL: its whole tree).
    func signal(_ workspace: WorkspaceKey, id: String, _ signal: ProcessSignal) async throws
    /// The words a caller may read for `error`, thrown by one of the calls above.
    func message(for error: any Error) -> String
}

/// The beginning of a file: at most the bytes asked for, and the file's whole size.
public struct FileHead: Sendable, Equatable {
    public var bytes: Data
    public var size: Int64

    public init(bytes: Data, size: Int64) {
        self.bytes = bytes
        self.size = size
    }
}
