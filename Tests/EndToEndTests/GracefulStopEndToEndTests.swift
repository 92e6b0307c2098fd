import AgentBoxAPI
import AgentBoxClient
import Foundation
import Testing
import WSCore

/// Issue 18: SIGTERM stops the server gracefully, whatever is open: it stops accepting, lets the running turn's events
/// reach the store, closes the streams and WebSockets, puts the workspaces to sleep, and exits within 10 s.
@Suite("SIGTERM with everything open", .enabled(if: canSandbox))
struct GracefulStopEndToEndTests {
    @Test func sigtermWithATurnStreamsAShellAndAProcessExitsCleanlyWithinTenSeconds() async throws {
        try await withTemporaryDirectory { data in
            var server = try await ServerProcess.start(dataDirectory: data)
            var client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("busy")
            _ = try await client.spawn("busy", SpawnRequest(command: "sleep", args: ["1000"]))
            let shell = try await client.openShell("busy")
            let first = client
            let shellClosed = Task {
                // The WebSocket stays attached until the server closes it.
                try? await first.attachShell("busy", shell.id) { inbound, _ in
                    for try await _ in inbound {}
                }
                return Date()
            }
            let workspaceStreamEnded = Task {
                do { for try await _ in try await first.events("busy") {} } catch {}
                return Date()
            }
            let session = try await client.createSession("busy", SessionCreateRequest(agent: "mock"))
            let stream = try await client.sessionEvents("busy", session.id)
            try await client.startPrompt("busy", session.id, PromptRequest(text: "long"))
            var seen: [SessionEvent] = []
            for try await event in stream {
                seen.append(event)
                if event.payload["update"]?["content"]?["text"]?.stringValue == "\ntick 2" { break }
            }

            let stopped = Date()
            let status = await server.stop(signal: SIGTERM)
            let took = Date().timeIntervalSince(stopped)
            #expect(status == 0, "a graceful stop exits 0")
            #expect(took < 10, "exited in \(took) s")
            #expect(await shellClosed.value.timeIntervalSince(stopped) < 10, "the shell's WebSocket was closed")
            #expect(await workspaceStreamEnded.value.timeIntervalSince(stopped) < 10, "the event stream ended")
            #expect(!server.log.contains("error"), "\(server.log.suffix(2000))")

            server = try await ServerProcess.start(dataDirectory: data)
            client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let stored = try await client.sessionEventPage("busy", session.id, after: 0, limit: 1000).items
            #expect(Array(stored.prefix(seen.count)) == seen, "every event a client saw was persisted")
            // The interrupted turn was ended (the agent's exit follows it).
            let tail = stored.suffix(2).map(\.type)
            #expect(tail == ["turn_end", "agent_exited"] || tail.last == "turn_end", "\(stored.suffix(3).map { "\($0.type) \($0.payload)" })")
            let listed = try await client.sessions("busy").items
            #expect(listed.first?.status == .idle)
            #expect(stored.map(\.seq) == Array(1...Int64(stored.count)))
            let workspace = try await client.workspace("busy")
            #expect(workspace.state == .sleeping)
            // Nothing of the old sandbox is left: the workspace boots fresh and its old process is gone.
            let processes = try await client.exec("busy", command: "ps -e -o comm= | grep -c '^sleep$' || true")
            #expect(processes.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
            await server.stop()
        }
    }
}
