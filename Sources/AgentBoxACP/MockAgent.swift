import AgentBoxAPI
import Foundation

/// A deterministic ACP agent that needs no model and no key: `agentbox mock-agent` runs it on stdio.
///
/// Every prompt's text is first echoed back as `agent_message_chunk`s (one per word). Then each keyword found in
/// the prompt's last text block (the user's words; blocks before it are context, such as instructions) adds a step,
/// in this order:
///
/// | keyword | what the agent does |
/// |---|---|
/// | `plan` | sends a `plan` update with three entries |
/// | `tool` | reports a `tool_call` (kind `read`), then `tool_call_update`s to `in_progress` and `completed` |
/// | `permission` | asks `session/request_permission` for an `execute` tool call (allow once / allow always / reject once), then says `permission: approved`, `rejected` or `cancelled` |
/// | `question` | asks the user with `session/elicitation` (a form with one field, `name`), then says `answer: NAME`, `question: declined` or `question: cancelled` |
/// | `write PATH TEXT…` | writes TEXT to PATH with `fs/write_text_file`, then says `wrote PATH` |
/// | `read PATH` | reads PATH with `fs/read_text_file` and says its content |
/// | `run COMMAND…` | runs `/bin/sh -c COMMAND` with `terminal/create`, waits for it, says its output and exit code, releases it |
/// | `flood N` | streams N short `agent_message_chunk`s as fast as it can (for throughput measurements) |
/// | `long` | streams `tick N` every 100 ms for up to 60 s; a `session/cancel` ends the turn with `cancelled` |
/// | `mcp SERVER TOOL {json}` | calls TOOL of the session's stdio MCP server SERVER (from `mcpServers`) with the JSON arguments (the rest of the text; none is `{}`): starts the server, `initialize`, `tools/call`, kills it; reports a `tool_call` (kind `other`, title `SERVER/TOOL`) and a `tool_call_update` with the result's text |
/// | `survey` | asks a form of typed fields (`count` integer 1–10, `urgent` boolean, `color` one of red/green/blue), then says `survey: accept count=3 urgent=true color="green"` (JSON values) |
/// | `getenv NAME` | says `NAME=VALUE` from its own process's environment (`NAME=(unset)` when it has none) |
/// | `whoami` | says its model and mode (`model: mock-fast, mode: default`), as `session/set_model` and `session/set_mode` set them |
/// | `error` | answers the prompt with a JSON-RPC error instead of a stop reason |
///
/// The turn then ends with `end_turn`. Sessions can be loaded again (`session/load`) by id, unless the agent was
/// started with `--no-load`. Each session offers two models (`mock-fast`, `mock-smart`) and two modes (`default`,
/// `plan`) in ACP's `models` and `modes`; `session/set_model` and `session/set_mode` choose among them (another value
/// is an error), and a mode change is announced with `current_mode_update`.
public actor MockAgent {
    private let connection: JSONRPCConnection
    private var sessions: Set<String> = []
    /// The MCP servers each session was given.
    private var mcpServers: [String: [MCPServerSpec]] = [:]
    private var cancelled: Set<String> = []
    /// Each session's model and mode (see ``models`` and ``modes``).
    private var model: [String: String] = [:]
    private var mode: [String: String] = [:]
    private var nextSession = 1
    /// The message chunks said in the current turn (its output "tokens").
    private var saidChunks = 0

    /// The models and modes the mock offers (ACP `models` and `modes` of `session/new`).
    public static let models = [("mock-fast", "Mock fast"), ("mock-smart", "Mock smart")]
    public static let modes = [("default", "Default", "Asks before it acts"), ("plan", "Plan", "Plans only")]
    private let canLoad: Bool

    /// Whether it takes images and embedded files in prompts (ACP `promptCapabilities`).
    private let attachments: Bool

    /// `canLoad: false` makes an agent that does not offer `session/load` (to exercise a client's fallback);
    /// `attachments: false` one that takes text and resource links only.
    public init(connection: JSONRPCConnection, canLoad: Bool = true, attachments: Bool = true) {
        self.connection = connection
        self.canLoad = canLoad
        self.attachments = attachments
    }

    /// Installs the agent's handlers on its connection.
    public func start() async {
        await connection.setHandlers(
            request: { [weak self] method, params in
                guard let self else { throw JSONRPCError.connectionClosed }
                return try await self.handle(method, params)
            },
            notification: { [weak self] method, params in
                guard method == ACP.Method.cancel, let cancel = try? ACP.decode(ACP.CancelParams.self, from: params) else { return }
                await self?.cancel(cancel.sessionId)
            })
    }

    private func cancel(_ session: String) { cancelled.insert(session) }

    private func modelsOffer(_ session: String) -> JSONValue {
        [
            "currentModelId": .string(model[session] ?? Self.models[0].0),
            "availableModels": .array(Self.models.map { ["modelId": .string($0.0), "name": .string($0.1)] }),
        ]
    }

    private func modesOffer(_ session: String) -> JSONValue {
        [
            "currentModeId": .string(mode[session] ?? Self.modes[0].0),
            "availableModes": .array(Self.modes.map { ["id": .string($0.0), "name": .string($0.1), "description": .string($0.2)] }),
        ]
    }

    private func handle(_ method: String, _ params: JSONValue?) async throws -> JSONValue {
        switch method {
        case ACP.Method.initialize:
            let request = try ACP.decode(ACP.InitializeParams.self, from: params)
            return try ACP.json(
                ACP.InitializeResult(
                    protocolVersion: min(request.protocolVersion, ACP.protocolVersion),
                    agentCapabilities: .init(loadSession: canLoad, promptCapabilities: ["image": .bool(attachments), "embeddedContext": .bool(attachments)])))
        case ACP.Method.newSession:
            let request = try ACP.decode(ACP.NewSessionParams.self, from: params)
            let servers = try MCPServerSpec.parse(request.mcpServers)
            let id = "mock-session-\(nextSession)"
            nextSession += 1
            sessions.insert(id)
            mcpServers[id] = servers
            return ["sessionId": .string(id), "models": modelsOffer(id), "modes": modesOffer(id)]
        case ACP.Method.loadSession where canLoad:
            guard case .object(let fields)? = params, case .string(let id)? = fields["sessionId"] else {
                throw JSONRPCError.invalidParams("sessionId")
            }
            if case .array(let servers)? = fields["mcpServers"] { mcpServers[id] = try MCPServerSpec.parse(servers) }
            sessions.insert(id)
            return ["models": modelsOffer(id), "modes": modesOffer(id)]
        case "session/set_model", "session/set_mode":
            let setsMode = method == "session/set_mode"
            guard let id = params?["sessionId"]?.stringValue, sessions.contains(id),
                let value = params?[setsMode ? "modeId" : "modelId"]?.stringValue
            else { throw JSONRPCError.invalidParams("sessionId and \(setsMode ? "modeId" : "modelId")") }
            let offered = setsMode ? Self.modes.map(\.0) : Self.models.map(\.0)
            guard offered.contains(value) else {
                throw JSONRPCError.invalidParams("the mock has no \(setsMode ? "mode" : "model") '\(value)' (it has \(offered.joined(separator: ", ")))")
            }
            if setsMode {
                mode[id] = value
                try await update(id, ["sessionUpdate": "current_mode_update", "currentModeId": .string(value)])
            } else {
                model[id] = value
            }
            return .object([:])
        case ACP.Method.prompt:
            let request = try ACP.decode(ACP.PromptParams.self, from: params)
            guard sessions.contains(request.sessionId) else { throw JSONRPCError.invalidParams("unknown session \(request.sessionId)") }
            cancelled.remove(request.sessionId)
            let texts = request.prompt.compactMap(\.text)
            saidChunks = 0
            let stop = try await turn(request.sessionId, text: texts.joined(separator: " "), commands: texts.last ?? "")
            // What it was given besides text: said after the turn's words.
            if case .array(let blocks)? = params?["prompt"] {
                for block in blocks {
                    switch block["type"]?.stringValue {
                    case "image":
                        let bytes = Data(base64Encoded: block["data"]?.stringValue ?? "")?.count ?? 0
                        try await say(request.sessionId, "\nimage: \(block["mimeType"]?.stringValue ?? "?"), \(bytes) bytes")
                    case "resource":
                        let resource = block["resource"]
                        let size = resource?["text"]?.stringValue?.utf8.count ?? Data(base64Encoded: resource?["blob"]?.stringValue ?? "")?.count ?? 0
                        try await say(request.sessionId, "\nfile: \(resource?["uri"]?.stringValue ?? "?"), \(size) bytes: \(resource?["text"]?.stringValue?.prefix(80) ?? "")")
                    case "resource_link":
                        try await say(request.sessionId, "\nlink: \(block["uri"]?.stringValue ?? "?")")
                    default: continue
                    }
                }
            }
            // Its "tokens": the prompt's words in, the chunks it said out.
            let words = texts.reduce(0) { $0 + $1.split(whereSeparator: \.isWhitespace).count }
            return [
                "stopReason": .string(stop),
                "usage": ["inputTokens": .number(Double(words)), "outputTokens": .number(Double(saidChunks)), "totalTokens": .number(Double(words + saidChunks))],
            ]
        default:
            throw JSONRPCError.methodNotFound(method)
        }
    }

    /// Echoes `text` (every block of the prompt), then acts on the keywords of `commands` (its last block: the
    /// user's own words; blocks before it are context a client put there, such as instructions).
    private func turn(_ session: String, text: String, commands: String) async throws -> String {
        for (index, word) in text.split(whereSeparator: \.isWhitespace).enumerated() {
            try await say(session, index == 0 ? String(word) : " " + word)
        }
        let words = commands.split(whereSeparator: \.isWhitespace).map(String.init)
        let lower = words.map { $0.lowercased() }
        if lower.contains("error") { throw JSONRPCError(code: -32603, message: "the mock agent fails as asked") }
        if lower.contains("whoami") {
            try await say(session, "\nmodel: \(model[session] ?? Self.models[0].0), mode: \(mode[session] ?? Self.modes[0].0)")
        }
        if let at = lower.firstIndex(of: "getenv"), at + 1 < words.count {
            let name = words[at + 1]
            try await say(session, "\n\(name)=\(ProcessInfo.processInfo.environment[name] ?? "(unset)")")
        }
        if lower.contains("plan") {
            let entries: [JSONValue] = ["Read the code", "Make the change", "Run the tests"].map {
                .object(["content": .string($0), "priority": .string("medium"), "status": .string("pending")])
            }
            try await update(session, ["sessionUpdate": .string("plan"), "entries": .array(entries)])
        }
        if lower.contains("tool") {
            try await update(
                session,
                ["sessionUpdate": .string("tool_call"), "toolCallId": .string("call_1"), "title": .string("Reading the mock file"),
                 "kind": .string("read"), "status": .string("pending")])
            try await update(session, ["sessionUpdate": .string("tool_call_update"), "toolCallId": .string("call_1"), "status": .string("in_progress")])
            try await update(
                session,
                ["sessionUpdate": .string("tool_call_update"), "toolCallId": .string("call_1"), "status": .string("completed"),
                 "content": .array([.object(["type": .string("content"), "content": .object(["type": .string("text"), "text": .string("mock contents")])])])])
        }
        if lower.contains("permission") {
            let toolCall: JSONValue = .object([
                "toolCallId": .string("call_2"), "title": .string("Run a command"), "kind": .string("execute"), "status": .string("pending"),
            ])
            try await update(session, ["sessionUpdate": .string("tool_call"), "toolCallId": .string("call_2"), "title": .string("Run a command"), "kind": .string("execute"), "status": .string("pending")])
            let options = [
                ACP.PermissionOption(optionId: "allow-once", name: "Allow once", kind: "allow_once"),
                ACP.PermissionOption(optionId: "allow-always", name: "Allow always", kind: "allow_always"),
                ACP.PermissionOption(optionId: "reject-once", name: "Reject", kind: "reject_once"),
            ]
            let answer = try ACP.decode(
                ACP.RequestPermissionResult.self,
                from: try await connection.request(
                    ACP.Method.requestPermission, params: try ACP.json(ACP.RequestPermissionParams(sessionId: session, toolCall: toolCall, options: options))))
            let verdict =
                switch (answer.outcome.outcome, answer.outcome.optionId) {
                case ("selected", "allow-once"?), ("selected", "allow-always"?): "approved"
                case ("selected", _): "rejected"
                default: "cancelled"
                }
            try await update(
                session, ["sessionUpdate": .string("tool_call_update"), "toolCallId": .string("call_2"), "status": .string(verdict == "approved" ? "completed" : "failed")])
            try await say(session, "\npermission: \(verdict)")
            if verdict == "cancelled" { return "cancelled" }
        }
        if lower.contains("question") {
            // ACP's form elicitation: one field, `name`.
            let schema: JSONValue = [
                "type": "object", "properties": ["name": ["type": "string", "title": "Name", "maxLength": 100]], "required": ["name"],
            ]
            let answer = try await connection.request(
                ACP.Method.elicitation,
                params: ["sessionId": .string(session), "mode": "form", "message": "What should I call you?", "requestedSchema": schema])
            switch answer["action"]?.stringValue {
            case "accept": try await say(session, "\nanswer: \(answer["content"]?["name"]?.stringValue ?? "?")")
            case let action?: try await say(session, "\nquestion: \(action == "decline" ? "declined" : "cancelled")")
            case nil: try await say(session, "\nquestion: no answer")
            }
            if cancelled.contains(session) { return "cancelled" }
        }
        if lower.contains("survey") {
            // A form of typed fields: a whole number, a yes/no and a choice.
            let schema: JSONValue = [
                "type": "object",
                "properties": [
                    "count": ["type": "integer", "title": "How many", "minimum": 1, "maximum": 10],
                    "urgent": ["type": "boolean", "title": "Urgent"],
                    "color": ["type": "string", "title": "Colour", "enum": ["red", "green", "blue"]],
                ],
                "required": ["count", "color"],
            ]
            let answer = try await connection.request(
                ACP.Method.elicitation,
                params: ["sessionId": .string(session), "mode": "form", "message": "A short survey", "requestedSchema": schema])
            let content = answer["content"]
            try await say(
                session,
                "\nsurvey: \(answer["action"]?.stringValue ?? "?") count=\(content?["count"]?.jsonText ?? "-") urgent=\(content?["urgent"]?.jsonText ?? "-") color=\(content?["color"]?.jsonText ?? "-")")
        }
        if let at = lower.firstIndex(of: "write"), at + 1 < words.count {
            let path = words[at + 1]
            let content = words[(at + 2)...].joined(separator: " ")
            _ = try await connection.request(
                ACP.Method.writeTextFile, params: .object(["sessionId": .string(session), "path": .string(path), "content": .string(content)]))
            try await say(session, "\nwrote \(path)")
        }
        if let at = lower.firstIndex(of: "read"), at + 1 < words.count {
            let result = try ACP.decode(
                ACP.ReadTextFileResult.self,
                from: try await connection.request(ACP.Method.readTextFile, params: .object(["sessionId": .string(session), "path": .string(words[at + 1])])))
            try await say(session, "\n\(words[at + 1]): \(result.content)")
        }
        if let at = lower.firstIndex(of: "run"), at + 1 < words.count {
            let command = words[(at + 1)...].joined(separator: " ")
            let created = try ACP.decode(
                ACP.CreateTerminalResult.self,
                from: try await connection.request(
                    ACP.Method.createTerminal,
                    params: .object(["sessionId": .string(session), "command": .string("/bin/sh"), "args": .array([.string("-c"), .string(command)])])))
            let terminal: JSONValue = .object(["sessionId": .string(session), "terminalId": .string(created.terminalId)])
            let exit = try ACP.decode(ACP.TerminalExitStatus.self, from: try await connection.request(ACP.Method.waitForTerminalExit, params: terminal))
            let output = try ACP.decode(ACP.TerminalOutputResult.self, from: try await connection.request(ACP.Method.terminalOutput, params: terminal))
            _ = try await connection.request(ACP.Method.releaseTerminal, params: terminal)
            try await say(session, "\nran `\(command)`: exit \(exit.exitCode.map(String.init) ?? "?"), output: \(output.output)")
        }
        if let at = lower.firstIndex(of: "mcp"), at + 2 < words.count {
            try await callMCPTool(session, server: words[at + 1], tool: words[at + 2], arguments: words[(at + 3)...].joined(separator: " "))
        }
        if let at = lower.firstIndex(of: "flood"), at + 1 < words.count, let count = Int(words[at + 1]), count > 0 {
            for index in 1...min(count, 10_000_000) {
                if index % 1024 == 0, cancelled.contains(session) { return "cancelled" }
                try await say(session, "\(index) ")
            }
        }
        if lower.contains("long") {
            for tick in 1...600 {
                if cancelled.contains(session) { return "cancelled" }
                try await say(session, "\ntick \(tick)")
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        return cancelled.contains(session) ? "cancelled" : "end_turn"
    }

    /// The `mcp` keyword: one tool call to one of the session's stdio MCP servers, reported like the agent's own.
    private func callMCPTool(_ session: String, server name: String, tool: String, arguments text: String) async throws {
        guard let server = mcpServers[session]?.first(where: { $0.name == name }) else {
            throw JSONRPCError.invalidParams("the session has no MCP server '\(name)'")
        }
        let arguments = text.isEmpty ? .object([:]) : try JSONValue.parse(text)
        let callID = "mcp_\(name)_\(tool)"
        try await update(
            session,
            ["sessionUpdate": "tool_call", "toolCallId": .string(callID), "title": .string("\(name)/\(tool)"), "kind": "other", "status": "in_progress",
             "rawInput": arguments])
        let status: String, output: String
        do {
            let result = try await MCPStdioClient.callTool(server, tool: tool, arguments: arguments)
            (status, output) = (result.isError ? "failed" : "completed", result.text)
        } catch {
            (status, output) = ("failed", "\(error)")
        }
        try await update(
            session,
            ["sessionUpdate": "tool_call_update", "toolCallId": .string(callID), "status": .string(status),
             "content": [["type": "content", "content": ["type": "text", "text": .string(output)]]]])
    }

    private func say(_ session: String, _ text: String) async throws {
        saidChunks += 1
        try await update(session, ["sessionUpdate": .string("agent_message_chunk"), "content": .object(["type": .string("text"), "text": .string(text)])])
    }

    private func update(_ session: String, _ update: [String: JSONValue]) async throws {
        try await connection.notify(ACP.Method.update, params: .object(["sessionId": .string(session), "update": .object(update)]))
    }
}
