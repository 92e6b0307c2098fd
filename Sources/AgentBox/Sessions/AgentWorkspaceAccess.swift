import AgentBoxACP
import AgentBoxAPI
import Foundation
import NIOCore

/// The agent's file and terminal requests (`fs/*`, `terminal/*`), served against its workspace, each recorded in
/// the transcript with its answer (long contents cut).
///
/// Terminals are processes of the workspace that this session's agent started; they are killed when the agent
/// exits.
actor AgentWorkspaceAccess {
    private let runtime: WorkspaceRuntime
    private let transcript: TranscriptWriter
    /// The session's working directory, where a terminal starts unless told otherwise.
    private let cwd: String
    /// The terminals the agent opened, with each one's output limit.
    private var terminals: [String: Int?] = [:]

    /// The largest file content or output kept whole in a transcript event.
    static let recordedResultBytes = 64 << 10
    /// The largest text file `fs/read_text_file` reads.
    static let maxReadBytes = 16 << 20

    init(runtime: WorkspaceRuntime, transcript: TranscriptWriter, cwd: String) {
        self.runtime = runtime
        self.transcript = transcript
        self.cwd = cwd
    }

    /// Serves the agent's request `method` for its session `agentSessionId`; errors come back as JSON-RPC errors.
    func handle(_ method: String, _ params: JSONValue?, agentSessionId: String?) async throws -> JSONValue {
        await transcript.append(.agent, method, params ?? .null)
        do {
            guard params?["sessionId"]?.stringValue == agentSessionId else {
                throw JSONRPCError.invalidParams("sessionId is not this session's")
            }
            let result = try await serve(method, params)
            await transcript.append(.server, "response", ["method": .string(method), "result": Self.trimmedForTranscript(result)])
            return result
        } catch {
            let rpc = Self.rpcError(error)
            await transcript.append(
                .server, "response", ["method": .string(method), "error": ["code": .number(Double(rpc.code)), "message": .string(rpc.message)]])
            throw rpc
        }
    }

    /// Kills the terminals the agent left running and forgets them all (the agent exited).
    func killTerminals() async {
        for (terminal, _) in terminals { try? await runtime.signal(terminal, .KILL) }
        terminals.removeAll()
    }

    /// Stops the commands of the agent's terminals that still run (the turn is cancelled): TERM, then KILL after
    /// `grace`. The terminals stay known, so the agent can still read their output, see them exit and release them.
    func stopTerminalCommands(grace: Duration = .seconds(2)) async {
        let running = Array(terminals.keys)
        guard !running.isEmpty else { return }
        for terminal in running { try? await runtime.signal(terminal, .TERM) }
        try? await Task.sleep(for: grace)
        for terminal in running where terminals[terminal] != nil {
            if let process = try? await runtime.process(terminal), process.status == .running { try? await runtime.signal(terminal, .KILL) }
        }
    }

    private static func rpcError(_ error: any Error) -> JSONRPCError {
        switch error {
        case let rpc as JSONRPCError: rpc
        case let error as AgentBoxError where error.code == .notFound: JSONRPCError(code: -32002, message: error.message)
        case let error as AgentBoxError where error.code == .invalidArgument || error.code == .forbidden:
            JSONRPCError(code: -32602, message: error.message)
        case let error as AgentBoxError: JSONRPCError(code: -32603, message: error.message)
        default: JSONRPCError.internalError("\(error)")
        }
    }

    /// A result as the transcript keeps it: long strings (a whole file) are cut.
    static func trimmedForTranscript(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text) where text.utf8.count > recordedResultBytes:
            .string(String(decoding: text.utf8.prefix(recordedResultBytes), as: UTF8.self) + "… [\(text.utf8.count) bytes; cut in the transcript]")
        case .object(let fields): .object(fields.mapValues(trimmedForTranscript))
        case .array(let items): .array(items.map(trimmedForTranscript))
        default: value
        }
    }

    private func serve(_ method: String, _ params: JSONValue?) async throws -> JSONValue {
        switch method {
        case ACP.Method.readTextFile:
            let request = try ACP.decode(ACP.ReadTextFileParams.self, from: params)
            return ["content": .string(try readText(try WorkspacePath(request.path), line: request.line, limit: request.limit))]
        case ACP.Method.writeTextFile:
            let request = try ACP.decode(ACP.WriteTextFileParams.self, from: params)
            let content = ByteBuffer(string: request.content)
            let chunks = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
                continuation.yield(content)
                continuation.finish()
            }
            _ = try await runtime.files().write(try WorkspacePath(request.path), chunks: chunks)
            return .object([:])
        case ACP.Method.createTerminal:
            let request = try ACP.decode(ACP.CreateTerminalParams.self, from: params)
            if let limit = request.outputByteLimit, limit < 0 { throw JSONRPCError.invalidParams("outputByteLimit must not be negative") }
            var environment: [String: String] = [:]
            for variable in request.env ?? [] { environment[variable.name] = variable.value }
            // One stream, as a terminal shows it: stderr joins stdout in the order written.
            let process = try await runtime.spawn(
                SpawnRequest(
                    command: "/bin/sh", args: ["-c", "exec \"$0\" \"$@\" 2>&1", request.command] + (request.args ?? []),
                    cwd: request.cwd ?? cwd, env: environment))
            terminals[process.id] = request.outputByteLimit
            return try ACP.json(ACP.CreateTerminalResult(terminalId: process.id))
        case ACP.Method.terminalOutput:
            let terminal = try terminalID(params)
            let output = try await runtime.output(terminal)
            let process = try await runtime.process(terminal)
            var text = output.stdout
            var truncated = output.truncated
            if let limit = terminals[terminal] ?? nil, text.utf8.count > limit {
                var cut = text.utf8.count - limit
                let bytes = Array(text.utf8)
                while cut < bytes.count, bytes[cut] & 0xC0 == 0x80 { cut += 1 }
                text = String(decoding: bytes[cut...], as: UTF8.self)
                truncated = true
            }
            return try ACP.json(
                ACP.TerminalOutputResult(output: text, truncated: truncated, exitStatus: process.status == .running ? nil : Self.exitStatus(process)))
        case ACP.Method.waitForTerminalExit:
            let terminal = try terminalID(params)
            return try ACP.json(Self.exitStatus(try await runtime.wait(terminal, timeout: nil)))
        case ACP.Method.killTerminal:
            let terminal = try terminalID(params)
            if try await runtime.process(terminal).status == .running { try? await runtime.signal(terminal, .KILL) }
            return .object([:])
        case ACP.Method.releaseTerminal:
            let terminal = try terminalID(params)
            if try await runtime.process(terminal).status == .running { try? await runtime.signal(terminal, .KILL) }
            terminals[terminal] = nil
            return .object([:])
        default:
            throw JSONRPCError.methodNotFound(method)
        }
    }

    private func terminalID(_ params: JSONValue?) throws -> String {
        let request = try ACP.decode(ACP.TerminalParams.self, from: params)
        guard terminals.keys.contains(request.terminalId) else { throw JSONRPCError(code: -32002, message: "no terminal '\(request.terminalId)'") }
        return request.terminalId
    }

    private static func exitStatus(_ process: WorkspaceProcess) -> ACP.TerminalExitStatus {
        process.signal != nil ? ACP.TerminalExitStatus(exitCode: nil, signal: process.signal) : ACP.TerminalExitStatus(exitCode: Int(process.exitCode ?? -1), signal: nil)
    }

    /// A text file of the workspace, from 1-based `line`, at most `limit` lines.
    /// The bytes of workspace file `path` for a prompt's attachment: `invalidArgument` when it is larger than `limit`.
    func attachment(_ path: WorkspacePath, limit: Int) async throws -> [UInt8] {
        let (bytes, size) = try await runtime.files().readHead(path, maxBytes: limit + 1)
        guard size <= limit else { throw AgentBoxError(.invalidArgument, "'\(path)' is \(size) bytes; a prompt attaches files of at most \(limit)") }
        guard bytes.count <= limit else { throw AgentBoxError(.invalidArgument, "'\(path)' grew past \(limit) bytes while it was read") }
        return bytes
    }

    private func readText(_ path: WorkspacePath, line: Int?, limit: Int?) throws -> String {
        let files = try runtime.files()
        let (fd, size) = try files.openForReading(path)
        defer { Glibc.close(fd) }
        guard size <= Self.maxReadBytes else {
            throw AgentBoxError(.invalidArgument, "'\(path)' is \(size) bytes; fs/read_text_file reads at most \(Self.maxReadBytes)")
        }
        var bytes: [UInt8] = []
        while true {
            let chunk = try WorkspaceFiles.readChunk(fd, maximum: 1 << 20)
            if chunk.readableBytes == 0 || bytes.count > Self.maxReadBytes { break }
            bytes += chunk.readableBytesView
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard line != nil || limit != nil else { return text }
        if let line, line < 1 { throw AgentBoxError(.invalidArgument, "line must be 1 or more") }
        if let limit, limit < 0 { throw AgentBoxError(.invalidArgument, "limit must not be negative") }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let start = min(lines.count, (line ?? 1) - 1)
        let end = limit.map { min(lines.count, start + $0) } ?? lines.count
        return lines[start..<end].joined(separator: "\n")
    }
}
