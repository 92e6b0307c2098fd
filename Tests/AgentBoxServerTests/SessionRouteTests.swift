import AgentBox
import AgentBoxAPI
import AgentBoxServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Session routes", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct SessionRouteTests {
    @Test func aSessionThroughTheRoutes() async throws {
        try await withLiveServer { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/s", method: .put)
            let created = try await client.execute(uri: "/v1/workspaces/s/sessions", method: .post, headers: json, body: ByteBuffer(string: #"{"agent":"mock"}"#))
            #expect(created.status == .created)
            let session = try decode(Session.self, created)
            let base = "/v1/workspaces/s/sessions/\(session.id)"
            let prompt = try await client.execute(uri: base + "/prompt", method: .post, headers: json, body: ByteBuffer(string: #"{"content":[{"type":"text","text":"hi there"}]}"#))
            #expect(try decode(PromptResult.self, prompt) == PromptResult(stopReason: "end_turn"))
            let started = try await client.execute(uri: base + "/prompt?wait=false", method: .post, headers: json, body: ByteBuffer(string: #"{"content":[{"type":"text","text":"long"}]}"#))
            #expect(started.status == .accepted)
            let busy = try await client.execute(uri: base + "/prompt", method: .post, headers: json, body: ByteBuffer(string: #"{"content":[{"type":"text","text":"x"}]}"#))
            #expect(try expectProblem(busy, .conflict).contains("already running"))
            #expect(try await client.execute(uri: base + "/cancel", method: .post).status == .noContent)
            var page = try decode(SessionEventPage.self, try await client.execute(uri: base + "/events?after=0&limit=1000", method: .get))
            while page.items.last?.type != "turn_end" {
                try await Task.sleep(for: .milliseconds(50))
                page = try decode(SessionEventPage.self, try await client.execute(uri: base + "/events?after=0&limit=1000", method: .get))
            }
            #expect(page.items.last?.payload["stopReason"]?.stringValue == "cancelled")
            let small = try decode(SessionEventPage.self, try await client.execute(uri: base + "/events?after=1&limit=2", method: .get))
            #expect(small.items.map(\.seq) == [2, 3] && small.nextCursor == "3")
            // (The SSE stream never ends, so it is tested against the real binary: EndToEndTests.)
            let closed = try decode(Session.self, try await client.execute(uri: base + "/close", method: .post))
            #expect(closed.status == .closed && !closed.agentRunning)
            let resumed = try decode(Session.self, try await client.execute(uri: base + "/resume", method: .post))
            #expect(resumed.status == .idle && resumed.agentRunning)
            #expect(try decode(SessionList.self, try await client.execute(uri: "/v1/workspaces/s/sessions", method: .get)).items.map(\.id) == [session.id])
            #expect(try await client.execute(uri: base, method: .delete).status == .noContent)
            #expect(try await client.execute(uri: base, method: .get).status == .notFound)
        }
    }

    @Test func badInputIs4xxProblemJSON() async throws {
        try await withLiveServer { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/b", method: .put)
            let session = try decode(
                Session.self, try await client.execute(uri: "/v1/workspaces/b/sessions", method: .post, headers: json, body: ByteBuffer(string: #"{"agent":"mock"}"#)))
            let base = "/v1/workspaces/b/sessions/\(session.id)"
            let cases: [(String, HTTPRequest.Method, String?, Int, String)] = [
                ("/v1/workspaces/b/sessions", .post, #"{"agent":"nobody"}"#, 400, "unknown agent"),
                ("/v1/workspaces/b/sessions", .post, #"{}"#, 400, "agent"),
                ("/v1/workspaces/b/sessions", .post, #"{"agent":"mock","permissions":{"rules":{"read":"maybe"}}}"#, 400, "permissions"),
                ("/v1/workspaces/b/sessions", .post, #"{"agent":"mock","permissions":{"timeoutMs":0}}"#, 400, "timeoutMs"),
                ("/v1/workspaces/b/sessions", .post, #"{"agent":"mock","cwd":"/nope"}"#, 400, "cwd"),
                ("/v1/workspaces/absent/sessions", .post, #"{"agent":"mock"}"#, 404, "absent"),
                ("/v1/workspaces/b/sessions/nope", .get, nil, 400, "not a session id"),
                ("/v1/workspaces/b/sessions/ses_0000000000000000", .get, nil, 404, "no session"),
                (base + "/prompt", .post, #"{"content":[]}"#, 400, "1...64 blocks"),
                (base + "/prompt", .post, #"{"content":"hi"}"#, 400, "content"),
                (base + "/prompt?wait=perhaps", .post, #"{"content":[{"type":"text","text":"x"}]}"#, 400, "wait"),
                (base + "/permissions/perm_none", .post, #"{"reply":"once"}"#, 404, "no pending permission"),
                (base + "/permissions/perm_none", .post, #"{"reply":"sometimes"}"#, 400, "reply"),
                (base + "/events?limit=0", .get, nil, 400, "limit"),
                (base + "/events?after=-4", .get, nil, 400, "after"),
                (base + "/events?after=x", .get, nil, 400, "after"),
                (base + "/events/stream", .get, nil, 400, "Last-Event-ID"),
                (base + "/events/stream?after=-1", .get, nil, 400, "after"),
                ("/v1/workspaces/b/events?after=-1", .get, nil, 400, "after"),
                (base + "/resume", .post, #"{"env":{"A=B":"x"}}"#, 400, "env name"),
            ]
            for (uri, method, body, status, detail) in cases {
                var headers = body == nil ? HTTPFields() : json
                if uri.hasSuffix("/events/stream") { headers[HTTPField.Name("Last-Event-ID")!] = "soon" }
                let response = try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
                #expect(response.status.code == status, "\(method) \(uri): \(String(buffer: response.body))")
                #expect(response.headers[.contentType] == "application/problem+json", "\(method) \(uri)")
                #expect(try decode(Problem.self, response).detail.contains(detail), "\(method) \(uri): \(String(buffer: response.body))")
            }
            // The session still works after all that.
            let prompt = try await client.execute(uri: base + "/prompt", method: .post, headers: json, body: ByteBuffer(string: #"{"content":[{"type":"text","text":"ok"}]}"#))
            #expect(try decode(PromptResult.self, prompt).stopReason == "end_turn")
        }
    }
}
