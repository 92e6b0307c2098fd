import AgentBoxAPI
import AgentBoxStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AgentBox
@testable import AgentBoxServer

/// The gateway's routes with bad input: every refusal is the provider's own error format, before anything goes
/// upstream (the upstreams here are a closed port).
@Suite("LLM gateway routes")
struct LLMGatewayRouteTests {
    func withGateway(_ body: @Sendable (any TestClientProtocol, WorkspaceManager, LLMGateway) async throws -> Void) async throws {
        let gateway = Box<LLMGateway>()
        try await withServer(
            token: "t",
            configure: { configuration, directory in
                let closed = URL(string: "http://127.0.0.1:1")!
                let made = try LLMGateway(
                    upstreams: [.anthropic: LLMUpstream(url: closed, key: "sk-real"), .openai: LLMUpstream(url: closed, key: "sk-real")],
                    dataDirectory: directory)
                made.serverStarted(port: 2468)
                configuration.llmGateway = made
                gateway.value = made
            }
        ) { client, manager in try await body(client, manager, gateway.value!) }
    }

    final class Box<T>: @unchecked Sendable { var value: T? }

    @Test func refusalsAreInTheProvidersFormat() async throws {
        try await withGateway { client, manager, gateway in
            _ = try await manager.create(key: WorkspaceKey(rawValue: "w")!)
            let record = try #require(try await manager.store.workspace(key: WorkspaceKey(rawValue: "w")!))
            let key = gateway.key(workspace: record.key, id: record.id, session: nil)
            func post(_ path: String, key: String?, header: String = "x-api-key", _ body: ByteBuffer) async throws -> (HTTPResponse.Status, JSONValue?, TestResponse) {
                var headers: HTTPFields = [.contentType: "application/json"]
                if let key { headers[HTTPField.Name(header)!] = header == "authorization" ? "Bearer \(key)" : key }
                let response = try await client.execute(uri: path, method: .post, headers: headers, body: body)
                return (response.status, try? JSONValue.parse(Array(response.body.readableBytesView)), response)
            }
            let message = ByteBuffer(string: #"{"model":"m","max_tokens":1,"messages":[]}"#)
            // No key, a forged one, the server's own token: 401, Anthropic's shape and OpenAI's.
            for candidate in [nil, "abx-llm-dw.x.AAAA", "t", key + "x"] {
                let (status, body, _) = try await post("/llm/anthropic/v1/messages", key: candidate, message)
                #expect(status == .unauthorized && body?["error"]?["type"] == "authentication_error", "\(String(describing: candidate))")
            }
            let (openAIStatus, openAIBody, _) = try await post("/llm/openai/v1/responses", key: "nope", header: "authorization", message)
            #expect(openAIStatus == .unauthorized && openAIBody?["error"]?["code"] == "invalid_api_key")
            // A good key, a bad body: 400; too large: 413.
            let (badStatus, badBody, _) = try await post("/llm/anthropic/v1/messages", key: key, ByteBuffer(string: "not json"))
            #expect(badStatus == .badRequest && badBody?["error"]?["type"] == "invalid_request_error")
            let huge = ByteBuffer(repeating: 0x20, count: LLMGateway.maxRequestBytes + 1)
            let (hugeStatus, hugeBody, _) = try await post("/llm/anthropic/v1/messages", key: key, huge)
            #expect(hugeStatus == .contentTooLarge && hugeBody?["type"] == "error")
            // A good call to an upstream that is down: 502 in the provider's format.
            let (downStatus, downBody, _) = try await post("/llm/openai/v1/chat/completions", key: key, header: "authorization", message)
            #expect(downStatus == .badGateway && downBody?["error"]?["type"] == "server_error", "\(String(describing: downBody))")
            // The key of a deleted workspace is refused, even once the key is made again.
            try await manager.destroy(key: WorkspaceKey(rawValue: "w")!)
            _ = try await manager.create(key: WorkspaceKey(rawValue: "w")!)
            #expect(try await post("/llm/anthropic/v1/messages", key: key, message).0 == .unauthorized)
            // A flood of bad calls is answered, and the server goes on.
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<100 { group.addTask { try await post("/llm/anthropic/v1/messages", key: "abx-llm-x", message).0 } }
                for try await status in group { #expect(status == .unauthorized) }
            }
            #expect(try await client.execute(uri: "/v1/health", method: .get).status == .ok)
        }
    }

    @Test func keysNameTheirWorkspaceAndSessionAndNothingElseVerifies() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-keys-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let gateway = try LLMGateway(upstreams: [:], dataDirectory: directory)
        let key = gateway.key(workspace: WorkspaceKey(rawValue: "team-a")!, id: "id-1", session: "ses_1")
        let claim = try #require(LLMGateway.claim(key))
        #expect(claim.workspace == WorkspaceKey(rawValue: "team-a")! && claim.session == "ses_1")
        #expect(gateway.verify(claim, id: "id-1"))
        #expect(!gateway.verify(claim, id: "id-2"), "another workspace of the same key")
        let other = try #require(LLMGateway.claim(gateway.key(workspace: WorkspaceKey(rawValue: "team-a")!, id: "id-1", session: nil)))
        #expect(other.session == nil && gateway.verify(other, id: "id-1"))
        // Swapping the session of a key breaks it.
        let swapped = key.replacingOccurrences(of: ".ses_1.", with: ".ses_2.")
        #expect(!gateway.verify(try #require(LLMGateway.claim(swapped)), id: "id-1"))
        // The secret survives a restart (the same file); another server's does not verify.
        #expect(try LLMGateway(upstreams: [:], dataDirectory: directory).verify(claim, id: "id-1"))
        let elsewhere = directory.appendingPathComponent("other")
        #expect(!(try LLMGateway(upstreams: [:], dataDirectory: elsewhere).verify(claim, id: "id-1")))
        for text in ["", "abx-llm-", "abx-llm-a.b", "abx-llm-!!.x.y", "sk-real", String(repeating: "a", count: 600)] {
            #expect(LLMGateway.claim(text) == nil, "\(text.prefix(20))")
        }
    }
}
