import AgentBoxAPI
import AgentBoxClient
import Foundation
import Testing

@Suite("Agent sessions through the real server", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(3)))
struct SessionEndToEndTests {
    @Test func theCLIDrivesASession() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let environment = ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!]
            func cli(_ arguments: String...) async throws -> (status: Int32, stdout: String, stderr: String) {
                try await AgentBoxBinary.run(arguments, environment: environment)
            }
            #expect(try await cli("workspaces", "create", "agents").status == 0)
            let created = try await cli("session", "create", "agents", "--agent", "mock", "--permissions", "read=allow,*=ask")
            #expect(created.status == 0, "\(created.stderr)")
            let id = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(id.hasPrefix("ses_"))

            let turn = try await cli("prompt", "agents", id, "hello plan tool run echo ran-it")
            #expect(turn.status == 0, "\(turn.stderr)")
            #expect(turn.stdout.hasPrefix("hello plan tool run echo ran-it\n"), "\(turn.stdout)")
            #expect(turn.stdout.contains("Plan:\n  - [pending] Read the code"))
            #expect(turn.stdout.contains("⚙ Reading the mock file [read] pending"))
            #expect(turn.stdout.contains("exit 0, output: ran-it"))
            #expect(turn.stdout.hasSuffix("[end_turn]\n"))

            let rejected = try await cli("prompt", "agents", id, "permission", "--approve", "reject")
            #expect(rejected.stdout.contains("permission: rejected") && rejected.status == 0, "\(rejected.stdout)")
            let failed = try await cli("prompt", "agents", id, "error")
            #expect(failed.status == 1 && failed.stdout.contains("[error: the agent failed the turn"), "\(failed.stdout)")

            let list = try await cli("session", "list", "agents")
            #expect(list.stdout.contains(id) && list.stdout.contains("error"))
            let events = try await cli("session", "events", "agents", id, "--limit", "3")
            #expect(events.stdout.split(separator: "\n").count == 3 && events.stdout.contains("agent_started"))
            #expect(try await cli("session", "close", "agents", id).status == 0)
            let closed = try await cli("prompt", "agents", id, "anyone?")
            #expect(closed.status == 1 && closed.stderr.contains("closed"))
            #expect(try await cli("session", "resume", "agents", id).stdout.contains("idle"))
            #expect(try await cli("session", "rm", "agents", id).status == 0)
            #expect(try await cli("session", "get", "agents", id).status == 1)
            #expect(try await cli("session", "create", "agents", "--agent", "ghost").stderr.contains("unknown agent"))
            await server.stop()
        }
    }

    /// Any ACP agent given by command (`serve --agent ID='PROGRAM ARG…'`) takes the same path: here the mock, by its
    /// path inside the workspace.
    @Test func aGenericACPAgentByCommand() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--agent", "generic=/.agentbox/bin/mock-agent --no-load", "--require-preinstall"])
            let environment = ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!]
            func cli(_ arguments: String...) async throws -> (status: Int32, stdout: String, stderr: String) {
                try await AgentBoxBinary.run(arguments, environment: environment)
            }
            let agents = try await cli("agents", "list")
            #expect(agents.stdout.contains("generic") && agents.stdout.contains("claude") && agents.stdout.contains("codex"), "\(agents.stdout)")
            #expect(try await cli("workspaces", "create", "generic").status == 0)
            let id = try await cli("session", "create", "generic", "--agent", "generic").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let turn = try await cli("prompt", "generic", id, "hello permission", "--approve", "once")
            #expect(turn.status == 0 && turn.stdout.contains("permission: approved"), "\(turn.stdout) \(turn.stderr)")
            let missing = try await cli("session", "create", "generic", "--agent", "opencode")
            #expect(missing.status == 1 && missing.stderr.contains("not installed"), "\(missing.stderr)")
            let bad = try await AgentBoxBinary.run(["serve", "--agent", "no command"])
            #expect(bad.status != 0 && bad.stderr.contains("--agent"))
            await server.stop()
        }
    }

    /// kill -9 of the server in the middle of a turn: every event a client saw is on disk, the restarted server
    /// ends the interrupted turn, the session resumes, and the history is intact.
    @Test func killMinus9MidTurnThenRestartAndResume() async throws {
        try await withTemporaryDirectory { data in
            var server = try await ServerProcess.start(dataDirectory: data)
            var client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("crash")
            let session = try await client.createSession("crash", SessionCreateRequest(agent: "mock"))
            #expect(try await client.prompt("crash", session.id, PromptRequest(text: "before")).stopReason == "end_turn")
            let stream = try await client.sessionEvents("crash", session.id)
            try await client.startPrompt("crash", session.id, PromptRequest(text: "long"))
            var seen: [SessionEvent] = []
            for try await event in stream {
                seen.append(event)
                if event.payload["update"]?["content"]?["text"]?.stringValue == "\ntick 3" { break }
            }
            await server.stop(signal: SIGKILL)

            server = try await ServerProcess.start(dataDirectory: data)
            client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let listed = try await client.sessions("crash").items
            #expect(listed.map(\.id) == [session.id] && listed[0].status == .idle && listed[0].stopReason == "error")
            let stored = try await client.sessionEventPage("crash", session.id, after: 0, limit: 1000).items
            #expect(Array(stored.prefix(seen.count)) == seen, "every event a client saw survived kill -9")
            #expect(stored.last?.type == "turn_end" && stored.last?.payload["error"]?.stringValue == "the server stopped during the turn")
            #expect(stored.map(\.seq) == Array(1...Int64(stored.count)))

            let resumed = try await client.resumeSession("crash", session.id)
            #expect(resumed.agentRunning && resumed.agentSessionId == session.agentSessionId)
            #expect(try await client.prompt("crash", session.id, PromptRequest(text: "after")).stopReason == "end_turn")
            let after = try await client.sessionEventPage("crash", session.id, after: 0, limit: 1000).items
            #expect(Array(after.prefix(stored.count)) == stored, "the history is intact")
            #expect(after.filter { $0.type == "agent_started" }.last?.payload["method"]?.stringValue == "load")

            // SSE resumes after Last-Event-ID, replaying from the store, and its frames carry the seq.
            var replay: [SessionEvent] = []
            for try await event in try await client.sessionEvents("crash", session.id, after: Int64(stored.count)) {
                replay.append(event)
                if replay.count == after.count - stored.count { break }
            }
            #expect(replay == Array(after.dropFirst(stored.count)))
            await server.stop()
        }
    }
}
