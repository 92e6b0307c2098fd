import AgentBoxAPI
import AgentBoxClient
import Foundation
import Testing

/// Host toolkits against the real server and real sandboxes (egress denied): the `agentbox-{toolkit}` command inside
/// a workspace reaching a webhook on the host and a tool served by a Swift client, and what a workspace may not do.
@Suite("Toolkits end to end", .timeLimit(.minutes(3)), .enabled(if: canSandbox, "needs bubblewrap and root"))
struct ToolkitEndToEndTests {
    /// The webhook (Tests/Support/tool_webhook.py), on a free port; killed when `body` returns.
    static func withWebhook<T>(_ body: (Int) async throws -> T) async throws -> T {
        try await withPythonHelper("tool_webhook.py") { port, _ in try await body(port) }
    }

    static func object(_ properties: JSONValue, required: [String] = []) -> JSONValue {
        ["type": "object", "properties": properties, "required": .array(required.map { .string($0) })]
    }

    @Test func aWorkspaceCallsItsToolkitsAsCommandsAndNoOthers() async throws {
        try await withTemporaryDirectory { data in
            try await Self.withWebhook { port in
                let server = try await ServerProcess.start(dataDirectory: data)
                let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
                let hook = "http://127.0.0.1:\(port)/hook"
                let web = ToolkitRequest(
                    description: "Web tools",
                    tools: [
                        ToolDefinition(
                            name: "search", description: "Search the web",
                            inputSchema: Self.object(["query": ["type": "string"], "maxResults": ["type": "integer", "minimum": 1]], required: ["query"]),
                            handler: .http(HTTPToolHandler(url: hook, headers: ["Authorization": "Bearer host-secret"]))),
                        ToolDefinition(name: "fail", description: "Always fails", inputSchema: Self.object([:]), handler: .http(HTTPToolHandler(url: hook))),
                        ToolDefinition(
                            name: "slow", description: "Too slow", inputSchema: Self.object([:]), handler: .http(HTTPToolHandler(url: hook, timeoutMs: 300))),
                        ToolDefinition(
                            name: "ask", description: "Answered by a client", inputSchema: Self.object(["question": ["type": "string"]]),
                            handler: .client(ClientToolHandler(timeoutMs: 5000))),
                    ])
                let registered = try await client.putToolkit("web", web)
                #expect(registered.tools.allSatisfy {
                    if case .http(let handler) = $0.handler { handler.headers == nil } else { true }
                }, "the host's credentials are never shown")
                _ = try await client.putToolkit(
                    "secret", ToolkitRequest(description: "Not for everyone", tools: [ToolDefinition(name: "read", description: "x", inputSchema: Self.object([:]), handler: .http(HTTPToolHandler(url: hook)))]))
                _ = try await client.putWorkspace("tools", config: WorkspaceConfig(toolkits: ["web"]))
                _ = try await client.putWorkspace("plain")

                // A call through the command: JSON out, with egress denied (the default).
                let call = try await client.exec("tools", ExecRequest(command: "agentbox-web search --query 'swift nio' --max-results 3"))
                #expect(call.exitCode == 0, "\(call)")
                let output = try JSONValue.parse(call.stdout)
                #expect(output["echo"] == ["query": "swift nio", "maxResults": 3])
                #expect(output["workspace"] == "tools" && output["auth"] == "Bearer host-secret")
                let help = try await client.exec("tools", ExecRequest(command: "agentbox-web --help && agentbox-web search --help"))
                #expect(help.exitCode == 0 && help.stdout.contains("search") && help.stdout.contains("--max-results"), "\(help)")

                // Refusals: bad input never reaches the hook; failures and timeouts exit 1 with the reason.
                for (command, message) in [
                    ("agentbox-web search", "query"), ("agentbox-web search --query x --max-results 0", "maxResults"),
                    ("agentbox-web search --query x --max-results many", "integer"), ("agentbox-web nope", "unknown tool"),
                    ("agentbox-web fail", "500"), ("agentbox-web slow", "did not answer"),
                ] {
                    let result = try await client.exec("tools", ExecRequest(command: command))
                    #expect(result.exitCode == 1 && result.stderr.contains(message), "\(command): \(result)")
                }

                // A client tool, served by this test through the Swift client.
                let serving = Task {
                    try await client.serveToolkit("web") { call in ["answer": .string("yes to \(call.input["question"]?.stringValue ?? "")")] }
                }
                defer { serving.cancel() }
                var answered: ExecResult?
                for _ in 0..<50 {
                    let result = try await client.exec("tools", ExecRequest(command: "agentbox-web ask --question tea"))
                    if result.exitCode == 0 {
                        answered = result
                        break
                    }
                    try await Task.sleep(for: .milliseconds(100))  // until the client's stream is connected
                }
                #expect(try JSONValue.parse(try #require(answered).stdout)["answer"] == "yes to tea")

                // Another workspace has no such command; a forged command name reaches only this workspace's toolkits.
                let plain = try await client.exec("plain", ExecRequest(command: "agentbox-web search --query x"))
                #expect(plain.exitCode == 127, "\(plain)")
                let forged = try await client.exec(
                    "tools", ExecRequest(command: "ln -s \"$(readlink -f \"$(command -v agentbox-web)\")\" /tmp/agentbox-secret && /tmp/agentbox-secret read"))
                #expect(forged.exitCode == 1 && forged.stderr.contains("not attached"), "\(forged)")

                let calls = try await client.toolCalls("tools")
                #expect(calls.items.map(\.tool).contains("search") && calls.items.contains { $0.status == .timeout && $0.tool == "slow" })
                #expect(calls.items.allSatisfy { $0.toolkit == "web" }, "refused calls and forged names are not calls of another toolkit")
                #expect(try await client.toolCalls("plain").items.isEmpty)
                await server.stop()
            }
        }
    }

    /// The toolkits as an MCP server inside the workspace (`/.agentbox/bin/tool mcp`, which every session is given):
    /// list and call over MCP's stdio transport, errors as tool results, the session named in the record, a flood
    /// that costs only its own connection, and the briefing in a session's instructions.
    @Test func theToolkitsAreAnMCPServerInsideTheWorkspace() async throws {
        try await withTemporaryDirectory { data in
            try await Self.withWebhook { port in
                let server = try await ServerProcess.start(dataDirectory: data)
                let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
                let hook = "http://127.0.0.1:\(port)/hook"
                _ = try await client.putToolkit(
                    "web",
                    ToolkitRequest(
                        description: "Web tools for this project.",
                        tools: [
                            ToolDefinition(
                                name: "search", description: "Search the web",
                                inputSchema: Self.object(["query": ["type": "string"]], required: ["query"]), handler: .http(HTTPToolHandler(url: hook)))
                        ]))
                _ = try await client.putToolkit(
                    "secret", ToolkitRequest(description: "Not attached", tools: [ToolDefinition(name: "read", description: "x", inputSchema: Self.object([:]), handler: .http(HTTPToolHandler(url: hook)))]))
                _ = try await client.putWorkspace("tools", config: WorkspaceConfig(toolkits: ["web"]))
                _ = try await client.putWorkspace("plain")

                let messages: [JSONValue] = [
                    ["jsonrpc": "2.0", "id": 1, "method": "initialize", "params": ["protocolVersion": "2025-06-18", "capabilities": [:], "clientInfo": ["name": "test", "version": "1"]]],
                    ["jsonrpc": "2.0", "method": "notifications/initialized"],
                    ["jsonrpc": "2.0", "id": 2, "method": "tools/list"],
                    ["jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": ["name": "web_search", "arguments": ["query": "data: [1,2]\n"]]],
                    ["jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": ["name": "web_search", "arguments": [:]]],
                    ["jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": ["name": "secret_read", "arguments": [:]]],
                ]
                let input = messages.map(\.jsonText).joined(separator: "\n") + "\n"
                _ = try await client.writeFile("tools", path: "/workspace/mcp-in.jsonl", data: Data(input.utf8))
                // stdin ends at once: the answers of the calls still come (the server drains before it closes).
                let run = try await client.exec("tools", ExecRequest(command: "AGENTBOX_SESSION_ID=ses_mcptest /.agentbox/bin/tool mcp < /workspace/mcp-in.jsonl"))
                #expect(run.exitCode == 0, "\(run)")
                var answers: [Int: JSONValue] = [:]
                for line in run.stdout.split(separator: "\n") {
                    let message = try JSONValue.parse(String(line))
                    if case .number(let id)? = message["id"] { answers[Int(id)] = message }
                }
                #expect(answers[1]?["result"]?["serverInfo"]?["name"] == "agentbox-toolkits", "\(run.stdout)")
                #expect(answers[2]?["result"]?["tools"] == [["name": "web_search", "description": "Search the web", "inputSchema": Self.object(["query": ["type": "string"]], required: ["query"])]])
                let result = try #require(answers[3]?["result"], "\(run.stdout)")
                #expect(result["structuredContent"]?["echo"] == ["query": "data: [1,2]\n"], "strings reach the hook and come back exactly")
                #expect(result["isError"] == nil || result["isError"] == false)
                func errorText(_ id: Int) -> String? {
                    guard answers[id]?["result"]?["isError"] == true, case .array(let content)? = answers[id]?["result"]?["content"] else { return nil }
                    return content.first?["text"]?.stringValue
                }
                #expect(errorText(4)?.contains("query") == true, "\(run.stdout)")
                #expect(errorText(5)?.contains("not attached") == true, "\(run.stdout)")
                let calls = try await client.toolCalls("tools").items
                #expect(calls.count == 1 && calls.first?.sessionId == "ses_mcptest", "only the valid call reached the hook: \(calls)")

                // 8 MiB without a newline ends that connection only; the next one works.
                let flood = try await client.exec("tools", ExecRequest(command: "head -c 8388608 /dev/zero | tr '\\0' a | /.agentbox/bin/tool mcp | head -c 100; echo done"))
                #expect(flood.stdout.hasSuffix("done\n"), "\(flood)")
                let again = try await client.exec("tools", ExecRequest(command: "/.agentbox/bin/tool mcp < /workspace/mcp-in.jsonl | wc -l"))
                #expect(again.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "5", "\(again)")
                // A workspace without toolkits has no socket to reach.
                let plain = try await client.exec("plain", ExecRequest(command: "/.agentbox/bin/tool mcp < /dev/null"))
                #expect(plain.exitCode == 1 && plain.stderr.contains("cannot reach"), "\(plain)")

                // Sessions: the briefing comes before the first prompt (the mock agent says back what it is given),
                // unless turned off.
                for briefed in [true, false] {
                    let session = try await client.createSession("tools", SessionCreateRequest(agent: "mock", toolkitsInInstructions: briefed ? nil : false))
                    _ = try await client.prompt("tools", session.id, PromptRequest(text: "hello"))
                    let said = try await client.sessionEventPage("tools", session.id, limit: 1000).items
                        .filter { $0.type == "agent_message_chunk" }.compactMap { $0.payload["update"]?["content"]?["text"]?.stringValue }.joined()
                    let compact = said.filter { !$0.isWhitespace }
                    #expect(compact.contains("-web:Webtoolsforthisproject.Tools:search(Searchtheweb).") == briefed, "\(said)")
                    #expect(compact.contains("agentbox-toolkits") == briefed, "\(said)")
                }
                await server.stop()
            }
        }
    }
}
