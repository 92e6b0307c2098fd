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
            let plain = try decode(AgentInstallResult.self, try await client.execute(uri: "/v1/agents/mock/install", method: .post))
            #expect(plain.source == "built-in")
            let streamed = try await client.execute(uri: "/v1/agents/mock/install?stream=true", method: .post)
            #expect(streamed.headers[.contentType] == "text/event-stream")
            let text = String(buffer: streamed.body)
            #expect(text.contains("event: progress\ndata: {\"line\":\"mock needs no installation\"}") && text.contains("event: result"), "\(text)")
            let unknown = try await client.execute(uri: "/v1/agents/nobody/install", method: .post)
            #expect(try expectProblem(unknown, .notFound).contains("unknown agent"))
            let unknownStreamed = String(buffer: try await client.execute(uri: "/v1/agents/nobody/install?stream=yes-please", method: .post).body)
            #expect(unknownStreamed.contains("stream must be true or false"))
        }
    }
}
