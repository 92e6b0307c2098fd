import AgentBoxAPI
import Foundation
import MCP

/// The MCP tools AgentBox serves: exec, files and processes in the workspaces a caller may use.
///
/// Every tool takes the workspace's key as its `workspace` argument (optional when the tools were made with a
/// default, as `agentbox mcp --workspace KEY` makes them), checks it against the caller's ``WorkspaceScope`` before
/// anything else, and calls ``WorkspaceOperations``. A failure (bad arguments, a workspace out of scope or absent, a
/// path outside the workspace) is a tool error with a message (`isError: true`), never a crash and never a protocol
/// error, so that the agent reads it and can correct itself. Results are JSON objects, given both as
/// `structuredContent` and, serialised, as the text content.
///
/// ```swift
/// let tools = AgentBoxTools(operations: manager, scope: .all)
/// let result = try await tools.call("exec", arguments: Data(#"{"workspace":"demo","command":"echo hi"}"#.utf8))
/// ```
public struct AgentBoxTools: Sendable {
    /// How much one call may carry and take.
    public struct Limits: Sendable {
        /// The most bytes of a file `read_file` returns (the beginning, with `truncated`).
        public var maxReadBytes = 1 << 20
        /// The output an `exec` keeps per stream (the first part, with `truncated`).
        public var maxExecOutputBytes = 64 << 10
        /// The output `process_output` returns per stream (the last part, with `truncated`).
        public var maxProcessOutputBytes = 64 << 10
        /// The most entries `list_files` returns.
        public var maxListedEntries = 1000
        /// An `exec`'s timeout when the call gives none, and the longest it may give.
        public var defaultExecTimeoutMs = 120_000
        public var maxExecTimeoutMs = 600_000

        public init() {}
    }

    public let operations: any WorkspaceOperations
    public let scope: WorkspaceScope
    /// The workspace a call without a `workspace` argument acts on; without one, the argument is required.
    public let defaultWorkspace: WorkspaceKey?
    public let limits: Limits

    public init(operations: any WorkspaceOperations, scope: WorkspaceScope, defaultWorkspace: WorkspaceKey? = nil, limits: Limits = Limits()) {
        self.operations = operations
        self.scope = scope
        self.defaultWorkspace = defaultWorkspace
        self.limits = limits
    }

    /// The tools' names.
    public enum Name: String, CaseIterable, Sendable {
        case exec = "exec"
        case readFile = "read_file"
        case writeFile = "write_file"
        case listFiles = "list_files"
        case spawnProcess = "spawn_process"
        case listProcesses = "list_processes"
        case processOutput = "process_output"
        case killProcess = "kill_process"
    }

    // MARK: Calling

    /// Runs the tool `name` with `arguments` (the JSON object the client sent, as text). An unknown name is a
    /// protocol error (`invalidParams`), as the MCP specification has it; everything else answers with a result.
    public func call(_ name: String, arguments: Data) async throws(MCPError) -> CallTool.Result {
        guard let tool = Name(rawValue: name) else { throw MCPError.invalidParams("unknown tool '\(name)'") }
        do {
            switch tool {
            case .exec: return try await exec(try decode(ExecArguments.self, arguments))
            case .readFile: return try await readFile(try decode(PathArguments.self, arguments))
            case .writeFile: return try await writeFile(try decode(WriteArguments.self, arguments))
            case .listFiles: return try await listFiles(try decode(ListArguments.self, arguments))
            case .spawnProcess: return try await spawn(try decode(SpawnArguments.self, arguments))
            case .listProcesses:
                let arguments = try decode(WorkspaceArguments.self, arguments)
                return try result(try await operations.processes(try workspace(arguments)))
            case .processOutput: return try await processOutput(try decode(ProcessArguments.self, arguments))
            case .killProcess: return try await kill(try decode(KillArguments.self, arguments))
            }
        } catch let error as MCPToolError {
            return Self.failure(error.message)
        } catch {
            return Self.failure(operations.message(for: error))
        }
    }

