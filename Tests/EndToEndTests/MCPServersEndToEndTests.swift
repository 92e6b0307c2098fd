import AgentBoxAPI
import AgentBoxClient
import Foundation
import Testing

/// The tests' stdio MCP server (standard library Python), written into each workspace.
let mcpFixtureServer = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Support/mcp_stdio_server.py")

/// The fixture as ACP names it: stdio, with an env variable that its tool answers with.
let mcpFixtureEntry: JSONValue = [
    "name": "fixture", "command": "/usr/bin/python3", "args": ["/workspace/mcp_stdio_server.py"],
    "env": [["name": "FIXTURE_GREETING", "value": "hello-from-env"]],
]

/// One turn that must call an MCP tool: the `tool_call` titled `title` (kind `other`) ends `completed` with a result
/// containing `result`, and the tool left `file` holding `content`.
struct ExpectedMCPCall {
    var prompt: String
    var title: String
    var result: String
    var file: String
    var content: String

    /// The fixture's `stamp` tool, called with `text`.
    static func stamp(_ text: String, prompt: String) -> ExpectedMCPCall {
        ExpectedMCPCall(
            prompt: prompt, title: "fixture/stamp", result: "stamped \(text), greeting hello-from-env", file: "/workspace/mcp-stamp.txt",
            content: "\(text) hello-from-env\n")
    }
}

/// A session's `mcpServers` reach the agent in its own configuration format, and the agent calls the server's tool:
/// the fixture server is written into the workspace, the session names `servers`, and the (scripted) model calls a
/// tool; each permission question is answered through the API. With `afterResume`, the server restarts and the
/// resumed session (`session/load`, with the same servers) calls a tool again.
func exerciseMCPServers(
    _ agent: String, script: String? = nil, model: String? = nil, env: @escaping (Int) -> [String: String] = { _ in [:] },
    servers: (_ agentBoxPort: Int, _ token: String) -> [JSONValue] = { _, _ in [mcpFixtureEntry] }, reachAgentBox: Bool = false,
    asksPermission: Bool, first: ExpectedMCPCall, afterResume: ExpectedMCPCall? = nil
) async throws {
    try await withTemporaryDirectory { data in
        if agent != "mock" { try provideInstalledAgent(agent, dataDirectory: data) }
        var modelServer: ModelServerProcess?
        if let script { modelServer = try await ModelServerProcess(script: script, directory: data.deletingLastPathComponent()) }
        var server = try await ServerProcess.start(dataDirectory: data)
        var client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
        if agent != "mock" { #expect(try await client.installAgent(agent).source == "installed") }
        var egress = modelServer.map { ["host.agentbox.internal:\($0.port)"] } ?? []
        if reachAgentBox { egress.append("host.agentbox.internal:\(server.port)") }
        _ = try await client.putWorkspace(agent, config: WorkspaceConfig(network: NetworkPolicy(egress: .allowList(egress))))
        _ = try await client.writeFile(agent, path: "/workspace/mcp_stdio_server.py", data: try Data(contentsOf: mcpFixtureServer))
        let variables = env(modelServer?.port ?? 0)
        // A malformed entry is refused at creation (the adapters' own check, run by the server first), naming the entry.
        let refused = await #expect(throws: AgentBoxClientError.self) {
            _ = try await client.createSession(agent, SessionCreateRequest(agent: agent, env: variables, mcpServers: [["name": "broken"]], model: model))
        }
        #expect(refused?.status == 400 && refused?.problem.detail.contains("mcpServers[0] ('broken') has no command") == true, "\(String(describing: refused))")
        let session = try await client.createSession(
            agent, SessionCreateRequest(agent: agent, env: variables, mcpServers: servers(server.port, server.token!), model: model))
        #expect(session.agentRunning)

        func turn(_ expected: ExpectedMCPCall, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let events = try await promptAndFollow(client, agent, session.id, expected.prompt)
            #expect(events.last?.payload["stopReason"] == "end_turn", "\(events.map(\.type)) \(events.last?.payload.jsonText ?? "")", sourceLocation: sourceLocation)
            let calls = events.filter { $0.type == "tool_call" }.compactMap { $0.payload["update"] }
            let call = calls.first { $0["title"]?.stringValue == expected.title }
            #expect(call?["kind"] == "other", "\(calls.map(\.jsonText))", sourceLocation: sourceLocation)
            let results = events.filter { $0.type == "tool_call_update" }.compactMap { $0.payload["update"] }
                .filter { $0["toolCallId"] != nil && $0["toolCallId"] == call?["toolCallId"] }
            #expect(results.last?["status"] == "completed", "\(results.map(\.jsonText))", sourceLocation: sourceLocation)
            let text: String =
                if case .array(let parts)? = results.last?["content"] { parts.compactMap { $0["content"]?["text"]?.stringValue }.joined() } else { "" }
            #expect(text.contains(expected.result), "\(text)", sourceLocation: sourceLocation)
            // Claude Code and Codex ask before an MCP tool; the question is about that call (same id and title).
            let questions = events.filter { $0.type == "permission_request" }.compactMap { $0.payload["toolCall"] }
            if asksPermission {
                #expect(questions.contains { $0["toolCallId"] == call?["toolCallId"] && $0["title"]?.stringValue == expected.title }, "\(questions.map(\.jsonText))", sourceLocation: sourceLocation)
            } else {
                #expect(questions.isEmpty, "\(questions.map(\.jsonText))", sourceLocation: sourceLocation)
            }
            let written = try await client.readFileData(agent, path: expected.file)
            #expect(String(decoding: written, as: UTF8.self) == expected.content, sourceLocation: sourceLocation)
        }

        try await turn(first)
        if let afterResume {
            await server.stop()
            server = try await ServerProcess.start(dataDirectory: data, uidBase: server.uidBase)
            client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let resumed = try await client.resumeSession(agent, session.id, env: variables)
            #expect(resumed.agentRunning)
            try await turn(afterResume)
            let all = try await client.sessionEventPage(agent, session.id, after: 0, limit: 1000).items
            #expect(all.filter { $0.type == "agent_started" }.last?.payload["method"] == "load")
        }
        await server.stop()
    }
}

