@testable import AgentBoxMCP
import AgentBoxAPI
import Foundation
import Logging
import MCP
import Synchronization
import Testing

let initializeBody = #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#

func mcpRequest(_ body: String?, session: String? = nil, method: String = "POST") -> MCP.HTTPRequest {
    var headers = ["Content-Type": "application/json", "Accept": "application/json, text/event-stream"]
    if let session { headers["Mcp-Session-Id"] = session }
    return MCP.HTTPRequest(method: method, headers: headers, body: body.map { Data($0.utf8) }, path: "/v1/mcp")
}

/// The JSON body of an answer.
func json(_ response: MCP.HTTPResponse) -> JSONValue? {
    response.bodyData.flatMap { try? JSONValue.parse($0) }
}

func makeSessions(_ workspace: FakeWorkspace = FakeWorkspace(), limits: MCPHTTPSessions.Limits = .init()) -> MCPHTTPSessions {
    MCPHTTPSessions(limits: limits, logger: Logger(label: "test")) { scope in AgentBoxTools(operations: workspace, scope: scope) }
}

extension MCPHTTPSessions {
    /// Opens a session; returns its id.
    func open(scope: WorkspaceScope = .all) async throws -> String {
        let response = await handle(mcpRequest(initializeBody), scope: scope)
        #expect(response.statusCode == 200)
        return try #require(response.headers["MCP-Session-Id"])
    }
}

