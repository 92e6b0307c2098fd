import AgentBoxAPI
import AgentBoxClient
import ChildProcessSupport
import Foundation
import Testing

/// The installed real agents (`scripts/setup-agents.sh`), when the test set-up installed them.
let installedAgents: String? = {
    let directory = ProcessInfo.processInfo.environment["AGENTBOX_AGENTS"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/agents").path
    return FileManager.default.isExecutableFile(atPath: directory + "/claude/claude") ? directory : nil
}()

/// Whether the set-up installed `agent` (`claude`, `codex`).
func isInstalled(_ agent: String) -> Bool {
    installedAgents.map { FileManager.default.isExecutableFile(atPath: "\($0)/\(agent)/\(agent)") } ?? false
}

/// `agentbox dev model-server` on a free port.
final class ModelServerProcess: Sendable {
    let process: ChildProcess
    let port: Int
    /// Its log (`--log-level info`: a line per request, with the tools offered and the last user message's blocks).
    let logFile: URL
    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    init(script: String, directory: URL) async throws {
        let file = directory.appendingPathComponent("script-\(UUID()).json")
        try script.write(to: file, atomically: true, encoding: .utf8)
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: AgentBoxBinary.path)
        process.arguments = ["dev", "model-server", "--script", file.path, "--port", "0", "--log-level", "info"]
        let out = Pipe()
        process.standardOutput = out
        logFile = directory.appendingPathComponent("model-server-\(UUID()).log")
        FileManager.default.createFile(atPath: logFile.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: logFile)
        try process.run()
        let line = await onOwnThread { () -> String in
            var text = ""
            while !text.contains("\n") {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            return text
        }
        guard let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            process.terminate()
            throw ServerStartFailed(message: "the model server did not start: \(line)")
        }
        self.process = process
        self.port = port
    }

    deinit { process.signal(SIGKILL) }
}

/// Puts the installed `agent` where `agentbox agents install` would, below a server's data directory.
func provideInstalledAgent(_ agent: String, dataDirectory data: URL) throws {
    let agents = data.appendingPathComponent("agents/\(agent)")
    try FileManager.default.createDirectory(at: agents, withIntermediateDirectories: true)
    for name in [agent, "version"] {
        let source = installedAgents! + "/\(agent)/" + name
        if link(source, agents.appendingPathComponent(name).path) != 0 {
            try FileManager.default.copyItem(atPath: source, toPath: agents.appendingPathComponent(name).path)
        }
    }
}