@Suite("A session's MCP servers reach the agent", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(4)))
struct MCPServersEndToEndTests {
    /// The mock agent stands for any ACP agent: it is itself the MCP client of the stdio server, in `session/new`
    /// and in `session/load`.
    @Test func theMockAgentCallsAStdioServer() async throws {
        try await exerciseMCPServers(
            "mock", asksPermission: false, first: .stamp("from-mock", prompt: #"mcp fixture stamp {"text": "from-mock"}"#),
            afterResume: .stamp("mock-again", prompt: #"mcp fixture stamp {"text": "mock-again"}"#))
    }

    /// Claude Code gets the server through `--mcp-config` and shows its tool to the model as `mcp__fixture__stamp`.
    @Test(.enabled(if: isInstalled("claude"), "needs scripts/setup-agents.sh"))
    func claudeCodeCallsAStdioServer() async throws {
        try await exerciseMCPServers(
            "claude",
            script: #"""
                {"turns": [
                  {"match": "stamp", "text": "Stamping.", "toolCalls": [{"name": "mcp__fixture__stamp", "input": {"text": "from-claude"}}]},
                  {"text": "Stamped."},
                  {"match": "again", "toolCalls": [{"name": "mcp__fixture__stamp", "input": {"text": "claude-again"}}]},
                  {"text": "Stamped again."}
                ], "sideText": "ok"}
                """#,
            env: { ["ANTHROPIC_BASE_URL": "http://host.agentbox.internal:\($0)", "ANTHROPIC_API_KEY": "sk-offline"] },
            asksPermission: true, first: .stamp("from-claude", prompt: "stamp please"), afterResume: .stamp("claude-again", prompt: "again"))
    }

    /// Codex gets the server as its thread's `mcp_servers` config and offers its tools to the model in a Responses
    /// tool namespace: `stamp` in namespace `mcp__fixture`. It asks before the call with an MCP elicitation.
    @Test(.enabled(if: isInstalled("codex"), "needs scripts/setup-agents.sh"))
    func codexCallsAStdioServer() async throws {
        try await exerciseMCPServers(
            "codex",
            script: #"""
                {"turns": [
                  {"match": "stamp", "text": "Stamping.", "toolCalls": [{"namespace": "mcp__fixture", "name": "stamp", "input": {"text": "from-codex"}}]},
                  {"text": "Stamped."},
                  {"match": "again", "toolCalls": [{"namespace": "mcp__fixture", "name": "stamp", "input": {"text": "codex-again"}}]},
                  {"text": "Stamped again."}
                ], "sideText": "ok"}
                """#,
            model: "scripted", env: { ["OPENAI_BASE_URL": "http://host.agentbox.internal:\($0)/v1", "OPENAI_API_KEY": "sk-offline"] },
            asksPermission: true, first: .stamp("from-codex", prompt: "stamp please"), afterResume: .stamp("codex-again", prompt: "again"))
    }

    /// An http server: AgentBox's own MCP endpoint, reached from the workspace through the egress proxy with the
    /// server's token as a header; the model writes a file with its `write_file` tool.
    @Test(arguments: ["claude", "codex"])
    func anHTTPServer(agent: String) async throws {
        guard isInstalled(agent) else { return }
        let codex = agent == "codex"
        let call = codex ? #""namespace": "mcp__agentbox", "name": "write_file""# : #""name": "mcp__agentbox__write_file""#
        try await exerciseMCPServers(
            agent,
            script: #"""
                {"turns": [
                  {"match": "write", "toolCalls": [{\#(call), "input": {"workspace": "\#(agent)", "path": "/workspace/over-http.txt", "content": "written over http\n"}}]},
                  {"text": "Written."}
                ], "sideText": "ok"}
                """#,
            model: codex ? "scripted" : nil,
            env: { port in
                codex
                    ? ["OPENAI_BASE_URL": "http://host.agentbox.internal:\(port)/v1", "OPENAI_API_KEY": "sk-offline"]
                    : ["ANTHROPIC_BASE_URL": "http://host.agentbox.internal:\(port)", "ANTHROPIC_API_KEY": "sk-offline"]
            },
            servers: { port, token in
                [["type": "http", "name": "agentbox", "url": .string("http://host.agentbox.internal:\(port)/v1/mcp"),
                  "headers": [["name": "Authorization", "value": .string("Bearer \(token)")]]]]
            },
            reachAgentBox: true, asksPermission: true,
            first: ExpectedMCPCall(
                prompt: "write it", title: "agentbox/write_file", result: "bytesWritten", file: "/workspace/over-http.txt", content: "written over http\n"))
    }
}

@Suite("The workspace's toolkits are every session's MCP tools", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(4)))
struct ToolkitMCPEndToEndTests {
    /// A toolkit attached to the workspace reaches each agent as the `agentbox-toolkits` MCP server with no
    /// `mcpServers` given: the model calls `web_search`, the host's webhook answers, and the call is recorded with the
    /// session's id.
    @Test(arguments: ["mock", "claude", "codex"])
    func anAgentCallsAToolkitToolOverMCP(agent: String) async throws {
        guard agent == "mock" || isInstalled(agent) else { return }
        let call =
            switch agent {
            case "codex": #"{"namespace": "mcp__agentbox_toolkits", "name": "web_search", "input": {"query": "from-\#(agent)"}}"#
            default: #"{"name": "mcp__agentbox-toolkits__web_search", "input": {"query": "from-\#(agent)"}}"#
            }
        let script = #"{"turns": [{"match": "search", "toolCalls": [\#(call)]}, {"text": "Searched."}], "sideText": "ok"}"#
        try await ToolkitEndToEndTests.withWebhook { hookPort in
            try await withTemporaryDirectory { data in
                if agent != "mock" { try provideInstalledAgent(agent, dataDirectory: data) }
                let modelServer = agent == "mock" ? nil : try await ModelServerProcess(script: script, directory: data.deletingLastPathComponent())
                let server = try await ServerProcess.start(dataDirectory: data)
                let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
                if agent != "mock" { #expect(try await client.installAgent(agent).source == "installed") }
                _ = try await client.putToolkit(
                    "web",
                    ToolkitRequest(
                        description: "Web tools.",
                        tools: [
                            ToolDefinition(
                                name: "search", description: "Search the web",
                                inputSchema: ToolkitEndToEndTests.object(["query": ["type": "string"]], required: ["query"]),
                                handler: .http(HTTPToolHandler(url: "http://127.0.0.1:\(hookPort)/hook")))
                        ]))
                let egress = modelServer.map { ["host.agentbox.internal:\($0.port)"] } ?? []
                _ = try await client.putWorkspace(agent, config: WorkspaceConfig(network: NetworkPolicy(egress: .allowList(egress)), toolkits: ["web"]))
                let env: [String: String] =
                    switch agent {
                    case "claude": ["ANTHROPIC_BASE_URL": "http://host.agentbox.internal:\(modelServer!.port)", "ANTHROPIC_API_KEY": "sk-offline"]
                    case "codex": ["OPENAI_BASE_URL": "http://host.agentbox.internal:\(modelServer!.port)/v1", "OPENAI_API_KEY": "sk-offline"]
                    default: [:]
                    }
                let session = try await client.createSession(agent, SessionCreateRequest(agent: agent, env: env, model: agent == "codex" ? "scripted" : nil))
                let prompt = agent == "mock" ? #"mcp agentbox-toolkits web_search {"query": "from-mock"}"# : "search please"
                let events = try await promptAndFollow(client, agent, session.id, prompt)
                #expect(events.last?.payload["stopReason"] == "end_turn", "\(events.map(\.type))")
                let calls = events.filter { $0.type == "tool_call" }.compactMap { $0.payload["update"] }
                let toolCall = calls.first { $0["title"]?.stringValue == "agentbox-toolkits/web_search" }
                #expect(toolCall != nil, "\(calls.map(\.jsonText))")
                let results = events.filter { $0.type == "tool_call_update" }.compactMap { $0.payload["update"] }
                    .filter { $0["toolCallId"] != nil && $0["toolCallId"] == toolCall?["toolCallId"] }
                #expect(results.last?["status"] == "completed", "\(results.map(\.jsonText))")
                let recorded = try await client.toolCalls(agent).items
                #expect(recorded.count == 1 && recorded.first?.input == ["query": .string("from-\(agent)")], "\(recorded)")
                #expect(recorded.first?.sessionId == session.id, "the call names the session that made it")
                await server.stop()
            }
        }
    }
}