@Suite("MCP sessions over HTTP")
struct MCPHTTPSessionsTests {
    @Test func initializeOpensASessionThatListsAndCallsTools() async throws {
        let sessions = makeSessions()
        let opened = await sessions.handle(mcpRequest(initializeBody), scope: .all)
        #expect(opened.statusCode == 200)
        #expect(opened.headers["Content-Type"] == "application/json")
        let id = try #require(opened.headers["MCP-Session-Id"])
        #expect(id.hasPrefix("mcp_") && id.count == 36 && id.dropFirst(4).allSatisfy { $0.isLowercase || $0.isNumber })
        #expect(json(opened)?["result"]?["protocolVersion"] == "2025-06-18")
        #expect(json(opened)?["result"]?["serverInfo"]?["name"] == "agentbox")

        let initialized = await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, session: id), scope: .all)
        #expect(initialized.statusCode == 202)
        let list = await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, session: id), scope: .all)
        guard case .array(let tools)? = json(list)?["result"]?["tools"] else { Issue.record("no tools in \(String(describing: json(list)))"); return }
        #expect(tools.count == AgentBoxTools.Name.allCases.count)
        let call = await sessions.handle(
            mcpRequest(#"{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"exec","arguments":{"workspace":"demo","command":"echo hi"}}}"#, session: id),
            scope: .all)
        #expect(json(call)?["id"] == "c")
        #expect(json(call)?["result"]?["structuredContent"]?["stdout"] == "hi\n")
        #expect(call.headers["MCP-Session-Id"] == id)
        #expect(await sessions.count == 1)
    }

    @Test func requestsWithoutAUsableSessionAreRefusedInJSONRPC() async throws {
        let sessions = makeSessions()
        let noSession = await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#), scope: .all)
        #expect(noSession.statusCode == 400)
        let garbage = await sessions.handle(mcpRequest("{not json"), scope: .all)
        #expect(garbage.statusCode == 400 && json(garbage)?["error"]?["code"] == .number(-32700))
        let unknown = await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, session: "mcp_nope"), scope: .all)
        #expect(unknown.statusCode == 404)
        // A failed initialize leaves no session behind.
        let badInitialize = await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":5}}"#), scope: .all)
        #expect(badInitialize.headers["MCP-Session-Id"] == nil)
        let notJSON = await sessions.handle(
            MCP.HTTPRequest(method: "POST", headers: ["Content-Type": "text/plain", "Accept": "application/json"], body: Data(initializeBody.utf8)), scope: .all)
        #expect(notJSON.statusCode == 415)
        #expect(await sessions.count == 0)

        let id = try await sessions.open()
        let garbageInSession = await sessions.handle(mcpRequest("[[[", session: id), scope: .all)
        #expect(garbageInSession.statusCode == 400 && json(garbageInSession)?["error"] != nil)
        #expect(await sessions.handle(mcpRequest(nil, session: id, method: "GET"), scope: .all).statusCode == 405)
        let web = await sessions.handle(
            MCP.HTTPRequest(
                method: "POST", headers: ["Content-Type": "application/json", "Accept": "application/json", "Origin": "http://evil.example", "Mcp-Session-Id": id],
                body: Data(#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#.utf8)), scope: .all)
        #expect(web.statusCode == 403)
        let local = await sessions.handle(
            MCP.HTTPRequest(
                method: "POST", headers: ["Content-Type": "application/json", "Accept": "application/json", "Origin": "http://localhost:6274", "Mcp-Session-Id": id],
                body: Data(#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#.utf8)), scope: .all)
        #expect(local.statusCode == 200)
    }

    @Test func onlyTheIdentityThatOpenedASessionMayUseOrEndIt() async throws {
        let sessions = makeSessions()
        let narrow = WorkspaceScope.only([try WorkspaceKey(validating: "demo")])
        let id = try await sessions.open(scope: narrow)
        let borrowed = await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, session: id), scope: .all)
        #expect(borrowed.statusCode == 404)
        #expect(await sessions.handle(mcpRequest(nil, session: id, method: "DELETE"), scope: .all).statusCode == 404)
        // The session's tools have the opener's scope.
        let refused = await sessions.handle(
            mcpRequest(#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"exec","arguments":{"workspace":"other","command":"ls"}}}"#, session: id),
            scope: narrow)
        #expect(json(refused)?["result"]?["isError"] == true)
        #expect(await sessions.handle(mcpRequest(nil, session: id, method: "DELETE"), scope: narrow).statusCode == 200)
        #expect(await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#, session: id), scope: narrow).statusCode == 404)
        #expect(await sessions.count == 0)
    }

    @Test func theNumberOfSessionsIsCappedAndTheLeastRecentlyUsedMakesRoom() async throws {
        let sessions = makeSessions(limits: .init(maxSessions: 2))
        let first = try await sessions.open()
        let second = try await sessions.open()
        // Using the first makes the second the least recently used.
        #expect(await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, session: first), scope: .all).statusCode == 200)
        let third = try await sessions.open()
        #expect(await sessions.count == 2)
        #expect(await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#, session: second), scope: .all).statusCode == 404)
        for id in [first, third] {
            #expect(await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#, session: id), scope: .all).statusCode == 200)
        }
    }

    @Test func idleSessionsExpire() async throws {
        let sessions = makeSessions(limits: .init(idleTimeout: .milliseconds(100)))
        let id = try await sessions.open()
        try await Task.sleep(for: .milliseconds(250))
        #expect(await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, session: id), scope: .all).statusCode == 404)
        #expect(await sessions.count == 0)
    }

    @Test(.timeLimit(.minutes(1))) func requestsUnderWayAreBoundedAndNeverShareAnID() async throws {
        let workspace = FakeWorkspace(execGateOpen: false)
        let sessions = makeSessions(workspace, limits: .init(maxSessions: 1, maxRequestsInFlight: 2))
        let id = try await sessions.open()
        let slow = #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"exec","arguments":{"workspace":"demo","command":"echo slow"}}}"#
        async let held = sessions.handle(mcpRequest(slow, session: id), scope: .all)
        while workspace.execCount < 1 { try await Task.sleep(for: .milliseconds(5)) }
        // The same id again while the first is under way.
        #expect(await sessions.handle(mcpRequest(slow, session: id), scope: .all).statusCode == 409)
        let other = #"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"exec","arguments":{"workspace":"demo","command":"echo other"}}}"#
        async let second = sessions.handle(mcpRequest(other, session: id), scope: .all)
        while workspace.execCount < 2 { try await Task.sleep(for: .milliseconds(5)) }
        // Two under way is this session's limit.
        #expect(await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#, session: id), scope: .all).statusCode == 429)
        // A busy session is not displaced: with every place taken, a new one is refused (503).
        #expect(await sessions.handle(mcpRequest(initializeBody), scope: .all).statusCode == 503)
        workspace.execGateOpen.withLock { $0 = true }
        let (first, next) = await (held, second)
        #expect(json(first)?["result"]?["structuredContent"]?["stdout"] == "slow\n")
        #expect(json(next)?["result"]?["structuredContent"]?["stdout"] == "other\n")
        #expect(await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#, session: id), scope: .all).statusCode == 200)
    }

    @Test(.timeLimit(.minutes(1))) func aCancelledRequestIsAnsweredAndNoneWaitsPastTheDeadline() async throws {
        let workspace = FakeWorkspace(execGateOpen: false)
        let sessions = makeSessions(workspace, limits: .init(maxRequestsInFlight: 1, requestDeadline: .seconds(50)))
        let id = try await sessions.open()
        let slow = #"{"jsonrpc":"2.0","id":"s1","method":"tools/call","params":{"name":"exec","arguments":{"workspace":"demo","command":"echo slow"}}}"#
        async let held = sessions.handle(mcpRequest(slow, session: id), scope: .all)
        while workspace.execCount < 1 { try await Task.sleep(for: .milliseconds(5)) }
        let cancel = #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"s1","reason":"user"}}"#
        // A notification gets through to a session at its limit of requests under way.
        #expect(await sessions.handle(mcpRequest(cancel, session: id), scope: .all).statusCode == 202)
        let cancelled = await held
        #expect(json(cancelled)?["id"] == "s1")
        #expect(json(cancelled)?["error"]?["code"] == .number(-32800))

        // A request whose reply never comes (the fake's exec is still held) is answered at the deadline.
        let impatient = makeSessions(workspace, limits: .init(maxRequestsInFlight: 1, requestDeadline: .milliseconds(300)))
        let other = try await impatient.open()
        let started = ContinuousClock.now
        let stuck = await impatient.handle(
            mcpRequest(#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"exec","arguments":{"workspace":"demo","command":"echo x"}}}"#, session: other),
            scope: .all)
        #expect(json(stuck)?["id"] == 5 && json(stuck)?["error"]?["code"] == .number(-32001))
        #expect(ContinuousClock.now - started < .seconds(30))
        workspace.execGateOpen.withLock { $0 = true }
        // Nothing is left under way: the sessions take requests again.
        #expect(await sessions.handle(mcpRequest(#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#, session: id), scope: .all).statusCode == 200)
        #expect(await impatient.handle(mcpRequest(#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#, session: other), scope: .all).statusCode == 200)
    }
}
