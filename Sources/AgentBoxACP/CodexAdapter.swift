import AgentBoxAPI
import Foundation
import Synchronization

/// An ACP agent that drives the real Codex CLI through `codex app-server` (JSON-RPC 2.0 over stdio), so that
/// AgentBox talks to Codex like to any ACP agent. It runs inside the workspace (`agentbox-acp-adapter codex`).
///
/// - One app server serves every session of the adapter. `session/new` is `thread/start` (sandbox
///   `danger-full-access`: the workspace is the sandbox; approval policy `untrusted`, so Codex asks before commands
///   it does not know to be safe), `session/load` is `thread/resume`, `session/prompt` is `turn/start` and ends
///   with `turn/completed`, `session/cancel` is `turn/interrupt`.
/// - Items map onto ACP: agent message and reasoning deltas → `agent_message_chunk` / `agent_thought_chunk`;
///   `commandExecution` → `tool_call` (execute) then `tool_call_update` with its output; `fileChange` →
///   `tool_call` (edit); `turn/plan/updated` → `plan`.
/// - Approval requests (`item/commandExecution/requestApproval`, `item/fileChange/requestApproval`, and the older
///   `execCommandApproval` / `applyPatchApproval`) become `session/request_permission`.
/// - With `OPENAI_BASE_URL` in the environment, Codex is pointed at it as a Responses-API provider (the variable
///   alone does not move Codex), with `OPENAI_API_KEY` as its key.
public actor CodexAdapter {
    private let connection: JSONRPCConnection
    private let codexPath: String
    private var server: ChildJSONRPC?
    private var turns: [String: (turnId: String?, done: CheckedContinuation<JSONValue, any Error>?)] = [:]
    private var finished: [String: JSONValue] = [:]
    private var cancelled: Set<String> = []
    /// Models chosen with `session/set_model`, by thread.
    private var models: [String: String] = [:]
    /// Tool calls reported started and not yet completed, by thread, with the output seen so far (bounded).
    private var openCalls: [String: [String: String]] = [:]

    public init(connection: JSONRPCConnection, codexPath: String) {
        self.connection = connection
        self.codexPath = codexPath
    }

    public func start() async {
        await connection.setHandlers(
            request: { [weak self] method, params in
                guard let self else { throw JSONRPCError.connectionClosed }
                return try await self.handle(method, params)
            },
            notification: { [weak self] method, params in
                guard method == ACP.Method.cancel, let id = params?["sessionId"]?.stringValue else { return }
                await self?.cancel(id)
            })
    }

    public func stopAll() {
        server?.terminate()
        server = nil
    }

    /// The app server, started on first use.
    private func appServer() async throws -> ChildJSONRPC {
        if let server { return server }
        var arguments = ["app-server"]
        let environment = ProcessInfo.processInfo.environment
        if let base = environment["OPENAI_BASE_URL"], !base.isEmpty {
            arguments += [
                "-c", "model_provider=\"agentbox\"",
                "-c", "model_providers.agentbox={name=\"AgentBox\",base_url=\"\(base)\",env_key=\"OPENAI_API_KEY\",wire_api=\"responses\"}",
            ]
        }
        let server = try ChildJSONRPC(path: codexPath, arguments: arguments, environment: ["RUST_LOG": "error"])
        await server.connection.setHandlers(
            request: { [weak self] method, params in
                guard let self else { throw JSONRPCError.connectionClosed }
                return try await self.serverRequest(method, params)
            },
            notification: { [weak self] method, params in await self?.serverNotification(method, params) })
        _ = try await server.connection.request(
            "initialize", params: ["clientInfo": ["name": "agentbox", "title": "AgentBox", "version": "0.1.0"]])
        try await server.connection.notify("initialized", params: nil)
        self.server = server
        return server
    }

    private func handle(_ method: String, _ params: JSONValue?) async throws -> JSONValue {
        switch method {
        case ACP.Method.initialize:
            return [
                "protocolVersion": .number(Double(ACP.protocolVersion)),
                "agentCapabilities": ["loadSession": true, "promptCapabilities": ["image": false, "embeddedContext": false]],
                "agentInfo": ["name": "agentbox-acp-adapter codex", "title": "Codex (app-server, through AgentBox)"],
            ]
        case ACP.Method.newSession:
            let server = try await appServer()
            var start: [String: JSONValue] = ["approvalPolicy": "untrusted", "sandbox": "danger-full-access"]
            if let cwd = params?["cwd"]?.stringValue { start["cwd"] = .string(cwd) }
            let started = try await server.connection.request("thread/start", params: .object(start))
            guard let id = started["thread"]?["id"]?.stringValue else { throw JSONRPCError.internalError("thread/start gave no thread id") }
            return ["sessionId": .string(id)]
        case ACP.Method.loadSession:
            guard let id = params?["sessionId"]?.stringValue else { throw JSONRPCError.invalidParams("sessionId") }
            let server = try await appServer()
            var resume: [String: JSONValue] = ["threadId": .string(id), "approvalPolicy": "untrusted", "sandbox": "danger-full-access", "excludeTurns": true]
            if let cwd = params?["cwd"]?.stringValue { resume["cwd"] = .string(cwd) }
            _ = try await server.connection.request("thread/resume", params: .object(resume))
            return .object([:])
        case "session/set_model":
            guard let id = params?["sessionId"]?.stringValue, let model = params?["modelId"]?.stringValue else {
                throw JSONRPCError.invalidParams("sessionId and modelId")
            }
            models[id] = model
            return .object([:])
        case ACP.Method.prompt:
            guard let id = params?["sessionId"]?.stringValue else { throw JSONRPCError.invalidParams("sessionId") }
            let server = try await appServer()
            var input: [JSONValue] = []
            if case .array(let prompt)? = params?["prompt"] {
                for block in prompt where block["type"] == "text" { input.append(["type": "text", "text": block["text"] ?? ""]) }
            }
            cancelled.remove(id)
            finished[id] = nil
            turns[id] = (nil, nil)
            var start: [String: JSONValue] = ["threadId": .string(id), "input": .array(input)]
            if let model = models[id] { start["model"] = .string(model) }
            let started = try await server.connection.request("turn/start", params: .object(start))
            let turnId = started["turn"]?["id"]?.stringValue
            let turn = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONValue, any Error>) in
                if let done = finished.removeValue(forKey: id) {
                    continuation.resume(returning: done)
                } else {
                    turns[id] = (turnId, continuation)
                }
            }
            turns[id] = nil
            switch turn["status"]?.stringValue {
            case "completed": return ["stopReason": cancelled.contains(id) ? "cancelled" : "end_turn"]
            case "interrupted": return ["stopReason": "cancelled"]
            default:
                if cancelled.contains(id) { return ["stopReason": "cancelled"] }
                throw JSONRPCError(code: -32603, message: "Codex: \(turn["error"]?["message"]?.stringValue ?? "the turn failed")")
            }
        default:
            throw JSONRPCError.methodNotFound(method)
        }
    }

    private func cancel(_ id: String) async {
        cancelled.insert(id)
        guard let server, let turnId = turns[id]?.turnId else { return }
        _ = try? await server.connection.request("turn/interrupt", params: ["threadId": .string(id), "turnId": .string(turnId)])
    }

    private func update(_ id: String, _ update: [String: JSONValue]) async {
        try? await connection.notify(ACP.Method.update, params: ["sessionId": .string(id), "update": .object(update)])
    }

    private func serverNotification(_ method: String, _ params: JSONValue?) async {
        if ProcessInfo.processInfo.environment["AGENTBOX_ADAPTER_DEBUG"] != nil {
            FileHandle.standardError.write(Data("codex: \(method) \(params?.jsonText.prefix(400) ?? "")\n".utf8))
        }
        guard let params, let id = params["threadId"]?.stringValue else {
            if method == "error" { return }
            return
        }
        switch method {
        case "item/agentMessage/delta":
            if let delta = params["delta"]?.stringValue { await update(id, ["sessionUpdate": "agent_message_chunk", "content": ["type": "text", "text": .string(delta)]]) }
        case "item/reasoning/textDelta", "item/reasoning/summaryTextDelta":
            if let delta = params["delta"]?.stringValue { await update(id, ["sessionUpdate": "agent_thought_chunk", "content": ["type": "text", "text": .string(delta)]]) }
        case "item/commandExecution/outputDelta":
            if let item = params["itemId"]?.stringValue, let delta = params["delta"]?.stringValue, var output = openCalls[id]?[item] {
                if output.utf8.count < 64 << 10 { output += delta }
                openCalls[id]?[item] = output
            }
        case "turn/plan/updated":
            if case .array(let steps)? = params["plan"] {
                let entries: [JSONValue] = steps.map { step in
                    let status = step["status"]?.stringValue ?? "pending"
                    return ["content": step["step"] ?? "", "status": .string(status == "inProgress" ? "in_progress" : status), "priority": "medium"]
                }
                await update(id, ["sessionUpdate": "plan", "entries": .array(entries)])
            }
        case "item/started", "item/completed":
            guard let item = params["item"], let itemID = item["id"]?.stringValue else { return }
            let started = method == "item/started"
            switch item["type"]?.stringValue {
            case "commandExecution":
                let command = item["command"]?.stringValue ?? "command"
                if started {
                    openCalls[id, default: [:]][itemID] = ""
                    await update(
                        id, ["sessionUpdate": "tool_call", "toolCallId": .string(itemID), "title": .string(command), "kind": "execute", "status": "in_progress",
                             "rawInput": ["command": .string(command)]])
                } else {
                    openCalls[id]?[itemID] = nil
                    let ok = item["status"]?.stringValue == "completed" && (item["exitCode"].map { $0 == .number(0) } ?? true)
                    await update(
                        id, ["sessionUpdate": "tool_call_update", "toolCallId": .string(itemID), "status": ok ? "completed" : "failed",
                             "content": [["type": "content", "content": ["type": "text", "text": item["aggregatedOutput"] ?? ""]]]])
                }
            case "fileChange":
                if started {
                    openCalls[id, default: [:]][itemID] = ""
                    await update(
                        id, ["sessionUpdate": "tool_call", "toolCallId": .string(itemID), "title": "Edit files", "kind": "edit", "status": "in_progress",
                             "rawInput": item["changes"] ?? .array([])])
                } else {
                    openCalls[id]?[itemID] = nil
                    await update(
                        id, ["sessionUpdate": "tool_call_update", "toolCallId": .string(itemID),
                             "status": item["status"]?.stringValue == "completed" ? "completed" : "failed"])
                }
            default:
                break
            }
        case "turn/completed":
            let turn = params["turn"] ?? .object([:])
            // Codex does not always report a command's completion as an item: close what is still open.
            let status: JSONValue = turn["status"] == "completed" ? "completed" : "failed"
            for (call, output) in openCalls.removeValue(forKey: id) ?? [:] {
                await update(
                    id, ["sessionUpdate": "tool_call_update", "toolCallId": .string(call), "status": status,
                         "content": [["type": "content", "content": ["type": "text", "text": .string(output)]]]])
            }
            if let waiting = turns[id]?.done {
                turns[id] = nil
                waiting.resume(returning: turn)
            } else {
                finished[id] = turn
            }
        default:
            break
        }
    }

    /// Codex asks for approval: the question goes to the client as `session/request_permission`.
    private func serverRequest(_ method: String, _ params: JSONValue?) async throws -> JSONValue {
        let id = params?["threadId"]?.stringValue ?? params?["conversationId"]?.stringValue ?? ""
        let legacy = method == "execCommandApproval" || method == "applyPatchApproval"
        let isCommand = method == "item/commandExecution/requestApproval" || method == "execCommandApproval"
        guard isCommand || method == "item/fileChange/requestApproval" || method == "applyPatchApproval" else {
            throw JSONRPCError.methodNotFound(method)
        }
        let command: String =
            if let text = params?["command"]?.stringValue { text } else if case .array(let parts)? = params?["command"] {
                parts.compactMap(\.stringValue).joined(separator: " ")
            } else { "" }
        let toolCall: JSONValue = [
            "toolCallId": params?["itemId"] ?? params?["callId"] ?? .string(UUID().uuidString),
            "title": .string(isCommand ? command : "Edit files"), "kind": .string(isCommand ? "execute" : "edit"),
            "rawInput": params ?? .object([:]),
        ]
        var approved = false
        var always = false
        do {
            let answer = try await connection.request(
                ACP.Method.requestPermission,
                params: [
                    "sessionId": .string(id), "toolCall": toolCall,
                    "options": [
                        ["optionId": "allow", "name": "Allow", "kind": "allow_once"],
                        ["optionId": "allow-always", "name": "Allow for the session", "kind": "allow_always"],
                        ["optionId": "reject", "name": "Reject", "kind": "reject_once"],
                    ],
                ])
            let option = answer["outcome"]?["optionId"]?.stringValue
            approved = answer["outcome"]?["outcome"] == "selected" && option?.hasPrefix("allow") == true
            always = option == "allow-always"
        } catch {}
        if legacy { return ["decision": approved ? (always ? "approved_for_session" : "approved") : "denied"] }
        return ["decision": approved ? (always ? "acceptForSession" : "accept") : "decline"]
    }
}

/// A child process that speaks line-based JSON-RPC on its stdio (Codex's app server).
final class ChildJSONRPC: Sendable {
    private let process: Process
    let connection: JSONRPCConnection

    init(path: String, arguments: [String], environment extra: [String: String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let writer = stdin.fileHandleForWriting
        let connection = JSONRPCConnection { line in try writer.write(contentsOf: line) }
        self.connection = connection
        let reader = stdout.fileHandleForReading
        Thread.detachNewThread {
            StandardIO.feed(descriptor: reader.fileDescriptor, into: connection, maximumLine: 64 << 20)
            Task { await connection.close() }
        }
    }

    func terminate() {
        if process.isRunning { process.terminate() }
    }
}