    private func exec(_ arguments: ExecArguments) async throws -> CallTool.Result {
        let key = try workspace(arguments)
        let timeout = arguments.timeoutMs ?? limits.defaultExecTimeoutMs
        guard (1...limits.maxExecTimeoutMs).contains(timeout) else {
            throw MCPToolError("timeoutMs must be 1...\(limits.maxExecTimeoutMs), not \(timeout)")
        }
        let request = ExecRequest(
            command: arguments.command, cwd: arguments.cwd, env: arguments.env, stdin: arguments.stdin, timeoutMs: timeout,
            maxOutputBytes: limits.maxExecOutputBytes)
        return try result(try await operations.exec(key, request))
    }

    private func readFile(_ arguments: PathArguments) async throws -> CallTool.Result {
        let key = try workspace(arguments)
        let head = try await operations.readFile(key, path: arguments.path, maxBytes: limits.maxReadBytes)
        let truncated = head.size > Int64(head.bytes.count)
        // A file cut short keeps only whole characters, so that text stays text (bytes that are not UTF-8 go as base64).
        let bytes = truncated ? TextCut.droppingIncompleteEnd(Array(head.bytes)) : ArraySlice(head.bytes)
        let (text, encoding) = OutputText.encode(bytes)
        return try result(FileContent(path: arguments.path, size: head.size, encoding: encoding ?? .utf8, content: text, truncated: truncated))
    }

    private func writeFile(_ arguments: WriteArguments) async throws -> CallTool.Result {
        let key = try workspace(arguments)
        let data: Data
        switch arguments.encoding ?? .utf8 {
        case .utf8: data = Data(arguments.content.utf8)
        case .base64:
            guard let decoded = Data(base64Encoded: arguments.content, options: .ignoreUnknownCharacters) else {
                throw MCPToolError("content is not valid base64")
            }
            data = decoded
        }
        return try result(try await operations.writeFile(key, path: arguments.path, data: data))
    }

    private func listFiles(_ arguments: ListArguments) async throws -> CallTool.Result {
        let key = try workspace(arguments)
        var list = try await operations.listFiles(key, path: arguments.path ?? "/workspace", recursive: arguments.recursive ?? false)
        if list.items.count > limits.maxListedEntries {
            list.items.removeSubrange(limits.maxListedEntries...)
            list.truncated = true
        }
        return try result(list)
    }

    private func spawn(_ arguments: SpawnArguments) async throws -> CallTool.Result {
        let key = try workspace(arguments)
        guard let program = arguments.command.first, !program.isEmpty else {
            throw MCPToolError("command must name a program: [\"program\", \"argument\", ...]")
        }
        let request = SpawnRequest(command: program, args: Array(arguments.command.dropFirst()), cwd: arguments.cwd, env: arguments.env)
        return try result(try await operations.spawn(key, request))
    }

    private func processOutput(_ arguments: ProcessArguments) async throws -> CallTool.Result {
        let key = try workspace(arguments)
        let id = try Self.processID(arguments.processId)
        let output = try await operations.output(key, id: id)
        let process = try await operations.process(key, id: id)
        let limit = limits.maxProcessOutputBytes
        var truncated = output.truncated
        func tail(_ text: String, _ encoding: OutputEncoding?) -> (String, OutputEncoding?) {
            let bytes = OutputText.bytes(text, encoding: encoding)
            guard bytes.count > limit else { return (text, encoding) }
            truncated = true
            return OutputText.encode(TextCut.suffix(bytes, limit: limit))
        }
        let (stdout, stdoutEncoding) = tail(output.stdout, output.stdoutEncoding)
        let (stderr, stderrEncoding) = tail(output.stderr, output.stderrEncoding)
        return try result(
            ProcessReport(
                process: process, stdout: stdout, stderr: stderr, stdoutEncoding: stdoutEncoding, stderrEncoding: stderrEncoding, truncated: truncated))
    }

    private func kill(_ arguments: KillArguments) async throws -> CallTool.Result {
        let key = try workspace(arguments)
        let id = try Self.processID(arguments.processId)
        let name = (arguments.signal ?? "TERM").uppercased().replacingOccurrences(of: "SIG", with: "")
        guard let signal = ProcessSignal(rawValue: name) else {
            throw MCPToolError("signal must be one of \(ProcessSignal.allCases.map(\.rawValue).joined(separator: ", ")), not '\(arguments.signal ?? "")'")
        }
        try await operations.signal(key, id: id, signal)
        return try result(try await operations.process(key, id: id))
    }