/// One real agent through the whole session path, offline against the scripted model server: a turn that writes a
/// file and runs a command with the agent's own tools (each permission answered through the API), a cancel while
/// the model is still answering, then a server restart and a resume that reattaches to the agent's own session.
func exerciseRealAgent(
    _ agent: String, script: String, model: String?, env: @escaping (Int) -> [String: String], expectedKinds: [String], file: String, content: String
) async throws {
    try await withTemporaryDirectory { data in
        try provideInstalledAgent(agent, dataDirectory: data)
        let modelServer = try await ModelServerProcess(script: script, directory: data.deletingLastPathComponent())
        var server = try await ServerProcess.start(dataDirectory: data)
        var client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
        #expect(try await client.agents().items.first { $0.id == agent }?.installed == true)
        #expect(try await client.installAgent(agent).source == "installed")

        let endpoint = "host.agentbox.internal:\(modelServer.port)"
        _ = try await client.putWorkspace(agent, config: WorkspaceConfig(network: NetworkPolicy(egress: .allowList([endpoint]))))
        let variables = env(modelServer.port)
        let session = try await client.createSession(agent, SessionCreateRequest(agent: agent, env: variables, model: model))
        #expect(session.agentRunning && session.agentSessionId != nil)

        func followTurn(after: Int64, reply: PermissionReply?, onPrompt: (@Sendable () async throws -> Void)? = nil) async throws -> [SessionEvent] {
            var events: [SessionEvent] = []
            for try await event in try await client.sessionEvents(agent, session.id, after: after) {
                events.append(event)
                if event.type == "prompt", let onPrompt { try await onPrompt() }
                if event.type == "permission_request", let reply, let permissionId = event.payload["permissionId"]?.stringValue {
                    try await client.replyPermission(agent, session.id, permissionId: permissionId, reply)
                }
                if event.type == "turn_end" { break }
            }
            return events
        }

        // A turn with the agent's own tools, permissions answered through the API.
        try await client.startPrompt(agent, session.id, PromptRequest(text: "create a file"))
        let first = try await followTurn(after: session.lastEventSeq, reply: .once)
        #expect(first.last?.payload["stopReason"]?.stringValue == "end_turn", "\(first.map(\.type))")
        let kinds = first.filter { $0.type == "tool_call" }.compactMap { $0.payload["update"]?["kind"]?.stringValue }
        #expect(kinds == expectedKinds, "\(kinds)")
        #expect(first.contains { $0.type == "permission_request" } && first.contains { $0.type == "permission_reply" && $0.sender == .client })
        let results = first.filter { $0.type == "tool_call_update" }.compactMap { $0.payload["update"]?["status"]?.stringValue }
        #expect(results.filter { $0 == "completed" }.count == expectedKinds.count, "\(results)")
        #expect(String(decoding: try await client.readFileData(agent, path: file), as: UTF8.self) == content)
        let text = first.filter { $0.type == "agent_message_chunk" }.compactMap { $0.payload["update"]?["content"]?["text"]?.stringValue }.joined()
        #expect(text.contains("I will create the file.") && text.contains("Created and checked."), "\(text)")

        // Cancel mid-turn, while the model is still answering.
        var current = try await client.session(agent, session.id)
        try await client.startPrompt(agent, session.id, PromptRequest(text: "slow please"))
        let cancelling = client
        let cancelled = try await followTurn(after: current.lastEventSeq, reply: nil) {
            try await Task.sleep(for: .seconds(2))
            try await cancelling.cancelTurn(agent, session.id)
        }
        #expect(cancelled.last?.payload["stopReason"]?.stringValue == "cancelled", "\(cancelled.map(\.type))")

        // A server restart (same host uids, so the workspace's files stay readable), then resume.
        await server.stop()
        server = try await ServerProcess.start(dataDirectory: data, uidBase: server.uidBase)
        client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
        let resumed = try await client.resumeSession(agent, session.id, env: variables)
        #expect(resumed.agentRunning && resumed.agentSessionId == session.agentSessionId)
        current = try await client.session(agent, session.id)
        #expect(try await client.prompt(agent, session.id, PromptRequest(text: "again")).stopReason == "end_turn")
        let after = try await client.sessionEventPage(agent, session.id, after: current.lastEventSeq, limit: 100).items
        #expect(after.filter { $0.type == "agent_message_chunk" }.compactMap { $0.payload["update"]?["content"]?["text"]?.stringValue }.joined() == "Resumed fine.")
        let all = try await client.sessionEventPage(agent, session.id, after: 0, limit: 1000).items
        #expect(all.filter { $0.type == "agent_started" }.last?.payload["method"]?.stringValue == "load")
        if agent == "claude" {
            // Claude Code reports its turns' tokens (the scripted model server's counts), which the session sums.
            let usage = try await client.session(agent, session.id).agentUsage
            #expect((usage?.requests ?? 0) >= 2 && (usage?.outputTokens ?? 0) > 0, "\(String(describing: usage))")
        }
        await server.stop()
        // The key went to the agent only: not into the database (or its WAL), not into the server's log.
        for name in ["agentbox.sqlite", "agentbox.sqlite-wal"] {
            let bytes = (try? Data(contentsOf: data.appendingPathComponent(name))) ?? Data()
            #expect(bytes.range(of: Data("sk-offline".utf8)) == nil, "\(name) holds the key")
        }
        #expect(!server.log.contains("sk-offline"))
    }
}

