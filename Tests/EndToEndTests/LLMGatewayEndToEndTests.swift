import AgentBoxAPI
import AgentBoxClient
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The real keys of these tests' gateways: they must never be seen inside a workspace, in the store or in a log.
let realAnthropicKey = "sk-ant-real-key-e2e-0123456789"
let realOpenAIKey = "sk-openai-real-key-e2e-9876543210"

/// A server whose LLM gateway forwards both providers to a scripted model server, with the real keys from a key file.
func withGatewayServer(
    script: String, prepare: (URL) throws -> Void = { _ in }, _ body: (ServerProcess, AgentBoxClient, ModelServerProcess, URL) async throws -> Void
) async throws {
    try await withTemporaryDirectory { data in
        try prepare(data)
        let modelServer = try await ModelServerProcess(script: script, directory: data.deletingLastPathComponent())
        let keyFile = data.deletingLastPathComponent().appendingPathComponent("keys-\(UUID())")
        try "# the gateway's real keys\nanthropic=\(realAnthropicKey)\nOPENAI_API_KEY=\(realOpenAIKey)\n".write(to: keyFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: keyFile) }
        let upstream = "http://127.0.0.1:\(modelServer.port)"
        let server = try await ServerProcess.start(
            dataDirectory: data,
            extraArguments: ["--llm-upstream", "anthropic=\(upstream)", "--llm-upstream", "openai=\(upstream)", "--llm-key-file", keyFile.path])
        let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
        try await body(server, client, modelServer, data)
        await server.stop()
        // The real keys went upstream only: not into the database (or its WAL), not into the server's log.
        for name in ["agentbox.sqlite", "agentbox.sqlite-wal"] {
            let bytes = (try? Data(contentsOf: data.appendingPathComponent(name))) ?? Data()
            #expect(bytes.range(of: Data(realAnthropicKey.utf8)) == nil && bytes.range(of: Data(realOpenAIKey.utf8)) == nil, "\(name) holds a key")
        }
        #expect(!server.log.contains(realAnthropicKey) && !server.log.contains(realOpenAIKey))
    }
}

