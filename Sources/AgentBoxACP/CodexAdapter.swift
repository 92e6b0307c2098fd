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
///   `tool_call` (edit); `mcpToolCall` → `tool_call` (other, titled `SERVER/TOOL`) then `tool_call_update` with the
///   result's text; `turn/plan/updated` → `plan`.
/// - The session's `mcpServers` become the thread's `mcp_servers` config (``mcpServersConfig(_:)``).
/// - Approval requests (`item/commandExecution/requestApproval`, `item/fileChange/requestApproval`, the older
///   `execCommandApproval` / `applyPatchApproval`, and the MCP elicitation with which Codex asks before an MCP tool
///   call) become `session/request_permission`.
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
    /// The startup state Codex reported for each MCP server of each thread (`starting`, `ready`, `failed`, ...).
    private var mcpStartup: [String: [String: String]] = [:]
    /// Those waiting until a thread's MCP servers have started, by thread, each with the servers it waits for.
    private var mcpWaits: [String: [UUID: (servers: Set<String>, resume: CheckedContinuation<Void, Never>)]] = [:]
    /// The MCP tool call running in each thread (its item id, server and tool), which an approval question is about.
    private var runningMCPCalls: [String: (item: String, server: String, tool: String)] = [:]

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
        // No status comes any more: whoever waits for MCP servers goes on.
        let waits = mcpWaits.values.flatMap(\.values)
        mcpWaits.removeAll()
        for wait in waits { wait.resume.resume() }
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
        let server = try await ChildJSONRPC(path: codexPath, arguments: arguments, environment: ["RUST_LOG": "error"])
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
            let config = try Self.threadConfig(params)
            let server = try await appServer()
            var start: [String: JSONValue] = ["approvalPolicy": "untrusted", "sandbox": "danger-full-access"]
            if let cwd = params?["cwd"]?.stringValue { start["cwd"] = .string(cwd) }
            if let config { start["config"] = config }
            let started = try await server.connection.request("thread/start", params: .object(start))
            guard let id = started["thread"]?["id"]?.stringValue else { throw JSONRPCError.internalError("thread/start gave no thread id") }
            await awaitMCPStartup(id, config)
            return ["sessionId": .string(id)]
        case ACP.Method.loadSession:
            guard let id = params?["sessionId"]?.stringValue else { throw JSONRPCError.invalidParams("sessionId") }
            let config = try Self.threadConfig(params)
            let server = try await appServer()
            var resume: [String: JSONValue] = ["threadId": .string(id), "approvalPolicy": "untrusted", "sandbox": "danger-full-access", "excludeTurns": true]
            if let cwd = params?["cwd"]?.stringValue { resume["cwd"] = .string(cwd) }
            if let config { resume["config"] = config }
            _ = try await server.connection.request("thread/resume", params: .object(resume))
            await awaitMCPStartup(id, config)
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

    /// The `config` overrides of `thread/start` / `thread/resume` for the ACP params' `mcpServers`, if any.
    private static func threadConfig(_ params: JSONValue?) throws -> JSONValue? {
        guard case .array(let servers)? = params?["mcpServers"], !servers.isEmpty else { return nil }
        return ["mcp_servers": try mcpServersConfig(MCPServerSpec.parse(servers))]
    }

    /// How long Codex gives each MCP server to start.
    public static let startupTimeoutSeconds = 45

    /// Waits (at most 50 s) until Codex has started or given up on each of the thread's MCP servers: it starts them
    /// after `thread/start` answered, and a turn begun before then does not offer their tools to the model. A server
    /// that fails is left out by Codex, as Claude Code does. A thread that reports no server at all within 10 s (one
    /// the app server already had loaded) is not waited for longer; on a loaded machine the first status can take seconds.
    /// Each status Codex reports (`mcpServer/startupStatus/updated`) wakes the waiters it settles.
    private func awaitMCPStartup(_ thread: String, _ config: JSONValue?) async {
        guard case .object(let servers)? = config?["mcp_servers"], !servers.isEmpty else { return }
        let names = Set(servers.keys)
        if mcpStarted(thread, names) { return }
        let wait = UUID()
        let deadlines = Task { [weak self] in
            try await Task.sleep(for: .seconds(10))
            await self?.endMCPWait(thread, wait, onlyIfSilent: true)
            try await Task.sleep(for: .seconds(40))
            await self?.endMCPWait(thread, wait, onlyIfSilent: false)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                mcpWaits[thread, default: [:]][wait] = (names, continuation)
            }
        } onCancel: {
            Task { await self.endMCPWait(thread, wait, onlyIfSilent: false) }
        }
        deadlines.cancel()
    }

    /// Whether Codex has started or given up on every one of `servers` of `thread`.
    private func mcpStarted(_ thread: String, _ servers: Set<String>) -> Bool {
        let states = mcpStartup[thread] ?? [:]
        return servers.allSatisfy { states[$0].map { $0 != "starting" } ?? false }
    }

    /// Ends a wait at its deadline: the first (`onlyIfSilent`) only if the thread has reported no server at all.
    private func endMCPWait(_ thread: String, _ wait: UUID, onlyIfSilent: Bool) {
        if onlyIfSilent, !(mcpStartup[thread] ?? [:]).isEmpty { return }
        mcpWaits[thread]?.removeValue(forKey: wait)?.resume.resume()
        if mcpWaits[thread]?.isEmpty == true { mcpWaits[thread] = nil }
    }

    /// A server's status came: the waits of `thread` it settles end.
    private func mcpStatusChanged(_ thread: String) {
        guard let waits = mcpWaits[thread] else { return }
        for (wait, entry) in waits where mcpStarted(thread, entry.servers) {
            mcpWaits[thread]?.removeValue(forKey: wait)
            entry.resume.resume()
        }
        if mcpWaits[thread]?.isEmpty == true { mcpWaits[thread] = nil }
    }

    /// The session's MCP servers as Codex's `mcp_servers` table: stdio `{command, args, env}`, streamable HTTP
    /// `{url, http_headers}`. Codex has no SSE transport: an `sse` server is refused (invalid params, naming it)
    /// rather than left out, so that a session never starts without a server its creator asked for. Codex offers the
    /// model a server's tools in the Responses tool namespace `mcp__NAME`, each under its own name.
    ///
    /// Each server gets ``startupTimeoutSeconds`` to start (Codex's own default, 10 s, was seen to run out on a loaded
    /// machine: the server was then left out and its tools never offered).
    public static func mcpServersConfig(_ servers: [MCPServerSpec]) throws(JSONRPCError) -> JSONValue {
        var table: [String: JSONValue] = [:]
        for server in servers {
            switch server.transport {
            case .stdio(let command, let args, let env):
                table[server.name] = [
                    "command": .string(command), "args": .array(args.map { .string($0) }), "env": env.object,
                    "startup_timeout_sec": .number(Double(startupTimeoutSeconds)),
                ]
            case .http(let url, let headers):
                table[server.name] = ["url": .string(url), "http_headers": headers.object, "startup_timeout_sec": .number(Double(startupTimeoutSeconds))]
            case .sse:
                throw JSONRPCError.invalidParams("MCP server '\(server.name)' is an sse server, and Codex speaks only stdio and streamable HTTP")
            }
        }
        return .object(table)
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
        if method == "mcpServer/startupStatus/updated", let thread = params?["threadId"]?.stringValue, let name = params?["name"]?.stringValue,
            let status = params?["status"]?.stringValue
        {
            mcpStartup[thread, default: [:]][name] = status
            mcpStatusChanged(thread)
            return
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
            case "mcpToolCall":
                if started {
                    runningMCPCalls[id] = (itemID, item["server"]?.stringValue ?? "mcp", item["tool"]?.stringValue ?? "tool")
                    await update(
                        id, ["sessionUpdate": "tool_call", "toolCallId": .string(itemID), "kind": "other", "status": "in_progress",
                             "title": .string("\(item["server"]?.stringValue ?? "mcp")/\(item["tool"]?.stringValue ?? "tool")"),
                             "rawInput": item["arguments"] ?? .object([:])])
                } else {
                    if runningMCPCalls[id]?.item == itemID { runningMCPCalls[id] = nil }
                    let ok = item["status"] == "completed"
                    let text: String =
                        if case .array(let parts)? = item["result"]?["content"] {
                            parts.compactMap { $0["text"]?.stringValue }.joined(separator: "\n")
                        } else { item["error"]?["message"]?.stringValue ?? "" }
                    await update(
                        id, ["sessionUpdate": "tool_call_update", "toolCallId": .string(itemID), "status": ok ? "completed" : "failed",
                             "content": [["type": "content", "content": ["type": "text", "text": .string(text)]]]])
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
        if method == "mcpServer/elicitation/request" { return await elicitation(id, params) }
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
        let answer = await askPermission(id, toolCall)
        if legacy { return ["decision": answer == .allowAlways ? "approved_for_session" : answer == .allow ? "approved" : "denied"] }
        return ["decision": answer == .allowAlways ? "acceptForSession" : answer == .allow ? "accept" : "decline"]
    }

    /// An MCP server's elicitation, which is how Codex asks before it calls an MCP tool
    /// (`_meta.codex_approval_kind` `mcp_tool_call`): a permission question whose allow accepts and whose reject
    /// declines. No form is filled in: an elicitation that asks for data gets an empty answer.
    private func elicitation(_ id: String, _ params: JSONValue?) async -> JSONValue {
        let server = params?["serverName"]?.stringValue ?? "mcp"
        // The question names no tool call: it is about the one running on that server, if any.
        let call = runningMCPCalls[id].flatMap { $0.server == server ? $0 : nil }
        let toolCall: JSONValue = [
            "toolCallId": .string(call?.item ?? UUID().uuidString),
            "title": .string(call.map { "\($0.server)/\($0.tool)" } ?? "\(server): \(params?["message"]?.stringValue ?? "an MCP request")"),
            "kind": "other", "rawInput": params?["_meta"]?["tool_params"] ?? params ?? .object([:]),
        ]
        switch await askPermission(id, toolCall) {
        case .allow, .allowAlways: return ["action": "accept", "content": .object([:])]
        case .reject: return ["action": "decline"]
        case .cancelled: return ["action": "cancel"]
        }
    }

    private enum PermissionAnswer { case allow, allowAlways, reject, cancelled }

    private func askPermission(_ id: String, _ toolCall: JSONValue) async -> PermissionAnswer {
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
            guard answer["outcome"]?["outcome"] == "selected" else { return .cancelled }
            switch answer["outcome"]?["optionId"]?.stringValue {
            case "allow": return .allow
            case "allow-always": return .allowAlways
            default: return .reject
            }
        } catch {
            return .cancelled
        }
    }
}
