import AgentBox
import AgentBoxAPI
import AgentBoxStore
import Foundation
import Logging
import NIOCore

/// The MCP tools over the library, as `POST /v1/mcp` serves them: each call is the call the HTTP route for the same
/// thing makes (exec, files, processes), with the same checks.
extension WorkspaceManager: WorkspaceOperations {
    public func exec(_ workspace: WorkspaceKey, _ request: ExecRequest) async throws -> ExecResult {
        try await runtime(for: workspace).exec(request)
    }

    public func readFile(_ workspace: WorkspaceKey, path: String, maxBytes: Int) async throws -> FileHead {
        let head = try await runtime(for: workspace).files().readHead(try WorkspacePath(path), maxBytes: maxBytes)
        return FileHead(bytes: Data(head.bytes), size: head.size)
    }

    public func writeFile(_ workspace: WorkspaceKey, path: String, data: Data) async throws -> FileWriteResult {
        let files = try await runtime(for: workspace).files()
        let path = try WorkspacePath(path)
        let chunks = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            continuation.yield(ByteBuffer(bytes: data))
            continuation.finish()
        }
        return FileWriteResult(path: path.description, bytesWritten: try await files.write(path, chunks: chunks))
    }

    public func listFiles(_ workspace: WorkspaceKey, path: String, recursive: Bool) async throws -> FileEntryList {
        // The depths of `GET .../fs/entries`: one level, or 32 with recursive.
        try await runtime(for: workspace).files().list(try WorkspacePath(path), maxDepth: recursive ? 32 : 1)
    }

    public func spawn(_ workspace: WorkspaceKey, _ request: SpawnRequest) async throws -> WorkspaceProcess {
        try await runtime(for: workspace).spawn(request)
    }

    public func processes(_ workspace: WorkspaceKey) async throws -> ProcessList {
        try await runtime(for: workspace).processList()
    }

    public func process(_ workspace: WorkspaceKey, id: String) async throws -> WorkspaceProcess {
        try await runtime(for: workspace).process(id)
    }

    public func output(_ workspace: WorkspaceKey, id: String) async throws -> ProcessOutput {
        try await runtime(for: workspace).output(id)
    }

    public func signal(_ workspace: WorkspaceKey, id: String, _ signal: ProcessSignal) async throws {
        try await runtime(for: workspace).signal(id, signal)
    }

    /// The library's message for what the caller did or may retry; for a failure inside AgentBox only a reference to
    /// the server's log line, which holds the real error (as the HTTP API's problem documents do).
    public func message(for error: any Error) -> String {
        switch error {
        case let error as AgentBoxError where error.code != .internalError:
            return error.message
        case let error as StoreError where error.code == .notFound:
            return error.message
        case let error as StoreError where error.code == .closed:
            return "AgentBox is shutting down"
        case let error as InvalidWorkspaceKey:
            return error.reason
        case let error as MCPToolError:
            return error.message
        default:
            let reference = RandomID.make(prefix: "", length: 12)
            var metadata: Logger.Metadata = ["error": "\(error)", "problem.reference": "\(reference)"]
            if let underlying = (error as? AgentBoxError)?.underlyingError { metadata["error.underlying"] = "\(underlying)" }
            logger.error("MCP tool call failed", metadata: metadata)
            return "internal error (reference \(reference) in the server log)"
        }
    }
}
