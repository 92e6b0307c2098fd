import AgentBoxAPI
import AgentBoxClient
import Foundation
import Testing

/// The installed real agents (`scripts/setup-agents.sh`), when the test set-up installed them.
let installedAgents: String? = {
    let directory = ProcessInfo.processInfo.environment["AGENTBOX_AGENTS"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/agents").path
    return FileManager.default.isExecutableFile(atPath: directory + "/claude/claude") ? directory : nil
}()

/// `agentbox dev model-server` on a free port.
final class ModelServerProcess: Sendable {
    let process: Process
    let port: Int

    init(script: String, directory: URL) async throws {
        let file = directory.appendingPathComponent("script-\(UUID()).json")
        try script.write(to: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: AgentBoxBinary.path)
        process.arguments = ["dev", "model-server", "--script", file.path, "--port", "0"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = await Task.detached { () -> String in
            var text = ""
            while !text.contains("\n") {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            return text
        }.value
        guard let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            process.terminate()
            throw ServerStartFailed(message: "the model server did not start: \(line)")
        }
        self.process = process
        self.port = port
    }

    deinit { kill(process.processIdentifier, SIGKILL) }
}

@Suite(
    "Real Claude Code in a workspace, offline", .enabled(if: canSandbox && installedAgents != nil, "needs root, bubblewrap and scripts/setup-agents.sh"),
    .timeLimit(.minutes(5)))
struct ClaudeCodeEndToEndTests {
    static let script = #"""
        {"turns": [
          {"match": "create", "text": "I will create the file.", "toolCalls": [{"name": "Write", "input": {"file_path": "/workspace/hello.txt", "content": "hello from claude\n"}}]},
          {"toolCalls": [{"name": "Bash", "input": {"command": "wc -c /workspace/hello.txt", "description": "Count the bytes"}}]},
          {"text": "Created and checked."},
          {"match": "slow", "text": "Thinking slowly.", "delayMs": 60000},
          {"match": "again", "text": "Resumed fine."}
        ], "sideText": "ok"}
        """#

    /// Follows the session's events after `after` until a `turn_end`, answering permission requests with `reply`.
    func followTurn(_ client: AgentBoxClient, _ id: String, after: Int64, reply: PermissionReply?, onPrompt: (@Sendable () async throws -> Void)? = nil)
        async throws -> [SessionEvent]
    {
        var events: [SessionEvent] = []
        for try await event in try await client.sessionEvents("claude", id, after: after) {
            events.append(event)
            if event.type == "prompt", let onPrompt { try await onPrompt() }
            if event.type == "permission_request", let reply, let permissionId = event.payload["permissionId"]?.stringValue {
                try await client.replyPermission("claude", id, permissionId: permissionId, reply)
            }
            if event.type == "turn_end" { break }
        }
        return events
    }

    @Test func aRealClaudeCodeSessionWritesRunsCancelsAndResumes() async throws {
        try await withTemporaryDirectory { data in
            // The installed agent goes where `agentbox agents install claude` puts it.
            let agents = data.appendingPathComponent("agents/claude")
            try FileManager.default.createDirectory(at: agents, withIntermediateDirectories: true)
            for name in ["claude", "version"] {
                let source = installedAgents! + "/claude/" + name
                if link(source, agents.appendingPathComponent(name).path) != 0 { try FileManager.default.copyItem(atPath: source, toPath: agents.appendingPathComponent(name).path) }
            }
            let model = try await ModelServerProcess(script: Self.script, directory: data.deletingLastPathComponent())
            var server = try await ServerProcess.start(dataDirectory: data)
            var client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let agentsList = try await client.agents().items
            #expect(agentsList.first { $0.id == "claude" }?.installed == true)
            #expect(try await client.installAgent("claude").source == "installed")

            let endpoint = "host.agentbox.internal:\(model.port)"
            _ = try await client.putWorkspace("claude", config: WorkspaceConfig(network: NetworkPolicy(egress: .allowList([endpoint]))))
            let env = ["ANTHROPIC_BASE_URL": "http://\(endpoint)", "ANTHROPIC_API_KEY": "sk-offline"]
            let session = try await client.createSession("claude", SessionCreateRequest(agent: "claude", env: env))
            #expect(session.agentRunning && session.agentSessionId != nil)

            // A turn with its own tools: Write asks permission (answered through the API), Bash runs.
            try await client.startPrompt("claude", session.id, PromptRequest(text: "create a file"))
            let first = try await followTurn(client, session.id, after: session.lastEventSeq, reply: .once)
            #expect(first.last?.payload["stopReason"]?.stringValue == "end_turn", "\(first.map(\.type))")
            let calls = first.filter { $0.type == "tool_call" }.map { $0.payload["update"]?["kind"]?.stringValue }
            #expect(calls == ["edit", "execute"], "\(calls)")
            #expect(first.contains { $0.type == "permission_request" } && first.contains { $0.type == "permission_reply" && $0.sender == .client })
            let results = first.filter { $0.type == "tool_call_update" }.map { $0.payload["update"]?["status"]?.stringValue }
            #expect(results == ["completed", "completed"], "\(results)")
            #expect(String(decoding: try await client.readFileData("claude", path: "/workspace/hello.txt"), as: UTF8.self) == "hello from claude\n")
            let text = first.filter { $0.type == "agent_message_chunk" }.compactMap { $0.payload["update"]?["content"]?["text"]?.stringValue }.joined()
            #expect(text.contains("I will create the file.") && text.contains("Created and checked."), "\(text)")

            // Cancel mid-turn, while the model is still answering.
            var current = try await client.session("claude", session.id)
            try await client.startPrompt("claude", session.id, PromptRequest(text: "slow please"))
            let cancelling = client
            let cancelled = try await followTurn(client, session.id, after: current.lastEventSeq, reply: nil) {
                try await Task.sleep(for: .seconds(2))
                try await cancelling.cancelTurn("claude", session.id)
            }
            #expect(cancelled.last?.payload["stopReason"]?.stringValue == "cancelled", "\(cancelled.map(\.type))")

            // A server restart, then resume: Claude reattaches to its own session (`--resume`) and goes on.
            await server.stop()
            server = try await ServerProcess.start(dataDirectory: data, uidBase: server.uidBase)
            client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let resumed: Session
            do {
                resumed = try await client.resumeSession("claude", session.id, env: env)
            } catch {
                let transcript = try await client.sessionEventPage("claude", session.id, after: 0, limit: 1000).items
                Issue.record("resume failed: \(error); transcript: \(transcript.map { "\($0.type) \($0.payload.jsonText.prefix(300))" }.joined(separator: "\n"))")
                throw error
            }
            #expect(resumed.agentRunning && resumed.agentSessionId == session.agentSessionId)
            current = try await client.session("claude", session.id)
            #expect(try await client.prompt("claude", session.id, PromptRequest(text: "again")).stopReason == "end_turn")
            let after = try await client.sessionEventPage("claude", session.id, after: current.lastEventSeq, limit: 100).items
            #expect(after.filter { $0.type == "agent_message_chunk" }.compactMap { $0.payload["update"]?["content"]?["text"]?.stringValue }.joined() == "Resumed fine.")
            let all = try await client.sessionEventPage("claude", session.id, after: 0, limit: 1000).items
            #expect(all.filter { $0.type == "agent_started" }.last?.payload["method"]?.stringValue == "load")
            await server.stop()
        }
    }
}
