import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOFoundationEssentialsCompat
import Testing

@testable import AgentBoxE2B

/// E2B's API in front of AgentBox's routes: its own authentication, its own error shapes, and input that never crashes.
/// (The SDKs themselves drive it in `E2BEndToEndTests`.)
@Suite("E2B routes")
struct E2BRouteTests {
    static let apiKey: HTTPFields = [HTTPField.Name("X-API-KEY")!: "e2b_secret"]

    func errorBody(_ response: TestResponse) throws -> (code: Int, message: String) {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
        return (try #require(object["code"] as? Int), try #require(object["message"] as? String))
    }

    @Test func theControlPlaneTakesAnE2BKeyAndAnswersErrorsAsTheSDKReadsThem() async throws {
        try await withServer(token: "secret") { client, _ in
            let missing = try await client.execute(uri: "/v2/sandboxes", method: .get)
            #expect(missing.status == .unauthorized)
            #expect(try errorBody(missing).code == 401)
            let wrong = try await client.execute(uri: "/v2/sandboxes", method: .get, headers: [HTTPField.Name("X-API-KEY")!: "e2b_nope"])
            #expect(wrong.status == .unauthorized)
            // A bearer token is not an API key, and an API key is not a bearer token.
            let bearer = try await client.execute(uri: "/v2/sandboxes", method: .get, headers: [.authorization: "Bearer secret"])
            #expect(bearer.status == .unauthorized)
            let v1 = try await client.execute(uri: "/v1/workspaces", method: .get, headers: Self.apiKey)
            try expectProblem(v1, .unauthorized)
            let listed = try await client.execute(uri: "/v2/sandboxes", method: .get, headers: Self.apiKey)
            #expect(listed.status == .ok)
            #expect(String(buffer: listed.body) == "[]")
            // The token hex-encoded, as e2b 2.45.1 demands of a key.
            let hex = "secret".utf8.map { String(format: "%02x", $0) }.joined()
            let hexed = try await client.execute(uri: "/v2/sandboxes", method: .get, headers: [HTTPField.Name("X-API-KEY")!: "e2b_\(hex)"])
            #expect(hexed.status == .ok)
        }
    }

    @Test func badInputIsA4xxWithCodeAndMessage() async throws {
        try await withServer(token: "secret") { client, _ in
            var headers = Self.apiKey
            headers[.contentType] = "application/json"
            for (method, uri, body, status) in [
                (HTTPRequest.Method.post, "/v2/sandboxes", "{not json", HTTPResponse.Status.badRequest),
                (.post, "/v2/sandboxes", #"{"timeout": -1}"#, .badRequest),
                (.post, "/v2/sandboxes", #"{"timeout": "soon"}"#, .badRequest),
                (.post, "/v2/sandboxes", #"{"templateID": "my-custom"}"#, .notFound),
                (.get, "/sandboxes/nope", "", .notFound),
                (.get, "/sandboxes/..%2F..", "", .notFound),
                (.delete, "/sandboxes/nope", "", .notFound),
                (.post, "/v2/sandboxes/nope/connect", "{}", .notFound),
                (.post, "/sandboxes/nope/timeout", #"{"timeout": 30}"#, .notFound),
                (.post, "/sandboxes/nope/pause", "{}", .notFound),
                (.get, "/v2/sandboxes?state=sleeping", "", .badRequest),
                (.get, "/v2/sandboxes?limit=0", "", .badRequest),
                (.get, "/v2/sandboxes?metadata=novalue", "", .badRequest),
                (.put, "/v2/sandboxes", "", .notFound),
            ] {
                let response = try await client.execute(uri: uri, method: method, headers: headers, body: ByteBuffer(string: body))
                #expect(response.status == status, "\(method) \(uri) \(body)")
                #expect(try errorBody(response).code == Int(status.code), "\(method) \(uri)")
            }
            let big = try await client.execute(
                uri: "/v2/sandboxes", method: .post, headers: headers, body: ByteBuffer(string: "{" + String(repeating: " ", count: 2 << 20) + "}"))
            #expect(big.status == .contentTooLarge)
        }
    }

    @Test func aReaderTokenMayNotCreateAndAScopedOneCreatesUnderItsPrefix() async throws {
        try await withServer(token: "secret") { client, manager in
            let reader = try await manager.createAccessToken(TokenCreateRequest(workspaces: ["*"], role: .reader))
            let refused = try await client.execute(
                uri: "/v2/sandboxes", method: .post, headers: [HTTPField.Name("X-API-KEY")!: "e2b_\(reader.token ?? "")"], body: ByteBuffer(string: "{}"))
            #expect(refused.status == .forbidden)
            let exact = try await manager.createAccessToken(TokenCreateRequest(workspaces: ["one-workspace"], role: .user))
            let noPrefix = try await client.execute(
                uri: "/v2/sandboxes", method: .post, headers: [HTTPField.Name("X-API-KEY")!: "e2b_\(exact.token ?? "")"], body: ByteBuffer(string: "{}"))
            #expect(noPrefix.status == .forbidden)
            let other = try await client.execute(
                uri: "/sandboxes/someone-elses", method: .get, headers: [HTTPField.Name("X-API-KEY")!: "e2b_\(exact.token ?? "")"])
            #expect(other.status == .forbidden)
        }
    }

    /// Revoking an API token refuses at once what it obtained through E2B too: the access tokens of the sandboxes it
    /// was handed are replaced (they stayed valid: envd and files went on answering the revoked token's holder).
    @Test(.enabled(if: canSandbox, "needs bubblewrap and root"))
    func revokingATokenReplacesTheSandboxAccessTokensItWasHanded() async throws {
        try await withServer(token: "secret", sandbox: true) { client, manager in
            let apiKey = HTTPField.Name("X-API-KEY")!
            let user = try await manager.createAccessToken(TokenCreateRequest(workspaces: ["team-*"], role: .user))
            let created = try await client.execute(
                uri: "/sandboxes", method: .post, headers: [apiKey: "e2b_\(user.token ?? "")", .contentType: "application/json"], body: ByteBuffer(string: "{}"))
            #expect(created.status == .created)
            let answer = try JSONValue.parse(Data(buffer: created.body))
            let id = try #require(answer["sandboxID"]?.stringValue), access = try #require(answer["envdAccessToken"]?.stringValue)
            func stat(_ token: String) async throws -> HTTPResponse.Status {
                try await client.execute(
                    uri: "/filesystem.Filesystem/Stat", method: .post,
                    headers: [HTTPField.Name("E2b-Sandbox-Id")!: id, HTTPField.Name("X-Access-Token")!: token, .contentType: "application/json"],
                    body: ByteBuffer(string: #"{"path":"/home/user"}"#)
                ).status
            }
            #expect(try await stat(access) == .ok)
            try await manager.revokeAccessToken(id: user.id)
            var refused = false
            for _ in 0..<50 where !refused {
                refused = try await stat(access) == .unauthorized
                if !refused { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(refused, "the revoked token's access token still works")
            // Another token connects again and gets the new one.
            let connected = try await client.execute(
                uri: "/sandboxes/\(id)/connect", method: .post, headers: [apiKey: "e2b_secret", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"timeout":300}"#))
            let fresh = try #require(try JSONValue.parse(Data(buffer: connected.body))["envdAccessToken"]?.stringValue)
            #expect(fresh != access)
            #expect(try await stat(fresh) == .ok)
        }
    }

    @Test func theDataPlaneNeedsAKnownSandboxAndItsToken() async throws {
        try await withServer(token: "secret") { client, _ in
            let sandbox = HTTPField.Name("E2b-Sandbox-Id")!
            let unknown = try await client.execute(
                uri: "/filesystem.Filesystem/Stat", method: .post, headers: [sandbox: "nope", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"path":"/"}"#))
            #expect(unknown.status == .badGateway)
            #expect(try errorBody(unknown).message.contains("not found"))
            let health = try await client.execute(uri: "/health", method: .get, headers: [sandbox: "nope"])
            #expect(health.status == .badGateway)
            // Without the header these paths are not E2B's: AgentBox's own router answers (and knows them not).
            let plain = try await client.execute(uri: "/execute", method: .post, headers: [.authorization: "Bearer secret"])
            #expect(plain.status == .notFound || plain.status == .unauthorized)
        }
    }
}

@Suite("E2B wire formats")
struct E2BWireTests {
    @Test func connectEnvelopesAreSplitAndBounded() throws {
        var buffer = ConnectEnvelope.frame(Data(#"{"a":1}"#.utf8))
        var end = ConnectEnvelope.end(nil)
        buffer.writeBuffer(&end)
        let first = try #require(try ConnectEnvelope.next(from: &buffer))
        #expect(first.flags == 0 && first.message == Data(#"{"a":1}"#.utf8))
        let last = try #require(try ConnectEnvelope.next(from: &buffer))
        #expect(last.flags == ConnectEnvelope.endOfStream && last.message == Data("{}".utf8))
        var partial = ByteBuffer(bytes: [0, 0, 0, 0, 9, 1, 2])
        #expect(try ConnectEnvelope.next(from: &partial) == nil)
        var huge = ByteBuffer(bytes: [0, 0xff, 0xff, 0xff, 0xff])
        #expect(throws: ConnectError.self) { try ConnectEnvelope.next(from: &huge) }
        var compressed = ByteBuffer(bytes: [1, 0, 0, 0, 2, 0x7b, 0x7d])
        #expect(throws: ConnectError.self) { try ConnectEnvelope.next(from: &compressed) }
        #expect(throws: ConnectError.self) { try ConnectEnvelope.single(ByteBuffer(bytes: [0, 0, 0])) }
    }

    @Test func multipartPartsKeepTheirFilenamesAndBytes() throws {
        let body = Array(
            ("--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/home/user/a.txt\"\r\nContent-Type: text/plain\r\n\r\n"
                + "one\r\n--other\r\n" + "\r\n--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.bin\"\r\n\r\n"
                + "\r\n--b0undary--\r\n").utf8)
        let parts = try Multipart.parts(body, boundary: "b0undary")
        #expect(parts.map(\.filename) == ["/home/user/a.txt", "b.bin"])
        #expect(parts.map { String(decoding: $0.content, as: UTF8.self) } == ["one\r\n--other\r\n", ""])
        #expect(Multipart.boundary("multipart/form-data; boundary=\"abc\"") == "abc")
        #expect(Multipart.boundary("multipart/form-data") == nil)
        #expect(throws: E2BError.self) { try Multipart.parts(Array("no boundary here".utf8), boundary: "b") }
        #expect(throws: E2BError.self) { try Multipart.parts(Array("--b\r\nContent-Disposition: x".utf8), boundary: "b") }
    }

    @Test func homeUserIsTheWorkspacesHomeAgent() throws {
        #expect(try E2BPaths.inside("/home/user/a/b").description == "/home/agent/a/b")
        #expect(try E2BPaths.inside("notes.txt").description == "/home/agent/notes.txt")
        #expect(try E2BPaths.inside("/home/user").description == "/home/agent")
        #expect(try E2BPaths.inside("/home/username/x").description == "/home/username/x")
        #expect(try E2BPaths.inside("/workspace/x").description == "/workspace/x")
        #expect(throws: (any Error).self) { try E2BPaths.inside("/home/user/../../..") }
        #expect(E2BPaths.outside("/home/agent/a") == "/home/user/a")
        #expect(E2BPaths.outside("/home/agentx") == "/home/agentx")
        // Errors name paths as E2B shows them, never the workspace's inner /home/agent.
        #expect(E2BPaths.outsideText("no such file '/home/agent/a.txt'") == "no such file '/home/user/a.txt'")
        #expect(E2BPaths.outsideText("'/home/agent' and /home/agent.") == "'/home/user' and /home/user.")
        #expect(E2BPaths.outsideText("/home/agents/x /home/agent-2") == "/home/agents/x /home/agent-2")
        #expect(E2BError(AgentBoxError(.notFound, "no file '/home/agent/x'")).message == "no file '/home/user/x'")
        #expect(ConnectError(AgentBoxError(.notFound, "no file '/home/agent/x'")).message == "no file '/home/user/x'")
    }

    @Test func exitsReadAsEnvdReportsThem() {
        #expect(E2BProcessService.end(exitCode: 0, signal: nil)["exitCode"] == nil)
        #expect(E2BProcessService.end(exitCode: 3, signal: nil)["status"] as? String == "exit status 3")
        #expect(E2BProcessService.end(exitCode: 137, signal: "KILL")["status"] as? String == "signal: killed")
        #expect(E2BProcessService.end(exitCode: 137, signal: "KILL")["exitCode"] as? Int == -1)
        #expect(E2BFilesystemService.permissions(type: .directory, mode: 0o755) == "drwxr-xr-x")
        #expect(E2BFilesystemService.permissions(type: .file, mode: 0o640) == "-rw-r-----")
    }
}