@Suite("Real Claude Code in a workspace, offline", .enabled(if: canSandbox && isInstalled("claude"), "needs root, bubblewrap and scripts/setup-agents.sh"), .timeLimit(.minutes(5)))
struct ClaudeCodeEndToEndTests {
    /// An image and a workspace file in a prompt reach Claude's model request (the model server logs the blocks of
    /// the last user message), and Claude Code's permission modes are offered and set.
    @Test func attachmentsAndModesReachClaudeCode() async throws {
        try await withTemporaryDirectory { data in
            try provideInstalledAgent("claude", dataDirectory: data)
            let modelServer = try await ModelServerProcess(script: #"{"turns": [{"text": "A red square."}], "sideText": "ok"}"#, directory: data.deletingLastPathComponent())
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace(
                "see", config: WorkspaceConfig(network: NetworkPolicy(egress: .allowList(["host.agentbox.internal:\(modelServer.port)"]))))
            _ = try await client.exec("see", command: "echo the-notes > /workspace/notes.txt")
            let session = try await client.createSession(
                "see",
                SessionCreateRequest(
                    agent: "claude", env: ["ANTHROPIC_BASE_URL": "http://host.agentbox.internal:\(modelServer.port)", "ANTHROPIC_API_KEY": "sk-offline"]))
            #expect(session.availableModes?.map(\.id) == ["default", "acceptEdits", "plan", "bypassPermissions"])
            #expect(try await client.setSessionMode("see", session.id, "plan").mode == "plan")
            let result = try await client.prompt(
                "see", session.id, PromptRequest(content: [.text("what is this"), .image(Self.redSquarePNG, mimeType: "image/png"), .file("notes.txt")]))
            #expect(result.stopReason == "end_turn")
            let request = modelServer.log.split(separator: "\n").last { $0.contains("A red square.") }.map(String.init) ?? modelServer.log
            // Claude Code puts reminders of its own around the user's blocks; the image and the file's text are there.
            let blocks = request.components(separatedBy: "content=[").dropFirst().first?.components(separatedBy: "]").first ?? ""
            #expect(blocks.contains(#""image""#) && blocks.components(separatedBy: #""text""#).count >= 3, "\(request)")
            await server.stop()
        }
    }

    /// Claude's clarifying question (its AskUserQuestion tool) becomes a question event; the answer reaches Claude as
    /// the tool's result.
    @Test func claudesQuestionIsAQuestionEvent() async throws {
        try await withTemporaryDirectory { data in
            try provideInstalledAgent("claude", dataDirectory: data)
            let script = #"""
                {"turns": [
                  {"match": "ask", "toolCalls": [{"name": "AskUserQuestion", "input": {"questions": [{"question": "Which color?", "header": "Color", "multiSelect": false,
                    "options": [{"label": "Red", "description": "warm"}, {"label": "Blue", "description": "cool"}]}]}}]},
                  {"text": "Noted."}
                ], "sideText": "ok"}
                """#
            let modelServer = try await ModelServerProcess(script: script, directory: data.deletingLastPathComponent())
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace(
                "ask", config: WorkspaceConfig(network: NetworkPolicy(egress: .allowList(["host.agentbox.internal:\(modelServer.port)"]))))
            let session = try await client.createSession(
                "ask",
                SessionCreateRequest(
                    agent: "claude", env: ["ANTHROPIC_BASE_URL": "http://host.agentbox.internal:\(modelServer.port)", "ANTHROPIC_API_KEY": "sk-offline"]))
            try await client.startPrompt("ask", session.id, PromptRequest(text: "ask me something"))
            var events: [SessionEvent] = []
            for try await event in try await client.sessionEvents("ask", session.id, after: session.lastEventSeq) {
                events.append(event)
                if event.type == "question", let questionId = event.payload["questionId"]?.stringValue {
                    #expect(event.payload["message"] == "Which color?")
                    #expect(event.payload["requestedSchema"]?["properties"]?["q1"]?["enum"] == ["Red", "Blue"])
                    try await client.answerQuestion("ask", session.id, questionId, QuestionReplyRequest(answer: "Blue"))
                }
                if event.type == "turn_end" { break }
            }
            #expect(events.last?.payload["stopReason"] == "end_turn", "\(events.map(\.type))")
            #expect(events.contains { $0.type == "question_reply" && $0.payload["action"] == "accept" })
            let results = events.filter { $0.type == "tool_call_update" }.map { "\($0.payload)" }.joined()
            #expect(results.contains("Blue"), "the answer reached Claude: \(results)")
            await server.stop()
        }
    }

    /// An 8×8 red PNG (Claude Code drops images it cannot decode).
    static let redSquarePNG: Data = {
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in body {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            crc = ~crc
            func be(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
            return be(UInt32(data.count)) + body + be(crc)
        }
        var raw: [UInt8] = []
        for _ in 0..<8 { raw += [0] + Array(repeating: [0xFF, 0x00, 0x00], count: 8).flatMap { $0 } }
        // zlib, stored (uncompressed) blocks: header, one final block, Adler-32.
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        let length = UInt16(raw.count)
        let zlib: [UInt8] = [0x78, 0x01, 0x01, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)] + raw
            + [UInt8(b >> 8), UInt8(b & 0xFF), UInt8(a >> 8), UInt8(a & 0xFF)]
        let header: [UInt8] = [0, 0, 0, 8, 0, 0, 0, 8, 8, 2, 0, 0, 0]
        return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", zlib) + chunk("IEND", []))
    }()

    @Test func aRealClaudeCodeSessionWritesRunsCancelsAndResumes() async throws {
        try await exerciseRealAgent(
            "claude",
            script: #"""
                {"turns": [
                  {"match": "create", "text": "I will create the file.", "toolCalls": [{"name": "Write", "input": {"file_path": "/workspace/hello.txt", "content": "hello from claude\n"}}]},
                  {"toolCalls": [{"name": "Bash", "input": {"command": "wc -c /workspace/hello.txt", "description": "Count the bytes"}}]},
                  {"text": "Created and checked."},
                  {"match": "slow", "text": "Thinking slowly.", "delayMs": 60000},
                  {"match": "again", "text": "Resumed fine."}
                ], "sideText": "ok"}
                """#,
            model: nil, env: { ["ANTHROPIC_BASE_URL": "http://host.agentbox.internal:\($0)", "ANTHROPIC_API_KEY": "sk-offline"] },
            expectedKinds: ["edit", "execute"], file: "/workspace/hello.txt", content: "hello from claude\n")
    }
}

@Suite("Real Codex in a workspace, offline", .enabled(if: canSandbox && isInstalled("codex"), "needs root, bubblewrap and scripts/setup-agents.sh"), .timeLimit(.minutes(5)))
struct CodexEndToEndTests {
    @Test func aRealCodexSessionWritesRunsCancelsAndResumes() async throws {
        // Codex's shell tool is exec_command; a short yield_time_ms keeps each command from waiting for more output.
        try await exerciseRealAgent(
            "codex",
            script: #"""
                {"turns": [
                  {"match": "create", "text": "I will create the file.", "toolCalls": [{"name": "exec_command", "input": {"cmd": "printf 'hello from codex\\n' > /workspace/codex.txt", "yield_time_ms": 1000, "tty": false}}]},
                  {"toolCalls": [{"name": "exec_command", "input": {"cmd": "wc -c /workspace/codex.txt", "yield_time_ms": 1000, "tty": false}}]},
                  {"text": "Created and checked."},
                  {"match": "slow", "text": "Thinking slowly.", "delayMs": 60000},
                  {"match": "again", "text": "Resumed fine."}
                ], "sideText": "ok"}
                """#,
            model: "scripted", env: { ["OPENAI_BASE_URL": "http://host.agentbox.internal:\($0)/v1", "OPENAI_API_KEY": "sk-offline"] },
            expectedKinds: ["execute", "execute"], file: "/workspace/codex.txt", content: "hello from codex\n")
    }
}

@Suite("Amp's ACP adapter in a workspace", .enabled(if: canSandbox && installedAgents.map { FileManager.default.isExecutableFile(atPath: $0 + "/amp/venv/bin/acp-amp") } == true, "needs root, bubblewrap and scripts/setup-agents.sh"), .timeLimit(.minutes(2)))
struct AmpEndToEndTests {
    /// acp-amp (PyPI) starts inside the workspace from its read-only virtual environment and opens a session. A turn
    /// needs Amp's own service, which is not reachable here.
    @Test func theAdapterStartsAndOpensASession() async throws {
        try await withTemporaryDirectory { data in
            let agents = data.appendingPathComponent("agents/amp")
            try FileManager.default.createDirectory(at: agents, withIntermediateDirectories: true)
            let copy = ChildProcess()
            copy.executableURL = URL(fileURLWithPath: "/bin/cp")
            copy.arguments = ["-a", installedAgents! + "/amp/venv", agents.path + "/venv"]
            try copy.run()
            #expect(await waitForExit(copy) == 0)
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            #expect(try await client.agents().items.first { $0.id == "amp" }?.installed == true)
            _ = try await client.putWorkspace("amp")
            let session = try await client.createSession("amp", SessionCreateRequest(agent: "amp"))
            #expect(session.agentRunning && session.agentSessionId?.isEmpty == false)
            let events = try await client.sessionEventPage("amp", session.id).items
            #expect(events.first { $0.type == "agent_started" }?.payload["agentInfo"]?["name"]?.stringValue == "acp-amp", "\(events)")
            #expect(events.contains { $0.type == "available_commands_update" }, "the adapter's own updates are recorded")
            #expect(try await client.closeSession("amp", session.id).status == .closed)
            await server.stop()
        }
    }
}
