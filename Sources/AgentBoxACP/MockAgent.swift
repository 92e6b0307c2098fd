import AgentBoxAPI
import Foundation

/// A deterministic ACP agent that needs no model and no key: `agentbox mock-agent` runs it on stdio.
///
/// Every prompt's text is first echoed back as `agent_message_chunk`s (one per word). Then each keyword found in
/// the text (in this order) adds a step:
///
/// | keyword | what the agent does |
/// |---|---|
/// | `plan` | sends a `plan` update with three entries |
/// | `tool` | reports a `tool_call` (kind `read`), then `tool_call_update`s to `in_progress` and `completed` |
/// | `permission` | asks `session/request_permission` for an `execute` tool call (allow once / allow always / reject once), then says `permission: approved`, `rejected` or `cancelled` |
/// | `write PATH TEXT…` | writes TEXT to PATH with `fs/write_text_file`, then says `wrote PATH` |
/// | `read PATH` | reads PATH with `fs/read_text_file` and says its content |
/// | `run COMMAND…` | runs `/bin/sh -c COMMAND` with `terminal/create`, waits for it, says its output and exit code, releases it |
/// | `flood N` | streams N short `agent_message_chunk`s as fast as it can (for throughput measurements) |
/// | `long` | streams `tick N` every 100 ms for up to 60 s; a `session/cancel` ends the turn with `cancelled` |
/// | `error` | answers the prompt with a JSON-RPC error instead of a stop reason |
///
/// The turn then ends with `end_turn`. Sessions can be loaded again (`session/load`) by id, unless the agent was
/// started with `--no-load`.
public actor MockAgent {
    private let connection: JSONRPCConnection
    private var sessions: Set<String> = []
    private var cancelled: Set<String> = []
    private var nextSession = 1
    private let canLoad: Bool

    /// `canLoad: false` makes an agent that does not offer `session/load` (to exercise a client's fallback).
    public init(connection: JSONRPCConnection, canLoad: Bool = true) {
        self.connection = connection
        self.canLoad = canLoad
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

    private func handle(_ method: String, _ params: JSONValue?) async throws -> JSONValue {
        switch method {
        case ACP.Method.initialize:
            let request = try ACP.decode(ACP.InitializeParams.self, from: params)
            return try ACP.json(
                ACP.InitializeResult(protocolVersion: min(request.protocolVersion, ACP.protocolVersion), agentCapabilities: .init(loadSession: canLoad)))
        case ACP.Method.newSession:
            _ = try ACP.decode(ACP.NewSessionParams.self, from: params)
            let id = "mock-session-\(nextSession)"
            nextSession += 1
            sessions.insert(id)
            return try ACP.json(ACP.NewSessionResult(sessionId: id))
        case ACP.Method.loadSession where canLoad:
            guard case .object(let fields)? = params, case .string(let id)? = fields["sessionId"] else {
                throw JSONRPCError.invalidParams("sessionId")
            }
            sessions.insert(id)
            return .null
        case ACP.Method.prompt:
            let request = try ACP.decode(ACP.PromptParams.self, from: params)
            guard sessions.contains(request.sessionId) else { throw JSONRPCError.invalidParams("unknown session \(request.sessionId)") }
            cancelled.remove(request.sessionId)
            let stop = try await turn(request.sessionId, text: request.prompt.compactMap(\.text).joined(separator: " "))
            return try ACP.json(ACP.PromptResult(stopReason: stop))
        default:
            throw JSONRPCError.methodNotFound(method)
        }
    }

    private func turn(_ session: String, text: String) async throws -> String {
        let words = text.split(whereSeparator: \.isWhitespace).map(String.init)
        for (index, word) in words.enumerated() {
            try await say(session, index == 0 ? word : " " + word)
        }
        let lower = words.map { $0.lowercased() }
        if lower.contains("error") { throw JSONRPCError(code: -32603, message: "the mock agent fails as asked") }
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

    private func say(_ session: String, _ text: String) async throws {
        try await update(session, ["sessionUpdate": .string("agent_message_chunk"), "content": .object(["type": .string("text"), "text": .string(text)])])
    }

    private func update(_ session: String, _ update: [String: JSONValue]) async throws {
        try await connection.notify(ACP.Method.update, params: .object(["sessionId": .string(session), "update": .object(update)]))
    }
}
