import AgentBoxAPI
import AgentBoxClient
import Foundation
import Testing

/// A session's model and mode, live, with the mock agent in a real sandbox: offered on start, set between turns (at
/// once) and during a turn (from the next one), refused when not offered, kept across sleep, shown by the agent itself
/// (`whoami`), recorded as events, and listed in the agent's details.
@Suite("Session model and mode", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(3)))
struct SessionOptionsEndToEndTests {
    @Test func setBetweenAndDuringTurnsAndKeptAcrossSleep() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("opts")
            let created = try await client.createSession("opts", SessionCreateRequest(agent: "mock", mode: "plan"))
            let id = created.id
            #expect(created.mode == "plan" && created.model == "mock-fast", "\(created)")
            #expect(created.availableModels?.map(\.id) == ["mock-fast", "mock-smart"] && created.availableModes?.map(\.id) == ["default", "plan"])
            func whoami() async throws -> String {
                let events = try await promptAndFollow(client, "opts", id, "whoami")
                return events.filter { $0.type == "agent_message_chunk" }.compactMap { $0.payload["update"]?["content"]?["text"]?.stringValue }.joined()
            }
            #expect(try await whoami().contains("model: mock-fast, mode: plan"))

            // Between turns: at once, and as events.
            let smart = try await client.setSessionModel("opts", id, "mock-smart")
            #expect(smart.model == "mock-smart")
            #expect(try await whoami().contains("model: mock-smart, mode: plan"))
            let bad = await #expect(throws: AgentBoxClientError.self) { _ = try await client.setSessionModel("opts", id, "gpt-nothing") }
            #expect(bad?.status == 400 && bad?.problem.detail.contains("mock-fast, mock-smart") == true)
            await #expect(throws: AgentBoxClientError.self) { _ = try await client.setSessionMode("opts", id, "") }

            // During a turn: stored now, given to the agent before the next prompt.
            try await client.startPrompt("opts", id, PromptRequest(text: "long"))
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await client.setSessionMode("opts", id, "default").mode == "default")
            try await client.cancelTurn("opts", id)
            for _ in 0..<100 where try await client.session("opts", id).status == .running { try await Task.sleep(for: .milliseconds(100)) }
            #expect(try await whoami().contains("model: mock-smart, mode: default"))

            // Across sleep: the agent starts again with the session's model and mode.
            _ = try await client.sleepWorkspace("opts")
            #expect(try await whoami().contains("model: mock-smart, mode: default"))
            let events = try await client.sessionEventPage("opts", id, after: 0, limit: 1000).items.map(\.type)
            #expect(events.contains("model_changed") && events.contains("mode_changed") && events.contains("current_mode_update"))
            // The mock reports its turns' "tokens"; without the gateway, they are the session's usage.
            let counted = try await client.session("opts", id)
            #expect((counted.agentUsage?.requests ?? 0) >= 4 && (counted.agentUsage?.outputTokens ?? 0) > 0 && counted.usage == counted.agentUsage)
            let details = try await client.agent("mock")
            #expect(details.models.map(\.id) == ["mock-fast", "mock-smart"] && details.modes.map(\.id) == ["default", "plan"])
            await server.stop()
        }
    }

    /// A session's `env` lives in memory only. `resume` with different env starts the running agent again with it
    /// (it used to answer 200 and keep the old one until the next start); after a restart, the session refuses to
    /// start its agent without the env it lost (409 naming the variables) until `resume` gives env again.
    @Test func envReachesTheAgentAtOnceAndARestartAsksForItAgain() async throws {
        try await withTemporaryDirectory { data in
            var server = try await ServerProcess.start(dataDirectory: data)
            var client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("env")
            let id = try await client.createSession("env", SessionCreateRequest(agent: "mock", env: ["MOCK_KEY": "value-one-9c1f"])).id
            func getenv() async throws -> String {
                let events = try await promptAndFollow(client, "env", id, "getenv MOCK_KEY")
                return events.filter { $0.type == "agent_message_chunk" }.compactMap { $0.payload["update"]?["content"]?["text"]?.stringValue }.joined()
            }
            #expect(try await getenv().contains("MOCK_KEY=value-one-9c1f"))
            let resumed = try await client.resumeSession("env", id, env: ["MOCK_KEY": "value-two-9c1f", "MOCK_HIDDEN": "never-said-9c1f"])
            #expect(resumed.agentRunning)
            #expect(try await getenv().contains("MOCK_KEY=value-two-9c1f"))
            await server.stop()
            // The names are stored (to ask for them again), never the values (MOCK_KEY's are in the transcript, said by the agent).
            var stored = Data()
            for name in ["agentbox.sqlite", "agentbox.sqlite-wal"] { stored += (try? Data(contentsOf: data.appendingPathComponent(name))) ?? Data() }
            #expect(stored.range(of: Data("never-said-9c1f".utf8)) == nil && stored.range(of: Data("MOCK_HIDDEN".utf8)) != nil)
            server = try await ServerProcess.start(dataDirectory: data)
            client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let refused = await #expect(throws: AgentBoxClientError.self) { try await client.startPrompt("env", id, PromptRequest(text: "hi")) }
            #expect(refused?.status == 409 && refused?.problem.detail.contains("MOCK_HIDDEN, MOCK_KEY") == true, "\(String(describing: refused))")
            await #expect(throws: AgentBoxClientError.self) { _ = try await client.resumeSession("env", id) }
            _ = try await client.resumeSession("env", id, env: ["MOCK_KEY": "three"])
            #expect(try await getenv().contains("MOCK_KEY=three"))
            await server.stop()
        }
    }

    /// A model or mode the agent does not take fails the creation with a 400 that names what it offers, and leaves no
    /// session behind (it used to be created, showing the refused value as its own).
    @Test func createWithAModelOrModeTheAgentDoesNotTakeIsRefused() async throws {
        try await withTemporaryDirectory { data in
            var server = try await ServerProcess.start(dataDirectory: data)
            var client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("refuse")
            for request in [SessionCreateRequest(agent: "mock", model: "nope"), SessionCreateRequest(agent: "mock", mode: "nope")] {
                let error = await #expect(throws: AgentBoxClientError.self) { _ = try await client.createSession("refuse", request) }
                #expect(error?.status == 400, "\(String(describing: error))")
                #expect(error?.problem.detail.contains("nope") == true && error?.problem.detail.contains("offers") == true, "\(String(describing: error))")
            }
            #expect(try await client.sessions("refuse").items.isEmpty)
            // After a restart the agent does not run and has not said what it offers: a set starts it to know.
            let kept = try await client.createSession("refuse", SessionCreateRequest(agent: "mock"))
            await server.stop()
            server = try await ServerProcess.start(dataDirectory: data)
            client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let bogus = await #expect(throws: AgentBoxClientError.self) { _ = try await client.setSessionMode("refuse", kept.id, "bogus") }
            #expect(bogus?.status == 400 && bogus?.problem.detail.contains("default, plan") == true, "\(String(describing: bogus))")
            #expect(try await client.session("refuse", kept.id).mode == "default")
            #expect(try await client.setSessionMode("refuse", kept.id, "plan").mode == "plan")
            let good = try await client.createSession("refuse", SessionCreateRequest(agent: "mock", model: "mock-smart"))
            #expect(good.model == "mock-smart")
            await server.stop()
        }
    }
}
