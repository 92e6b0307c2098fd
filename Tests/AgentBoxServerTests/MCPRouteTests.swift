import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOFoundationEssentialsCompat
import Testing

let mcpSessionHeader = HTTPField.Name("Mcp-Session-Id")!

/// Posts one JSON-RPC message to `/v1/mcp`.
func mcpPost(
    _ client: any TestClientProtocol, _ body: String, session: String? = nil, token: String? = "secret", accept: String = "application/json, text/event-stream"
) async throws -> TestResponse {
    var headers: HTTPFields = [.contentType: "application/json", .accept: accept]
    if let token { headers[.authorization] = "Bearer \(token)" }
    if let session { headers[mcpSessionHeader] = session }
    return try await client.execute(uri: "/v1/mcp", method: .post, headers: headers, body: ByteBuffer(string: body))
}

/// Opens an MCP session over the routes; returns its id.
func mcpInitialize(_ client: any TestClientProtocol) async throws -> String {
    let response = try await mcpPost(
        client, #"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"route-test","version":"1"}}}"#)
    #expect(response.status == .ok)
    #expect(try JSONValue.parse(Data(buffer: response.body))["result"]?["serverInfo"]?["name"] == "agentbox")
    let session = try #require(response.headers[mcpSessionHeader])
    #expect(try await mcpPost(client, #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, session: session).status == .accepted)
    return session
}

/// Calls a tool in `session`; returns the JSON-RPC result.
func mcpCall(_ client: any TestClientProtocol, _ session: String, _ tool: String, _ arguments: String, id: Int = 1) async throws -> JSONValue {
    let response = try await mcpPost(
        client, #"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"\#(tool)","arguments":\#(arguments)}}"#, session: session)
    #expect(response.status == .ok)
    #expect(response.headers[.contentType] == "application/json")
    return try #require(try JSONValue.parse(Data(buffer: response.body))["result"])
}

@Suite("MCP route")
struct MCPRouteTests {
    @Test func initializeListToolsAndRoundTripAFile() async throws {
        try await withServer(token: "secret") { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/m", method: .put, headers: [.authorization: "Bearer secret"])
            let session = try await mcpInitialize(client)
            let list = try await mcpPost(client, #"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, session: session)
            guard case .array(let tools)? = try JSONValue.parse(Data(buffer: list.body))["result"]?["tools"] else {
                Issue.record("no tools: \(String(buffer: list.body))")
                return
            }
            #expect(Set(tools.compactMap { $0["name"]?.stringValue }) == [
                "exec", "read_file", "write_file", "list_files", "spawn_process", "list_processes", "process_output", "kill_process",
            ])

            let written = try await mcpCall(client, session, "write_file", #"{"workspace":"m","path":"notes/a.txt","content":"data: [1,2]\nhé\n"}"#)
            #expect(written["isError"] == nil)
            #expect(written["structuredContent"]?["bytesWritten"] == 16)
            let read = try await mcpCall(client, session, "read_file", #"{"workspace":"m","path":"/workspace/notes/a.txt"}"#)
            #expect(read["structuredContent"]?["content"] == "data: [1,2]\nhé\n")
            #expect(read["structuredContent"]?["encoding"] == "utf8")
            // The same bytes through the HTTP file route.
            let raw = try await client.execute(uri: "/v1/workspaces/m/fs/file?path=/workspace/notes/a.txt", method: .get, headers: [.authorization: "Bearer secret"])
            #expect(String(buffer: raw.body) == "data: [1,2]\nhé\n")
            let listed = try await mcpCall(client, session, "list_files", #"{"workspace":"m","path":"/workspace","recursive":true}"#)
            #expect(listed["structuredContent"]?["items"]?.jsonText.contains("/workspace/notes/a.txt") == true)

            // Failures are tool errors with the library's words, in a 200.
            let absent = try await mcpCall(client, session, "read_file", #"{"workspace":"absent","path":"a"}"#)
            #expect(absent["isError"] == true)
            #expect(absent["content"]?.jsonText.contains("no workspace 'absent'") == true)
            let escape = try await mcpCall(client, session, "read_file", #"{"workspace":"m","path":"../../etc/passwd"}"#)
            #expect(escape["isError"] == true)
            let missing = try await mcpCall(client, session, "read_file", #"{"workspace":"m","path":"/workspace/none"}"#)
            #expect(missing["isError"] == true)

            // GET has no stream here; DELETE ends the session.
            #expect(try await client.execute(uri: "/v1/mcp", method: .get, headers: [.authorization: "Bearer secret", .accept: "text/event-stream", mcpSessionHeader: session]).status == .methodNotAllowed)
            #expect(try await client.execute(uri: "/v1/mcp", method: .delete, headers: [.authorization: "Bearer secret", mcpSessionHeader: session]).status == .ok)
            #expect(try await mcpPost(client, #"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#, session: session).status == .notFound)
        }
    }

    @Test func badInputIsAJSONRPCErrorOrA4xxNeverA500() async throws {
        try await withServer(token: "secret") { client, _ in
            let garbage = try await mcpPost(client, "{not json")
            #expect(garbage.status == .badRequest)
            #expect(try JSONValue.parse(Data(buffer: garbage.body))["error"]?["code"] == .number(-32700))
            let session = try await mcpInitialize(client)
            let garbageInSession = try await mcpPost(client, "{\"jsonrpc\":", session: session)
            #expect(garbageInSession.status == .badRequest)
            #expect(try JSONValue.parse(Data(buffer: garbageInSession.body))["error"] != nil)
            let unknownMethod = try await mcpPost(client, #"{"jsonrpc":"2.0","id":3,"method":"resources/nope"}"#, session: session)
            #expect(try JSONValue.parse(Data(buffer: unknownMethod.body))["error"]?["code"] == .number(-32601))
            let unknownTool = try await mcpPost(client, #"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}"#, session: session)
            #expect(try JSONValue.parse(Data(buffer: unknownTool.body))["error"]?["code"] == .number(-32602))
            #expect(try await mcpPost(client, #"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#, session: "mcp_forged").status == .notFound)
            #expect(try await mcpPost(client, #"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#, session: session, accept: "text/html").status == .notAcceptable)

            let oversized = try await mcpPost(client, #"{"jsonrpc":"2.0","id":1,"method":"tools/list","x":""# + String(repeating: "a", count: 1 << 20) + "\"}", session: session)
            try expectProblem(oversized, .contentTooLarge)
        }
    }

    @Test func theRouteNeedsTheBearerToken() async throws {
        try await withServer(token: "secret") { client, _ in
            let initialize = #"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#
            try expectProblem(try await mcpPost(client, initialize, token: nil), .unauthorized)
            try expectProblem(try await mcpPost(client, initialize, token: "wrong"), .unauthorized)
            try expectProblem(try await client.execute(uri: "/v1/mcp", method: .delete), .unauthorized)
            try expectProblem(try await client.execute(uri: "/v1/mcp?access_token=secret", method: .get), .unauthorized)
        }
    }

    @Test(.enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
    func execAndProcessesThroughTheTools() async throws {
        try await withServer(token: "secret", sandbox: true) { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/m", method: .put, headers: [.authorization: "Bearer secret"])
            let session = try await mcpInitialize(client)
            let exec = try await mcpCall(client, session, "exec", #"{"workspace":"m","command":"echo hi; echo err >&2; exit 3"}"#)
            #expect(exec["structuredContent"]?["stdout"] == "hi\n")
            #expect(exec["structuredContent"]?["stderr"] == "err\n")
            #expect(exec["structuredContent"]?["exitCode"] == 3)
            #expect(exec["isError"] == nil, "a command that fails is a result, not a tool error")
            let timedOut = try await mcpCall(client, session, "exec", #"{"workspace":"m","command":"sleep 30","timeoutMs":300}"#, id: 2)
            #expect(timedOut["structuredContent"]?["timedOut"] == true)

            let spawned = try await mcpCall(client, session, "spawn_process", #"{"workspace":"m","command":["sh","-c","echo started; sleep 60"]}"#, id: 3)
            let id = try #require(spawned["structuredContent"]?["id"]?.stringValue)
            var report = try await mcpCall(client, session, "process_output", #"{"workspace":"m","processId":"\#(id)"}"#, id: 4)
            for _ in 0..<100 where report["structuredContent"]?["stdout"] != "started\n" {
                try await Task.sleep(for: .milliseconds(50))
                report = try await mcpCall(client, session, "process_output", #"{"workspace":"m","processId":"\#(id)"}"#, id: 4)
            }
            #expect(report["structuredContent"]?["stdout"] == "started\n")
            #expect(report["structuredContent"]?["process"]?["status"] == "running")
            _ = try await mcpCall(client, session, "kill_process", #"{"workspace":"m","processId":"\#(id)","signal":"KILL"}"#, id: 5)
            for _ in 0..<100 where report["structuredContent"]?["process"]?["status"] != "exited" {
                try await Task.sleep(for: .milliseconds(50))
                report = try await mcpCall(client, session, "process_output", #"{"workspace":"m","processId":"\#(id)"}"#, id: 6)
            }
            #expect(report["structuredContent"]?["process"]?["signal"] == "KILL")
            let processes = try await mcpCall(client, session, "list_processes", #"{"workspace":"m"}"#, id: 7)
            #expect(processes["structuredContent"]?["items"]?.jsonText.contains(id) == true)

            // notifications/cancelled answers the request at once and kills the command.
            let started = ContinuousClock.now
            async let cancelled = mcpPost(
                client, #"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"exec","arguments":{"workspace":"m","command":"sleep 41"}}}"#,
                session: session)
            func sleeperState() async throws -> String? {
                let list = try await mcpCall(client, session, "list_processes", #"{"workspace":"m"}"#, id: 9)
                guard case .array(let items)? = list["structuredContent"]?["items"] else { return nil }
                return items.first { $0["command"] == "sleep 41" }?["status"]?.stringValue
            }
            while try await sleeperState() != "running" { try await Task.sleep(for: .milliseconds(20)) }
            let notified = try await mcpPost(client, #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":8}}"#, session: session)
            #expect(notified.status == .accepted)
            let reply = try JSONValue.parse(Data(buffer: try await cancelled.body))
            #expect(reply["error"]?["code"] == .number(-32800), "\(reply.jsonText)")
            for _ in 0..<100 where try await sleeperState() == "running" { try await Task.sleep(for: .milliseconds(50)) }
            #expect(try await sleeperState() == "exited")
            #expect(ContinuousClock.now - started < .seconds(38), "ended before the sleep's own 41 s")
        }
    }
}