    // MARK: Arguments and results

    /// The workspace a call names (or the default), once the caller's scope allows it. The answer is the same for a
    /// workspace out of scope whether it exists or not.
    func workspace(_ arguments: some WorkspaceArgument) throws -> WorkspaceKey {
        let key: WorkspaceKey
        if let raw = arguments.workspace {
            do { key = try WorkspaceKey(validating: raw) } catch { throw MCPToolError(error.reason) }
        } else if let defaultWorkspace {
            key = defaultWorkspace
        } else {
            throw MCPToolError("missing argument 'workspace' (the key of the workspace to act on)")
        }
        guard scope.allows(key) else { throw MCPToolError("workspace '\(key)' is not one this caller may use") }
        return key
    }

    private func decode<T: Decodable>(_ type: T.Type, _ arguments: Data) throws -> T {
        do {
            return try AgentBoxJSON.makeDecoder().decode(T.self, from: arguments.isEmpty ? Data("{}".utf8) : arguments)
        } catch let error as DecodingError {
            throw MCPToolError("bad arguments: \(error.summary.replacingOccurrences(of: "the body", with: "the arguments"))")
        }
    }

    /// Process ids as the HTTP API checks them (`proc_` and letters, digits or `_`), before one reaches a URL.
    static func processID(_ id: String) throws -> String {
        guard id.hasPrefix("proc_"), id.count <= 64, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw MCPToolError("'\(id)' is not a process id (proc_…)")
        }
        return id
    }

    /// A successful result: `value` as structured content and as its JSON text.
    private func result(_ value: some Encodable) throws -> CallTool.Result {
        let bytes = try AgentBoxJSON.makeEncoder().encode(value)
        let structured = try JSONValue.parse(bytes)
        return CallTool.Result(
            content: [.text(text: String(decoding: bytes, as: UTF8.self), annotations: nil, _meta: nil)],
            structuredContent: MCPValue.from(structured) as Value?)
    }

    static func failure(_ message: String) -> CallTool.Result {
        CallTool.Result(content: [.text(text: message, annotations: nil, _meta: nil)], isError: true)
    }
}

/// Arguments that name a workspace.
protocol WorkspaceArgument {
    var workspace: String? { get }
}

struct WorkspaceArguments: Decodable, WorkspaceArgument {
    var workspace: String?
}

struct ExecArguments: Decodable, WorkspaceArgument {
    var workspace: String?
    var command: String
    var cwd: String?
    var timeoutMs: Int?
    var env: [String: String]?
    var stdin: String?
}

struct PathArguments: Decodable, WorkspaceArgument {
    var workspace: String?
    var path: String
}

struct WriteArguments: Decodable, WorkspaceArgument {
    var workspace: String?
    var path: String
    var content: String
    var encoding: OutputEncoding?
}

struct ListArguments: Decodable, WorkspaceArgument {
    var workspace: String?
    var path: String?
    var recursive: Bool?
}

struct SpawnArguments: Decodable, WorkspaceArgument {
    var workspace: String?
    var command: [String]
    var cwd: String?
    var env: [String: String]?
}

struct ProcessArguments: Decodable, WorkspaceArgument {
    var workspace: String?
    var processId: String
}

struct KillArguments: Decodable, WorkspaceArgument {
    var workspace: String?
    var processId: String
    var signal: String?
}

/// MCP values made directly from AgentBox's JSON values. (Decoding JSON text into `MCP.Value` would turn any string
/// that looks like a `data:` URL into bytes, and encoding them back writes a different string.)
enum MCPValue {
    static func from(_ json: JSONValue) -> Value {
        switch json {
        case .null: return .null
        case .bool(let value): return .bool(value)
        case .number(let value):
            if value.rounded() == value, abs(value) < 1e15 { return .int(Int(value)) }
            return .double(value)
        case .string(let value): return .string(value)
        case .array(let items): return .array(items.map(from))
        case .object(let fields): return .object(fields.mapValues(from))
        }
    }
}
