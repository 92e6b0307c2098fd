import AgentBoxAPI
import AgentBoxClient
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// sandbox-agent's ACP-over-HTTP endpoints against the real binary, driven by a client written from sandbox-agent's
/// published API (Tests/Support/acp_http_client.py): initialize, a session, a prompt whose permission question comes on
/// the SSE stream and is answered by POST; the envelopes are stored as a session's transcript; bad input is refused.
@Suite("ACP over HTTP (sandbox-agent's endpoints)", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(3)))
struct ACPOverHTTPEndToEndTests {
    @Test func aSandboxAgentClientDrivesTheMock() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Support/acp_http_client.py").path
            let run = try await runProgram("/usr/bin/python3", [script, server.endpoint.absoluteString, server.token!, "srv-1"])
            #expect(run.status == 0, "\(run.stderr)")
            let summary = try JSONValue.parse(Data(run.stdout.utf8))
            #expect(summary["initialize"] == [200, 1])
            #expect(summary["newSession"] == [200, "two"], "the client's own ids come back")
            #expect(summary["prompt"] == [200, "end_turn"])
            #expect(summary["answered"] == [202], "the permission request came on the stream and was answered")
            #expect(summary["text"]?.stringValue?.contains("permission: approved") == true, "\(summary)")
            #expect(summary["notification"] == 202)
            #expect(summary["unknownMethod"] == [200, -32601])

            // Listed, and stored as a session of workspace acp-srv-1, whose transcript holds the envelopes.
            let (status, listed) = try await AttackEndToEndTests.get(server, "/v1/acp", authorized: true)
            #expect(status == 200 && listed.contains("\"serverId\":\"srv-1\""), "\(listed)")
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let session = try #require(try await client.sessions("acp-srv-1").items.first)
            let types = try await client.sessionEventPage("acp-srv-1", session.id, after: 0, limit: 1000).items.map(\.type)
            #expect(types.contains("initialize") && types.contains("session/request_permission") && types.contains("session/update"), "\(types)")
            let driven = await #expect(throws: AgentBoxClientError.self) { try await client.startPrompt("acp-srv-1", session.id, PromptRequest(text: "hi")) }
            #expect(driven?.status == 409)

            // Another agent for the same id: 409; no agent for a new id: 404; bad envelopes and ids: 400.
            #expect(try await AttackEndToEndTests.post(server, "/v1/acp/srv-1?agent=codex", json: #"{"jsonrpc":"2.0","method":"x"}"#).status == 409)
            #expect(try await AttackEndToEndTests.post(server, "/v1/acp/srv-2", json: #"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#).status == 404)
            #expect(try await AttackEndToEndTests.post(server, "/v1/acp/srv-1", json: #"[1,2]"#).status == 400)
            #expect(try await AttackEndToEndTests.post(server, "/v1/acp/srv-1", json: #"{"jsonrpc":"2.0","id":99,"result":{}}"#).status == 400)
            #expect(try await AttackEndToEndTests.post(server, "/v1/acp/bad%20id?agent=mock", json: #"{"jsonrpc":"2.0","method":"x"}"#).status == 400)

            // DELETE ends it: the stream's route is 404 after, the transcript stays.
            var delete = HTTPClientRequest(url: server.endpoint.absoluteString + "/v1/acp/srv-1")
            delete.method = .DELETE
            delete.headers.add(name: "authorization", value: "Bearer \(server.token!)")
            #expect(try await HTTPClient.shared.execute(delete, timeout: .seconds(30)).status == .noContent)
            #expect(try await AttackEndToEndTests.get(server, "/v1/acp/srv-1", authorized: true).status == 404)
            let after = try await client.sessionEventPage("acp-srv-1", session.id, after: 0, limit: 1000).items.map(\.type)
            #expect(after.contains("agent_exited"), "\(after.suffix(3))")
            await server.stop()
        }
    }
}
