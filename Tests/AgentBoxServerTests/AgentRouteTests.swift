import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Agent routes")
struct AgentRouteTests {
    @Test func listInstallAndStreamedProgress() async throws {
        try await withServer { client, _ in
            let list = try decode(AgentList.self, try await client.execute(uri: "/v1/agents", method: .get))
            #expect(Set(list.items.map(\.id)) == ["mock", "claude", "codex", "amp", "opencode", "gemini", "pi"])
            #expect(list.items.allSatisfy { $0.protocol == "acp" })
            // Agents published only where AgentBox cannot fetch from say so, and why (unless the host's PATH has them).
            for id in ["opencode", "gemini", "pi"] {
                let agent = try #require(list.items.first { $0.id == id })
                if !agent.installed && agent.installable == false {
                    #expect(agent.notInstallableReason?.contains("npm") == true && agent.notInstallableReason?.contains("--agent-url") == true)
                }
            }
            #expect(list.items.first { $0.id == "claude" }?.installable != false, "Claude Code comes from a PyPI wheel")
            #expect(list.items.first { $0.id == "amp" }?.limitation?.contains("Amp's own service") == true)
            let plain = try decode(AgentInstallResult.self, try await client.execute(uri: "/v1/agents/mock/install", method: .post))
            #expect(plain.source == "built-in")
            let streamed = try await client.execute(uri: "/v1/agents/mock/install?stream=true", method: .post)
            #expect(streamed.headers[.contentType] == "text/event-stream")
            let text = String(buffer: streamed.body)
            #expect(text.contains("event: progress\ndata: {\"line\":\"mock needs no installation\",\"phase\":\"check\"}") && text.contains("event: done"), "\(text)")
            // Accept: text/event-stream streams too (the contract's way), without ?stream.
            let accepted = try await client.execute(uri: "/v1/agents/mock/install", method: .post, headers: [.accept: "text/event-stream"])
            #expect(accepted.headers[.contentType] == "text/event-stream" && String(buffer: accepted.body).contains("event: done"))
            let details = try decode(AgentDetails.self, try await client.execute(uri: "/v1/agents/mock", method: .get))
            #expect(details.id == "mock" && !details.credentialsAvailable && !details.credentials.needed && details.installSources.isEmpty)
            let badBody = try await client.execute(
                uri: "/v1/agents/mock/install", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: #"{"version":1}"#))
            #expect(badBody.status == .badRequest)
            let unknown = try await client.execute(uri: "/v1/agents/nobody/install", method: .post)
            #expect(try expectProblem(unknown, .notFound).contains("unknown agent"))
            let unknownStreamed = String(buffer: try await client.execute(uri: "/v1/agents/nobody/install?stream=yes-please", method: .post).body)
            #expect(unknownStreamed.contains("stream must be true or false"))
        }
    }
}