@Suite("The LLM gateway", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(4)))
struct LLMGatewayEndToEndTests {
    /// From inside a workspace whose egress is denied: both providers' APIs, streaming and not, with the workspace's
    /// own key; budgets and models enforced before anything goes upstream; usage counted from what the provider
    /// reports; a key that dies with its workspace; the real keys nowhere in the workspace.
    @Test func curlFromAWorkspaceWithEgressDenied() async throws {
        try await withGatewayServer(script: #"{"turns": [], "finalText": "hello from the model", "sideText": "side"}"#) { server, client, _, _ in
            _ = try await client.putWorkspace(
                "gw", config: WorkspaceConfig(llm: LLMBudget(maxRequests: 4, models: ["claude-x", "gpt-x"])))
            let tools = #""tools":[{"name":"t","input_schema":{"type":"object"}}]"#
            func curl(_ provider: String, _ path: String, _ body: String, key: String = "$KEY", extra: String = "") async throws -> ExecResult {
                let base = provider == "anthropic" ? "$ANTHROPIC_BASE_URL" : "$OPENAI_BASE_URL"
                let keyVariable = provider == "anthropic" ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY"
                let header = provider == "anthropic" ? "x-api-key: \(key)" : "authorization: Bearer \(key)"
                try await client.writeFile("gw", path: "/workspace/body.json", data: Data(body.utf8))
                return try await client.exec(
                    "gw",
                    ExecRequest(command: "KEY=$\(keyVariable); curl -s -S -i \(extra) -H \"\(header)\" -H 'content-type: application/json' --data-binary @/workspace/body.json \(base)\(path)"))
            }
            // Anthropic, not streaming and streaming.
            let plain = try await curl("anthropic", "/v1/messages", #"{"model":"claude-x","max_tokens":10,\#(tools),"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(plain.stdout.hasPrefix("HTTP/1.1 200") && plain.stdout.contains("hello from the model"), "\(plain)")
            let streamed = try await curl("anthropic", "/v1/messages", #"{"model":"claude-x","max_tokens":10,"stream":true,\#(tools),"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(streamed.stdout.contains("text/event-stream") && streamed.stdout.contains("event: message_stop"), "\(streamed)")
            // OpenAI: Responses, and a streamed Chat Completion whose usage the gateway asks for.
            let responses = try await curl("openai", "/responses", #"{"model":"gpt-x","input":"hi","tools":[{"type":"function","name":"f","parameters":{"type":"object"}}]}"#)
            #expect(responses.stdout.hasPrefix("HTTP/1.1 200") && responses.stdout.contains("hello from the model"), "\(responses)")
            let chat = try await curl(
                "openai", "/chat/completions",
                #"{"model":"gpt-x","stream":true,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}"#)
            #expect(chat.stdout.contains("data: [DONE]") && chat.stdout.contains(#""usage""#), "\(chat)")
            // Refusals, in each provider's format, before anything goes upstream.
            let over = try await curl("anthropic", "/v1/messages", #"{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(over.stdout.hasPrefix("HTTP/1.1 429") && over.stdout.lowercased().contains("x-should-retry: false") && over.stdout.contains(#""type":"rate_limit_error""#), "\(over)")
            let quota = try await curl("openai", "/responses", #"{"model":"gpt-x","input":"hi"}"#)
            #expect(quota.stdout.hasPrefix("HTTP/1.1 429") && quota.stdout.contains(#""code":"insufficient_quota""#), "\(quota)")
            let model = try await curl("anthropic", "/v1/messages", #"{"model":"claude-opus-other","max_tokens":10,"messages":[]}"#)
            #expect(model.stdout.hasPrefix("HTTP/1.1 403") && model.stdout.contains("permission_error"), "\(model)")
            let forged = try await curl("anthropic", "/v1/messages", #"{"model":"claude-x"}"#, key: "abx-llm-Z3c.x.AAAA")
            #expect(forged.stdout.hasPrefix("HTTP/1.1 401") && forged.stdout.contains("authentication_error"), "\(forged)")
            // Another workspace's key, however this one learned it, is refused by this workspace's proxy.
            _ = try await client.putWorkspace("gw-other")
            let otherKey = try await client.exec("gw-other", ExecRequest(command: "printf %s \"$ANTHROPIC_API_KEY\"")).stdout
            #expect(otherKey.hasPrefix("abx-llm-"))
            let borrowed = try await curl("anthropic", "/v1/messages", #"{"model":"claude-x"}"#, key: otherKey)
            #expect(borrowed.stdout.hasPrefix("HTTP/1.1 403") && borrowed.stdout.contains("belongs to another workspace"), "\(borrowed)")
            // Its own key beside it, in the header the gateway reads second, changes nothing.
            let beside = try await curl("anthropic", "/v1/messages", #"{"model":"claude-x"}"#, key: otherKey, extra: "-H \"authorization: Bearer $KEY\"")
            #expect(beside.stdout.hasPrefix("HTTP/1.1 403"), "\(beside)")
            let unknown = try await curl("anthropic", "/v1/complete", #"{"model":"claude-x"}"#)
            // A path the gateway does not serve is no route at all: like any unknown route, it says no more than 401.
            #expect(unknown.stdout.hasPrefix("HTTP/1.1 401"), "\(unknown)")

            // The figures: four requests, the tokens the model server reported (10 in, 10 out each), by model.
            let usage = try await client.workspaceUsage("gw")
            #expect(usage.llm.requests == 4 && usage.llm.inputTokens == 40 && usage.llm.outputTokens == 40, "\(usage)")
            #expect(usage.llm.byModel["claude-x"]?.requests == 2 && usage.llm.byModel["gpt-x"]?.requests == 2, "\(usage.llm.byModel)")
            #expect(usage.budget?.maxRequests == 4)
            let metrics = try await client.serverMetrics()
            #expect(metrics.contains(#"agentbox_llm_requests_total{outcome="forwarded"} 4\#n"#), "\(metrics.prefix(3000))")
            #expect(metrics.contains(#"agentbox_llm_tokens_total{kind="output"} 40\#n"#))

            // Only the gateway's paths are open on the server's port; its API and dot segments are not.
            let api = try await client.exec(
                "gw",
                ExecRequest(command: "curl -s -o /dev/null -w '%{http_code} ' http://host.agentbox.internal:\(server.port)/v1/workspaces; curl -s -o /dev/null -w '%{http_code}' --path-as-is http://host.agentbox.internal:\(server.port)/llm/../v1/workspaces"))
            #expect(api.stdout == "403 403", "\(api)")
            // The real keys are nowhere in the workspace: not in its files, not in any process's environment.
            let search = try await client.exec(
                "gw", ExecRequest(command: "grep -rsl -e '\(realAnthropicKey)' -e '\(realOpenAIKey)' /workspace /home /tmp /etc /proc/*/environ; echo done"))
            #expect(search.stdout == "done\n", "\(search)")

            // A budget given again replaces the old at once; `{}` removes it.
            _ = try await client.putWorkspace("gw", config: WorkspaceConfig(llm: LLMBudget()))
            #expect(try await client.workspace("gw").llm == nil)
            let free = try await curl("anthropic", "/v1/messages", #"{"model":"any-model","max_tokens":10,\#(tools),"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(free.stdout.hasPrefix("HTTP/1.1 200"), "\(free)")

            // A key dies with its workspace: the same key made again has a new id, and the old key is refused.
            let old = try await client.exec("gw", ExecRequest(command: "printf %s \"$ANTHROPIC_API_KEY\"")).stdout
            try await client.deleteWorkspace("gw")
            _ = try await client.putWorkspace("gw")
            var request = HTTPClientRequest(url: server.endpoint.absoluteString + "/llm/anthropic/v1/messages")
            request.method = .POST
            request.headers.add(name: "x-api-key", value: old)
            request.body = .bytes(ByteBuffer(string: #"{"model":"claude-x"}"#))
            let refused = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(refused.status.code == 401)
            #expect(try await client.workspaceUsage("gw").llm == LLMUsage(), "a new workspace starts from nothing")
        }
    }
}

@Suite("Real agents through the LLM gateway", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(4)))
struct LLMGatewayAgentTests {
    /// Claude Code and Codex, given no key and no base URL, talk to their provider through the gateway (egress denied):
    /// a turn that runs a command completes, its tokens show in the session and in /usage; then a budget set to what
    /// was used ends the next turn at once with an error that says so, not a hang.
    @Test(arguments: ["claude", "codex"])
    func anAgentTalksToItsProviderOnlyThroughTheGateway(agent: String) async throws {
        guard isInstalled(agent) else { return }
        let script =
            agent == "claude"
            ? #"{"turns": [{"match": "list", "text": "Listing.", "toolCalls": [{"name": "Bash", "input": {"command": "ls /workspace", "description": "List"}}]}, {"text": "Listed through the gateway."}], "sideText": "ok"}"#
            : #"{"turns": [{"match": "list", "text": "Listing.", "toolCalls": [{"name": "exec_command", "input": {"cmd": "ls /workspace", "yield_time_ms": 1000, "tty": false}}]}, {"text": "Listed through the gateway."}], "sideText": "ok"}"#
        try await withGatewayServer(script: script, prepare: { try provideInstalledAgent(agent, dataDirectory: $0) }) { server, client, _, data in
            #expect(try await client.installAgent(agent).source == "installed")
            _ = try await client.putWorkspace(agent)
            let session = try await client.createSession(agent, SessionCreateRequest(agent: agent, model: agent == "codex" ? "scripted" : nil))
            func turn(_ text: String) async throws -> [SessionEvent] { try await promptAndFollow(client, agent, session.id, text) }
            let first = try await turn("list the files")
            #expect(first.last?.payload["stopReason"] == "end_turn", "\(first.map(\.type))")
            let said = first.filter { $0.type == "agent_message_chunk" }.compactMap { $0.payload["update"]?["content"]?["text"]?.stringValue }.joined()
            #expect(said.contains("Listed through the gateway."), "\(said)")
            let usage = try await client.workspaceUsage(agent)
            #expect(usage.llm.requests >= 2 && usage.llm.outputTokens >= 20, "\(usage)")
            let figures = try #require(try await client.session(agent, session.id).usage, "the session shows its usage")
            #expect(figures == usage.llm.bySession[session.id] && figures.requests >= 2)

            // The budget is now what was used: the next turn is refused upstream-free and ends with an error, quickly.
            _ = try await client.putWorkspace(agent, config: WorkspaceConfig(llm: LLMBudget(maxRequests: usage.llm.requests)))
            let started = ContinuousClock.now
            let refused = try await turn("list again")
            #expect(refused.last?.payload["stopReason"] == "error" || refused.contains { $0.type == "error" || $0.type == "agent_message_chunk" })
            #expect(ContinuousClock.now - started < .seconds(60), "no retry loop against the budget")
            let text = refused.map(\.payload.jsonText).joined(separator: "\n")
            // Claude Code quotes the gateway's message; Codex reads OpenAI's insufficient_quota as its own "Quota exceeded".
            #expect(text.contains("budget") || text.contains("Quota exceeded"), "the agent or the turn's end names the budget: \(refused.map(\.type)) \(text.suffix(2000))")
            #expect(try await client.workspaceUsage(agent).llm.requests == usage.llm.requests, "nothing more went upstream")
        }
    }
}
