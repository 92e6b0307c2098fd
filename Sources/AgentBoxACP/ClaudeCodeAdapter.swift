import AgentBoxAPI
import Foundation
import Synchronization

/// An ACP agent that drives the real Claude Code CLI through its stream-json protocol, so that AgentBox talks to
/// Claude Code like to any ACP agent. It runs inside the workspace (`agentbox-acp-adapter claude`), beside `claude`.
///
/// - `session/new` starts `claude -p --input-format stream-json --output-format stream-json --verbose
///   --include-partial-messages --permission-prompt-tool stdio --session-id ID`; `session/load` starts it with
///   `--resume ID` (Claude keeps its sessions under `$HOME/.claude`, which is the workspace's persistent home).
///   The session's `mcpServers` become `--mcp-config` (``mcpConfig(_:)``); their tools are `mcp__SERVER__TOOL`.
/// - A prompt is a `user` message; the answer's stream maps onto ACP: text and thinking deltas become
///   `agent_message_chunk` / `agent_thought_chunk`, each `tool_use` a `tool_call` (kind from the tool's name:
///   Read → read, Write/Edit → edit, Bash → execute, Grep/Glob → search, WebFetch/WebSearch → fetch), each
///   `tool_result` a `tool_call_update` (completed or failed), `TodoWrite` a `plan`, and the `result` the stop reason.
///   MCP tools (`mcp__SERVER__TOOL`) are kind `other`, titled `SERVER/TOOL`.
/// - Claude's permission questions (`control_request` `can_use_tool`) become `session/request_permission`; the
///   answer goes back as allow (with the input unchanged) or deny.
/// - `session/cancel` sends Claude an `interrupt`; the turn ends with `cancelled`.
public actor ClaudeCodeAdapter {
    private let connection: JSONRPCConnection
    private let claudePath: String
    private var sessions: [String: ClaudeProcess] = [:]
    private var cancelled: Set<String> = []

    public init(connection: JSONRPCConnection, claudePath: String) {
        self.connection = connection
        self.claudePath = claudePath
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

    /// Stops every Claude process (the adapter's stdin ended).
    public func stopAll() async {
        let all = Array(sessions.values)
        sessions.removeAll()
        await withTaskGroup(of: Void.self) { group in
            for process in all { group.addTask { await process.terminate() } }
        }
    }

    private func handle(_ method: String, _ params: JSONValue?) async throws -> JSONValue {
        switch method {
        case ACP.Method.initialize:
            return [
                "protocolVersion": .number(Double(ACP.protocolVersion)),
                "agentCapabilities": ["loadSession": true, "promptCapabilities": ["image": true, "embeddedContext": true]],
                "agentInfo": ["name": "agentbox-acp-adapter claude", "title": "Claude Code (stream-json, through AgentBox)"],
            ]
        case ACP.Method.newSession, ACP.Method.loadSession:
            let cwd = params?["cwd"]?.stringValue ?? FileManager.default.currentDirectoryPath
            let loading = method == ACP.Method.loadSession
            let id: String
            if loading {
                guard let existing = params?["sessionId"]?.stringValue, UUID(uuidString: existing) != nil else {
                    throw JSONRPCError.invalidParams("sessionId must be a Claude session id")
                }
                id = existing
            } else {
                id = UUID().uuidString.lowercased()
            }
            var arguments = loading ? ["--resume", id] : ["--session-id", id]
            if case .array(let servers)? = params?["mcpServers"], !servers.isEmpty {
                arguments += ["--mcp-config", Self.mcpConfig(try MCPServerSpec.parse(servers)).jsonText]
            }
            if let previous = sessions.removeValue(forKey: id) { await previous.terminate() }
            let process = try await ClaudeProcess(path: claudePath, cwd: cwd, arguments: arguments)
            sessions[id] = process
            let initialized = try await process.control(["subtype": "initialize", "hooks": nil])
            // The models Claude Code lists in its initialize answer (`{value, displayName, description}`), and its
            // permission modes, which `session/set_mode` sets.
            var models: [JSONValue] = []
            if case .array(let listed)? = initialized["models"] {
                for model in listed.prefix(100) {
                    guard let value = model["value"]?.stringValue else { continue }
                    var option: [String: JSONValue] = ["modelId": .string(value), "name": model["displayName"] ?? .string(value)]
                    if let description = model["description"]?.stringValue { option["description"] = .string(description) }
                    models.append(.object(option))
                }
            }
            var answer: [String: JSONValue] = [
                "modes": [
                    "currentModeId": "default",
                    "availableModes": .array(Self.permissionModes.map { ["id": .string($0.0), "name": .string($0.1)] }),
                ]
            ]
            if !models.isEmpty { answer["models"] = ["currentModelId": models[0]["modelId"] ?? "default", "availableModels": .array(models)] }
            if !loading { answer["sessionId"] = .string(id) }
            return .object(answer)
        case ACP.Method.prompt:
            guard let id = params?["sessionId"]?.stringValue, let process = sessions[id] else {
                throw JSONRPCError.invalidParams("unknown session")
            }
            cancelled.remove(id)
            var blocks: [JSONValue] = []
            if case .array(let prompt)? = params?["prompt"] {
                for block in prompt { if let converted = Self.messageBlock(block) { blocks.append(converted) } }
            }
            return try await turn(id, process, blocks)
        case "session/set_model":
            guard let id = params?["sessionId"]?.stringValue, let process = sessions[id], let model = params?["modelId"]?.stringValue else {
                throw JSONRPCError.invalidParams("sessionId and modelId")
            }
            _ = try await process.control(["subtype": "set_model", "model": .string(model)])
            return .object([:])
        case "session/set_mode":
            guard let id = params?["sessionId"]?.stringValue, let process = sessions[id], let mode = params?["modeId"]?.stringValue else {
                throw JSONRPCError.invalidParams("sessionId and modeId")
            }
            _ = try await process.control(["subtype": "set_permission_mode", "mode": .string(mode)])
            return .object([:])
        default:
            throw JSONRPCError.methodNotFound(method)
        }
    }

    /// An ACP prompt block as a block of Claude's user message: text as text, an image as a base64 image, an
    /// embedded file as text that names it, a link to a file as a line naming it (Claude reads it with its tools).
    static func messageBlock(_ block: JSONValue) -> JSONValue? {
        switch block["type"]?.stringValue {
        case "text":
            return ["type": "text", "text": block["text"] ?? ""]
        case "image":
            guard let data = block["data"]?.stringValue, let mimeType = block["mimeType"]?.stringValue else { return nil }
            return ["type": "image", "source": ["type": "base64", "media_type": .string(mimeType), "data": .string(data)]]
        case "resource":
            let resource = block["resource"]
            let uri = resource?["uri"]?.stringValue ?? "a file"
            if let text = resource?["text"]?.stringValue {
                return ["type": "text", "text": .string("The file \(uri), attached:\n\(text)")]
            }
            return ["type": "text", "text": .string("The file \(uri) is attached (binary; read it with your tools).")]
        case "resource_link":
            return ["type": "text", "text": .string("See the file \(block["uri"]?.stringValue ?? "?").")]
        default:
            return nil
        }
    }

    /// Claude Code's permission modes (`--permission-mode`, the `set_permission_mode` control request).
    static let permissionModes = [
        ("default", "Default (asks before edits and commands)"), ("acceptEdits", "Accept edits"), ("plan", "Plan (no changes)"),
        ("bypassPermissions", "Bypass permissions"),
    ]

    private func cancel(_ id: String) async {
        guard let process = sessions[id] else { return }
        cancelled.insert(id)
        _ = try? await process.control(["subtype": "interrupt"])
    }

    /// One turn: the user message in, Claude's stream out as ACP updates, until its `result`.
    private func turn(_ id: String, _ process: ClaudeProcess, _ blocks: [JSONValue]) async throws -> JSONValue {
        try process.send(["type": "user", "message": ["role": "user", "content": .array(blocks)]])
        var streamedText = false
        var toolNames: [String: String] = [:]
        for await message in process.messages {
            process.consumed()
            switch message["type"]?.stringValue {
            case "stream_event":
                let delta = message["event"]?["delta"]
                if let text = delta?["text"]?.stringValue, !text.isEmpty {
                    streamedText = true
                    try await update(id, ["sessionUpdate": "agent_message_chunk", "content": ["type": "text", "text": .string(text)]])
                } else if let thinking = delta?["thinking"]?.stringValue, !thinking.isEmpty {
                    try await update(id, ["sessionUpdate": "agent_thought_chunk", "content": ["type": "text", "text": .string(thinking)]])
                }
            case "assistant":
                guard case .array(let content)? = message["message"]?["content"] else { continue }
                for block in content {
                    switch block["type"]?.stringValue {
                    case "text" where !streamedText:
                        try await update(id, ["sessionUpdate": "agent_message_chunk", "content": ["type": "text", "text": block["text"] ?? ""]])
                    case "tool_use":
                        let name = block["name"]?.stringValue ?? "tool"
                        let callID = block["id"]?.stringValue ?? UUID().uuidString
                        toolNames[callID] = name
                        if name == "TodoWrite", case .array(let todos)? = block["input"]?["todos"] {
                            let entries: [JSONValue] = todos.map {
                                ["content": $0["content"] ?? "", "status": $0["status"] ?? "pending", "priority": "medium"]
                            }
                            try await update(id, ["sessionUpdate": "plan", "entries": .array(entries)])
                        }
                        try await update(
                            id,
                            ["sessionUpdate": "tool_call", "toolCallId": .string(callID), "title": .string(Self.title(name, block["input"])),
                             "kind": .string(Self.kind(of: name)), "status": "pending", "rawInput": block["input"] ?? .object([:])])
                    default: continue
                    }
                }
                streamedText = false
            case "user":
                guard case .array(let content)? = message["message"]?["content"] else { continue }
                for block in content where block["type"] == "tool_result" {
                    let callID = block["tool_use_id"]?.stringValue ?? ""
                    let text: String =
                        if let text = block["content"]?.stringValue { text } else if case .array(let parts)? = block["content"] {
                            parts.compactMap { $0["text"]?.stringValue }.joined(separator: "\n")
                        } else { "" }
                    try await update(
                        id,
                        ["sessionUpdate": "tool_call_update", "toolCallId": .string(callID),
                         "status": block["is_error"] == .bool(true) ? "failed" : "completed",
                         "content": [["type": "content", "content": ["type": "text", "text": .string(text)]]]])
                }
            case "control_request":
                await answerControl(id, process, message, toolNames: toolNames)
            case "result":
                // Claude's own count of the turn's tokens, in ACP's names.
                var answer: [String: JSONValue] = [:]
                if let usage = message["usage"], case .object = usage {
                    var counted: [String: JSONValue] = [:]
                    for (from, to) in [
                        ("input_tokens", "inputTokens"), ("output_tokens", "outputTokens"), ("cache_read_input_tokens", "cachedReadTokens"),
                        ("cache_creation_input_tokens", "cachedWriteTokens"),
                    ] {
                        if case .number(let value)? = usage[from] { counted[to] = .number(value) }
                    }
                    if !counted.isEmpty { answer["usage"] = .object(counted) }
                }
                func ended(_ reason: String) -> JSONValue {
                    answer["stopReason"] = .string(reason)
                    return .object(answer)
                }
                if cancelled.contains(id) { return ended("cancelled") }
                let subtype = message["subtype"]?.stringValue ?? "success"
                if subtype == "success", message["is_error"] != .bool(true) { return ended("end_turn") }
                if subtype == "error_max_turns" { return ended("max_turn_requests") }
                throw JSONRPCError(code: -32603, message: "Claude Code: \(message["result"]?.stringValue ?? subtype)")
            default:
                continue
            }
        }
        if cancelled.contains(id) { return ["stopReason": "cancelled"] }
        throw JSONRPCError(code: -32603, message: "Claude Code exited during the turn: \(process.stderrTail)")
    }

    /// Claude asks whether it may use a tool: the question goes to the client as `session/request_permission`.
    private func answerControl(_ id: String, _ process: ClaudeProcess, _ message: JSONValue, toolNames: [String: String]) async {
        guard let requestID = message["request_id"], let request = message["request"] else { return }
        guard request["subtype"] == "can_use_tool" else {
            try? process.send(["type": "control_response", "response": ["subtype": "error", "request_id": requestID, "error": "not supported"]])
            return
        }
        let name = request["tool_name"]?.stringValue ?? "tool"
        let input = request["input"] ?? .object([:])
        let callID = request["tool_use_id"]?.stringValue ?? UUID().uuidString
        if name == "AskUserQuestion" {
            let decision = await askUser(id, input)
            try? process.send(["type": "control_response", "response": ["subtype": "success", "request_id": requestID, "response": decision]])
            return
        }
        var decision: JSONValue = ["behavior": "deny", "message": "The user rejected this tool call."]
        do {
            let answer = try await connection.request(
                ACP.Method.requestPermission,
                params: [
                    "sessionId": .string(id),
                    "toolCall": ["toolCallId": .string(callID), "title": .string(Self.title(name, input)), "kind": .string(Self.kind(of: name)), "rawInput": input],
                    "options": [
                        ["optionId": "allow", "name": "Allow", "kind": "allow_once"],
                        ["optionId": "allow-always", "name": "Allow always", "kind": "allow_always"],
                        ["optionId": "reject", "name": "Reject", "kind": "reject_once"],
                    ],
                ])
            if answer["outcome"]?["outcome"] == "selected", let option = answer["outcome"]?["optionId"]?.stringValue, option.hasPrefix("allow") {
                decision = ["behavior": "allow", "updatedInput": input]
            } else if answer["outcome"]?["outcome"] == "cancelled" {
                decision = ["behavior": "deny", "message": "The turn was cancelled.", "interrupt": true]
            }
        } catch {}
        try? process.send(["type": "control_response", "response": ["subtype": "success", "request_id": requestID, "response": decision]])
    }

    /// Claude's clarifying questions (its `AskUserQuestion` tool, which comes as a `can_use_tool` request) as one ACP
    /// form elicitation: a field per question (`q1`, `q2`, ...; titled with the question, its option labels as the
    /// choices, an array of them when it is multi-select). The answers go back as the tool's input `answers`, keyed by
    /// question text (several labels joined with ", "), which is how Claude Code reads them; a decline denies it.
    private func askUser(_ id: String, _ input: JSONValue) async -> JSONValue {
        guard case .array(let questions)? = input["questions"], !questions.isEmpty else {
            return ["behavior": "deny", "message": "The question had no questions."]
        }
        var properties: [String: JSONValue] = [:]
        var required: [JSONValue] = []
        for (index, question) in questions.prefix(20).enumerated() {
            var labels: [JSONValue] = []
            if case .array(let options)? = question["options"] { labels = options.compactMap { $0["label"]?.stringValue.map(JSONValue.string) } }
            let title = question["question"] ?? .string("Question \(index + 1)")
            let field: JSONValue =
                question["multiSelect"] == .bool(true)
                ? ["type": "array", "title": title, "items": ["type": "string", "enum": .array(labels)], "minItems": 1]
                : (labels.isEmpty ? ["type": "string", "title": title] : ["type": "string", "title": title, "enum": .array(labels)])
            properties["q\(index + 1)"] = field
            required.append(.string("q\(index + 1)"))
        }
        let message = questions.count == 1 ? (questions[0]["question"]?.stringValue ?? "Claude asks") : "Claude asks \(questions.count) questions"
        do {
            let answer = try await connection.request(
                ACP.Method.elicitation,
                params: [
                    "sessionId": .string(id), "mode": "form", "message": .string(message),
                    "requestedSchema": ["type": "object", "properties": .object(properties), "required": .array(required)],
                ])
            guard answer["action"] == "accept", let content = answer["content"] else {
                return ["behavior": "deny", "message": "The user declined to answer."]
            }
            var answers: [String: JSONValue] = [:]
            for (index, question) in questions.prefix(20).enumerated() {
                guard let text = question["question"]?.stringValue, let value = content["q\(index + 1)"] else { continue }
                if case .array(let picked) = value {
                    answers[text] = .string(picked.compactMap(\.stringValue).joined(separator: ", "))
                } else if let picked = value.stringValue {
                    answers[text] = .string(picked)
                }
            }
            var updated: [String: JSONValue] = [:]
            if case .object(let fields) = input { updated = fields }
            updated["answers"] = .object(answers)
            return ["behavior": "allow", "updatedInput": .object(updated)]
        } catch {
            return ["behavior": "deny", "message": .string("The question could not be asked: \(error)")]
        }
    }

    private func update(_ id: String, _ update: [String: JSONValue]) async throws {
        try await connection.notify(ACP.Method.update, params: ["sessionId": .string(id), "update": .object(update)])
    }

    /// The session's MCP servers as Claude Code's `--mcp-config` JSON: `{"mcpServers": {NAME: {"type": "stdio",
    /// "command", "args", "env": {..}} | {"type": "http" | "sse", "url", "headers": {..}}}}`. Claude shows the model
    /// their tools as `mcp__NAME__TOOL`.
    public static func mcpConfig(_ servers: [MCPServerSpec]) -> JSONValue {
        var entries: [String: JSONValue] = [:]
        for server in servers {
            switch server.transport {
            case .stdio(let command, let args, let env):
                entries[server.name] = ["type": "stdio", "command": .string(command), "args": .array(args.map { .string($0) }), "env": env.object]
            case .http(let url, let headers):
                entries[server.name] = ["type": "http", "url": .string(url), "headers": headers.object]
            case .sse(let url, let headers):
                entries[server.name] = ["type": "sse", "url": .string(url), "headers": headers.object]
            }
        }
        return ["mcpServers": .object(entries)]
    }

    static func kind(of tool: String) -> String {
        switch tool {
        case "Read", "NotebookRead": "read"
        case "Write", "Edit", "MultiEdit", "NotebookEdit": "edit"
        case "Bash", "BashOutput", "KillShell", "KillBash": "execute"
        case "Grep", "Glob", "LS", "ToolSearch": "search"
        case "WebFetch", "WebSearch": "fetch"
        case "Task", "TodoWrite", "ExitPlanMode": "think"
        default: "other"
        }
    }

    static func title(_ tool: String, _ input: JSONValue?) -> String {
        if tool.hasPrefix("mcp__") {
            let rest = tool.dropFirst(5)
            guard let split = rest.range(of: "__") else { return String(rest) }
            return "\(rest[..<split.lowerBound])/\(rest[split.upperBound...])"
        }
        if let command = input?["command"]?.stringValue { return "\(tool): \(command)" }
        if let path = input?["file_path"]?.stringValue ?? input?["path"]?.stringValue { return "\(tool) \(path)" }
        if let pattern = input?["pattern"]?.stringValue { return "\(tool) \(pattern)" }
        if let url = input?["url"]?.stringValue { return "\(tool) \(url)" }
        return tool
    }
}

/// A running `claude` in stream-json mode: messages in through its stdin, out as a stream (control responses are
/// routed to their requests).
final class ClaudeProcess: Sendable {
    private let program: ChildProgram
    private let input: FileHandle
    let messages: AsyncStream<JSONValue>
    private let pending = Mutex<(next: Int, waiting: [String: CheckedContinuation<JSONValue, any Error>])>((1, [:]))
    private let stderr = Mutex<[UInt8]>([])
    /// Bounds the messages read ahead of the turn that consumes them: the reader waits (and Claude with it, on a
    /// full pipe) when 1,024 are outstanding.
    private let room = DispatchSemaphore(value: 1024)

    /// Marks one message of ``messages`` as handled.
    func consumed() { room.signal() }

    init(path: String, cwd: String, arguments: [String]) async throws {
        let program = try await ChildProgram.start(
            path: path,
            arguments: [
                "-p", "--verbose", "--input-format", "stream-json", "--output-format", "stream-json", "--include-partial-messages",
                "--permission-prompt-tool", "stdio",
            ] + arguments,
            environment: ["DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"], workingDirectory: cwd, capturesErrors: true)
        self.program = program
        input = program.input
        let (stream, continuation) = AsyncStream<JSONValue>.makeStream(bufferingPolicy: .unbounded)
        messages = stream
        let reader = program.output
        Thread.detachNewThread { [self] in
            var splitter = LineSplitter(maximum: 64 << 20)
            while true {
                let chunk = reader.availableData
                guard !chunk.isEmpty, let lines = try? splitter.append(chunk) else { break }
                for line in lines {
                    guard let message = try? JSONValue.parse(line) else { continue }
                    if message["type"] == "control_response", let id = message["response"]?["request_id"]?.stringValue {
                        let waiter = self.pending.withLock { $0.waiting.removeValue(forKey: id) }
                        if message["response"]?["subtype"] == "error" {
                            waiter?.resume(throwing: JSONRPCError(code: -32603, message: message["response"]?["error"]?.stringValue ?? "error"))
                        } else {
                            waiter?.resume(returning: message["response"]?["response"] ?? .null)
                        }
                        continue
                    }
                    self.room.wait()
                    continuation.yield(message)
                }
            }
            continuation.finish()
            // Say why Claude ended: its exit status and the end of its stderr.
            Task {
                let how = await self.program.exit()?.summary ?? "status unknown"
                try? await Task.sleep(for: .milliseconds(50))
                let reason = JSONRPCError(code: -32603, message: "Claude Code exited (\(how)): \(self.stderrTail.suffix(1500))")
                let waiting = self.pending.withLock { state in
                    defer { state.waiting.removeAll() }
                    return Array(state.waiting.values)
                }
                for waiter in waiting { waiter.resume(throwing: reason) }
            }
        }
        let errors = program.errors!
        Thread.detachNewThread { [self] in
            while true {
                let chunk = errors.availableData
                if chunk.isEmpty { break }
                self.stderr.withLock { tail in
                    tail.append(contentsOf: chunk)
                    if tail.count > 4096 { tail.removeFirst(tail.count - 4096) }
                }
            }
        }
    }

    var stderrTail: String { stderr.withLock { String(decoding: $0, as: UTF8.self) } }

    func send(_ message: JSONValue) throws {
        var bytes = message.jsonBytes
        bytes.append(0x0A)
        try input.write(contentsOf: bytes)
    }

    /// Sends a control request and waits for its response.
    func control(_ request: JSONValue) async throws -> JSONValue {
        let id = pending.withLock { state -> String in
            defer { state.next += 1 }
            return "agentbox-\(state.next)"
        }
        return try await withCheckedThrowingContinuation { continuation in
            pending.withLock { $0.waiting[id] = continuation }
            do {
                try send(["type": "control_request", "request_id": .string(id), "request": request])
            } catch {
                pending.withLock { $0.waiting.removeValue(forKey: id) }?.resume(throwing: error)
            }
        }
    }

    /// Ends Claude: its stdin closes, which lets it write its session out and exit; SIGTERM after `grace`.
    func terminate(grace: Duration = .seconds(3)) async {
        try? input.close()
        if await !program.exit(within: grace) { program.signal(SIGTERM) }
    }
}
