import AgentBox
import AgentBoxAPI
import AgentBoxServer
import AgentBoxStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOFoundationEssentialsCompat
import Testing

@testable import AgentBoxServer

/// Runs `body` against the router of a fresh server (in process, no socket).
func withServer(
    token: String? = nil, sandbox: Bool = false, configure: (inout AgentBoxConfiguration, URL) throws -> Void = { _, _ in },
    _ body: @Sendable (any TestClientProtocol, WorkspaceManager) async throws -> Void
) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-routes-\(UUID())")
    defer { try? FileManager.default.removeItem(at: directory) }
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    var configuration = AgentBoxConfiguration(dataDirectory: directory)
    if sandbox {
        configuration.sandbox = try SandboxKind.linux.makeBackend(dataDirectory: directory).backend
        configuration.sandboxUIDBase = 100_000_000 + UInt32.random(in: 0..<15_000) * 262_144
    }
    try configure(&configuration, directory)
    let manager = try WorkspaceManager.open(configuration: configuration, store: try SQLiteStore.open(in: directory), logger: logger)
    let app = try buildApplication(manager: manager, configuration: ServerConfiguration(token: token), logger: logger)
    try await app.test(.router) { client in try await body(client, manager) }
    await manager.shutdown()
}

let json: HTTPFields = [.contentType: "application/json"]

func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
    try AgentBoxJSON.makeDecoder().decode(T.self, from: Data(buffer: response.body))
}

/// Checks that `response` is a problem+json with `status`, and returns its detail.
@discardableResult
func expectProblem(_ response: TestResponse, _ status: HTTPResponse.Status, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    #expect(response.status == status, sourceLocation: sourceLocation)
    #expect(response.headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
    let problem = try decode(Problem.self, response)
    #expect(problem.status == Int(status.code), sourceLocation: sourceLocation)
    #expect(!problem.detail.isEmpty, sourceLocation: sourceLocation)
    #expect(problem.type == ProblemType.for(status), "each kind of problem has its stable type URI", sourceLocation: sourceLocation)
    return problem.detail
}

@Suite("Workspace routes")
struct WorkspaceRouteTests {
    @Test func healthAnswersWithTheVersion() async throws {
        try await withServer(token: "secret") { client, _ in
            let response = try await client.execute(uri: "/v1/health", method: .get)
            #expect(response.status == .ok)
            let health = try decode(Health.self, response)
            #expect(health == Health(version: agentBoxVersion))
        }
    }

    @Test func putCreatesThenReturnsTheExistingWorkspace() async throws {
        try await withServer { client, _ in
            let body = ByteBuffer(string: #"{"limits":{"memoryMb":512},"env":{"A":"1"},"network":{"egress":{"allow":["*.github.com"]}}}"#)
            let created = try await client.execute(uri: "/v1/workspaces/demo", method: .put, headers: json, body: body)
            #expect(created.status == .created)
            let workspace = try decode(Workspace.self, created)
            #expect(workspace.key.rawValue == "demo")
            #expect(workspace.state == .sleeping)
            #expect(workspace.limits == WorkspaceLimits(memoryMb: 512, cpuPercent: 100, pids: 512))
            #expect(workspace.network.egress == .allowList(["*.github.com"]))
            let again = try await client.execute(uri: "/v1/workspaces/demo", method: .put)
            #expect(again.status == .ok)
            #expect(try decode(Workspace.self, again) == workspace)
            let fetched = try await client.execute(uri: "/v1/workspaces/demo", method: .get)
            #expect(try decode(Workspace.self, fetched) == workspace)
        }
    }

    @Test func putWithOtherLimitsChangesTheFieldsItNames() async throws {
        try await withServer { client, _ in
            let first = ByteBuffer(string: #"{"limits":{"memoryMb":512,"diskMb":64}}"#)
            _ = try await client.execute(uri: "/v1/workspaces/demo", method: .put, headers: json, body: first)
            let second = ByteBuffer(string: #"{"limits":{"diskMb":128}}"#)
            let changed = try await client.execute(uri: "/v1/workspaces/demo", method: .put, headers: json, body: second)
            #expect(changed.status == .ok)
            let workspace = try decode(Workspace.self, changed)
            #expect(workspace.limits.diskMb == 128 && workspace.limits.memoryMb == 512, "\(workspace.limits)")
            let fetched = try await client.execute(uri: "/v1/workspaces/demo", method: .get)
            #expect(try decode(Workspace.self, fetched).limits.diskMb == 128)
            let bad = ByteBuffer(string: #"{"limits":{"diskMb":0}}"#)
            #expect(try await client.execute(uri: "/v1/workspaces/demo", method: .put, headers: json, body: bad).status == .badRequest)
        }
    }

    @Test func listPagesThroughEveryWorkspace() async throws {
        try await withServer { client, _ in
            for index in 0..<5 { _ = try await client.execute(uri: "/v1/workspaces/k\(index)", method: .put) }
            let first = try decode(WorkspaceList.self, try await client.execute(uri: "/v1/workspaces?limit=2", method: .get))
            #expect(first.items.map(\.key.rawValue) == ["k0", "k1"])
            let cursor = try #require(first.nextCursor)
            let rest = try decode(WorkspaceList.self, try await client.execute(uri: "/v1/workspaces?limit=10&cursor=\(cursor)", method: .get))
            #expect(rest.items.map(\.key.rawValue) == ["k2", "k3", "k4"])
            #expect(rest.nextCursor == nil)
        }
    }

    @Test func sleepWakeAndDelete() async throws {
        try await withServer { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/cycle", method: .put)
            let woken = try decode(Workspace.self, try await client.execute(uri: "/v1/workspaces/cycle/wake", method: .post))
            #expect(woken.state == .running)
            let slept = try decode(Workspace.self, try await client.execute(uri: "/v1/workspaces/cycle/sleep", method: .post))
            #expect(slept.state == .sleeping)
            #expect(try await client.execute(uri: "/v1/workspaces/cycle", method: .delete).status == .noContent)
            try expectProblem(try await client.execute(uri: "/v1/workspaces/cycle", method: .get), .notFound)
            try expectProblem(try await client.execute(uri: "/v1/workspaces/cycle", method: .delete), .notFound)
        }
    }

    @Test func percentEncodedKeysAreDecoded() async throws {
        try await withServer { client, _ in
            let created = try await client.execute(uri: "/v1/workspaces/team%3Aalpha", method: .put)
            #expect(created.status == .created)
            #expect(try decode(Workspace.self, created).key.rawValue == "team:alpha")
        }
    }
}

@Suite("Bad input")
struct BadInputTests {
    @Test(arguments: ["bad%20key", "a%2Fb", String(repeating: "x", count: 129), "%C3%BC", "a%00b"])
    func badKeysAre400(key: String) async throws {
        try await withServer { client, _ in
            let detail = try expectProblem(try await client.execute(uri: "/v1/workspaces/\(key)", method: .put), .badRequest)
            #expect(detail.contains("workspace key"))
        }
    }

    @Test func unknownWorkspacesAre404OnEveryRoute() async throws {
        try await withServer { client, _ in
            for (uri, method) in [
                ("/v1/workspaces/absent", HTTPRequest.Method.get), ("/v1/workspaces/absent", .delete),
                ("/v1/workspaces/absent/sleep", .post), ("/v1/workspaces/absent/wake", .post),
                ("/v1/workspaces/absent/events", .get),
            ] {
                let detail = try expectProblem(try await client.execute(uri: uri, method: method), .notFound)
                #expect(detail.contains("absent"))
            }
        }
    }

    @Test(arguments: [
        (#"{"limits":"#, "invalid JSON at byte 10: unexpected end"),
        // Strict JSON: Foundation's decoder alone took a trailing comma, and the first of two values for one key.
        (#"{"env":{"A":"x",}}"#, "invalid JSON at byte 16: expected a key"),
        (#"{"env":{"A":"x"},"limits":{},"env":{}}"#, "the key 'env' is given twice"),
        (#"{"env":{"A":"x","A":"y"}}"#, "the key 'A' is given twice"),
        ("{\"env\":{\"A\":\"x\",\"\\u0041\":\"y\"}}", "the key 'A' is given twice"),
        (#"{"limits":{"memoryMb":"lots"}}"#, "'limits.memoryMb' should be an integer"),
        (#"{"network":{"egress":"sometimes"}}"#, "egress must be"),
        (#"{"env":{"A":1}}"#, "'env.A' should be a string"),
        (#"[1,2]"#, "should be an object"),
        (#"{"limits":{"memoryMb":1}}"#, "limits.memoryMb must be"),
        (#"{"env":{"A=B":"x"}}"#, "env name"),
        // One command per toolkit: a name given twice made every boot of the workspace fail (schemathesis found it).
        (#"{"toolkits":["kit","kit"]}"#, "'kit' is given twice"),
    ])
    func malformedBodiesAre400(body: String, expected: String) async throws {
        try await withServer { client, manager in
            let response = try await client.execute(uri: "/v1/workspaces/w", method: .put, headers: json, body: ByteBuffer(string: body))
            let detail = try expectProblem(response, .badRequest)
            #expect(detail.contains(expected), "\(detail)")
            // Nothing was created by a refused request.
            await #expect(throws: AgentBoxError.self) { try await manager.workspace(key: WorkspaceKey(rawValue: "w")!) }
        }
    }

    @Test func wrongContentTypeIs415() async throws {
        try await withServer { client, _ in
            let response = try await client.execute(
                uri: "/v1/workspaces/w", method: .put, headers: [.contentType: "text/plain"], body: ByteBuffer(string: "{}"))
            try expectProblem(response, .unsupportedMediaType)
        }
    }

    @Test func oversizeBodiesAre413() async throws {
        try await withServer { client, _ in
            let huge = #"{"env":{"A":""# + String(repeating: "x", count: 2 << 20) + #""}}"#
            try expectProblem(try await client.execute(uri: "/v1/workspaces/w", method: .put, headers: json, body: ByteBuffer(string: huge)), .contentTooLarge)
        }
    }

    @Test func mountsNeedASandboxThatCanMount() async throws {
        try await withServer { client, _ in
            let body = ByteBuffer(string: #"{"mounts":[{"type":"tmpfs","path":"/scratch"}]}"#)
            let detail = try expectProblem(try await client.execute(uri: "/v1/workspaces/w", method: .put, headers: json, body: body), .notImplemented)
            #expect(detail.contains("linux sandbox"))
            let malformed = ByteBuffer(string: #"{"mounts":[{"type":"nfs","path":"/scratch"}]}"#)
            try expectProblem(try await client.execute(uri: "/v1/workspaces/w", method: .put, headers: json, body: malformed), .badRequest)
        }
    }

    @Test func badQueryValuesAre400() async throws {
        try await withServer { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/w", method: .put)
            try expectProblem(try await client.execute(uri: "/v1/workspaces?limit=abc", method: .get), .badRequest)
            try expectProblem(try await client.execute(uri: "/v1/workspaces?limit=0", method: .get), .badRequest)
            try expectProblem(try await client.execute(uri: "/v1/workspaces?limit=100000", method: .get), .badRequest)
            try expectProblem(try await client.execute(uri: "/v1/workspaces?cursor=%21%21", method: .get), .badRequest)
            try expectProblem(try await client.execute(uri: "/v1/workspaces/w/events?after=x", method: .get), .badRequest)
            try expectProblem(
                try await client.execute(uri: "/v1/workspaces/w/events", method: .get, headers: [HTTPField.Name("Last-Event-ID")!: "soon"]),
                .badRequest)
        }
    }

    @Test func unknownRoutesAre404ProblemJSON() async throws {
        try await withServer { client, _ in
            try expectProblem(try await client.execute(uri: "/v1/nothing-here", method: .get), .notFound)
            try expectProblem(try await client.execute(uri: "/v1/workspaces/w/unknown", method: .post), .notFound)
            try expectProblem(try await client.execute(uri: "/v1/nothing-here", method: .patch), .notFound)
        }
    }

    /// A known path with a method it does not take is 405 with `Allow` (it was 404 "no such route"), HEAD included:
    /// no HEAD is made from a GET (running the GET's handler and dropping its body leaked a file descriptor per
    /// HEAD of fs/file). Without the token nothing about the routes is told.
    @Test func wrongMethodsAre405() async throws {
        try await withServer(token: "s3cret") { client, _ in
            let admin: HTTPFields = [.authorization: "Bearer s3cret"]
            let health = try await client.execute(uri: "/v1/health", method: .delete, headers: admin)
            #expect(try expectProblem(health, .methodNotAllowed).contains("GET"))
            #expect(health.headers[.allow] == "GET, HEAD")
            // The one HEAD: health checks, without a token.
            let headHealth = try await client.execute(uri: "/v1/health", method: .head)
            #expect(headHealth.status == .ok && headHealth.body.readableBytes == 0)
            let file = try await client.execute(uri: "/v1/workspaces/w/fs/file?path=/workspace/a", method: .post, headers: admin)
            try expectProblem(file, .methodNotAllowed)
            #expect(file.headers[.allow] == "GET, PUT")
            let head = try await client.execute(uri: "/v1/workspaces/w/fs/file?path=/workspace/a", method: .head, headers: admin)
            #expect(head.status == .methodNotAllowed && head.headers[.allow] == "GET, PUT")
            try expectProblem(try await client.execute(uri: "/v1/workspaces/w/fs/file", method: .post), .unauthorized)
            try expectProblem(try await client.execute(uri: "/v1/nothing-here", method: .patch, headers: admin), .notFound)
        }
    }
}

@Suite("Auth")
struct AuthTests {
    @Test func withoutAConfiguredTokenEverythingIsOpen() async throws {
        try await withServer(token: nil) { client, _ in
            let response = try await client.execute(uri: "/v1/workspaces", method: .get)
            #expect(response.status == .ok)
        }
    }

    @Test func aTokenIsRequiredAndChecked() async throws {
        try await withServer(token: "s3cret") { client, _ in
            let missing = try await client.execute(uri: "/v1/workspaces", method: .get)
            #expect(try expectProblem(missing, .unauthorized).contains("missing"))
            #expect(missing.headers[.wwwAuthenticate] == "Bearer")
            let wrong = try await client.execute(uri: "/v1/workspaces", method: .get, headers: [.authorization: "Bearer s3cre"])
            #expect(try expectProblem(wrong, .unauthorized).contains("wrong"))
            let basic = try await client.execute(uri: "/v1/workspaces", method: .get, headers: [.authorization: "Basic s3cret"])
            try expectProblem(basic, .unauthorized)
            let right = try await client.execute(uri: "/v1/workspaces", method: .get, headers: [.authorization: "Bearer s3cret"])
            #expect(right.status == .ok)
            try expectProblem(try await client.execute(uri: "/v1/openapi.json", method: .get), .unauthorized)
            try expectProblem(try await client.execute(uri: "/v1/no-such-route", method: .get), .unauthorized)
        }
    }

    /// A scoped token sets the egress of a workspace it creates, but cannot widen an existing one's (now that PUT of
    /// an existing workspace applies `network`); it may still change its env.
    @Test func aScopedTokenCannotWidenAnExistingWorkspacesEgress() async throws {
        try await withServer(token: "s3cret") { client, manager in
            let admin: HTTPFields = [.authorization: "Bearer s3cret", .contentType: "application/json"]
            _ = try await client.execute(uri: "/v1/workspaces/locked", method: .put, headers: admin, body: ByteBuffer(string: #"{"network":{"egress":"deny"}}"#))
            let scoped = try await manager.createAccessToken(TokenCreateRequest(workspaces: ["locked", "own-*"], role: .user))
            let user: HTTPFields = [.authorization: "Bearer \(scoped.token ?? "")", .contentType: "application/json"]
            let widen = try await client.execute(uri: "/v1/workspaces/locked", method: .put, headers: user, body: ByteBuffer(string: #"{"network":{"egress":"allow"}}"#))
            #expect(try expectProblem(widen, .forbidden).contains("egress"))
            let same = try await client.execute(
                uri: "/v1/workspaces/locked", method: .put, headers: user, body: ByteBuffer(string: #"{"network":{"egress":"deny"},"env":{"A":"b"}}"#))
            #expect(same.status == .ok)
            #expect(try decode(Workspace.self, same).env == ["A": "b"])
            let own = try await client.execute(uri: "/v1/workspaces/own-1", method: .put, headers: user, body: ByteBuffer(string: #"{"network":{"egress":"allow"}}"#))
            #expect(own.status == .created)
            let adminWidens = try await client.execute(uri: "/v1/workspaces/locked", method: .put, headers: admin, body: ByteBuffer(string: #"{"network":{"egress":"allow"}}"#))
            #expect(try decode(Workspace.self, adminWidens).network.egress == .allow)
        }
    }

    @Test func accessTokenWorksOnStreamsOnly() async throws {
        try await withServer(token: "s3cret") { client, _ in
            // Past auth, the unknown workspace answers 404: the query token was accepted on the event stream.
            try expectProblem(try await client.execute(uri: "/v1/workspaces/absent/events?access_token=s3cret", method: .get), .notFound)
            try expectProblem(try await client.execute(uri: "/v1/workspaces/absent/events?access_token=nope", method: .get), .unauthorized)
            try expectProblem(try await client.execute(uri: "/v1/workspaces/absent?access_token=s3cret", method: .get), .unauthorized)
        }
    }

    @Test func theServerRefusesToExposeWorkspacesWithoutAToken() throws {
        #expect(throws: AgentBoxError.self) { try ServerConfiguration(host: "0.0.0.0").validate() }
        #expect(throws: AgentBoxError.self) { try ServerConfiguration(host: "127.0.0.1", token: "").validate() }
        try ServerConfiguration(host: "0.0.0.0", token: "t").validate()
        try ServerConfiguration(host: "0.0.0.0", allowUnauthenticatedRemote: true).validate()
        try ServerConfiguration(host: "127.0.0.1").validate()
        try ServerConfiguration(host: "::1").validate()
    }

    @Test(arguments: [("abc", "abc", true), ("abc", "abd", false), ("abc", "ab", false), ("", "", true), ("a", "", false)])
    func tokensCompareCorrectly(lhs: String, rhs: String, equal: Bool) {
        #expect(constantTimeEquals(lhs, rhs) == equal)
    }
}

@Suite("OpenAPI")
struct OpenAPITests {
    /// Every route of ../shared/API.md that this server serves so far, plus its own additions.
    static let served: [(String, String)] = [
        ("get", "/v1/health"), ("get", "/v1/cluster"), ("get", "/v1/openapi.json"), ("post", "/v1/workspaces/{key}/fetch"),
        ("post", "/v1/images"), ("get", "/v1/images"), ("get", "/v1/images/{name}"), ("delete", "/v1/images/{name}"),
        ("post", "/v1/workspaces/{key}/cron"), ("get", "/v1/workspaces/{key}/cron"), ("get", "/v1/workspaces/{key}/cron/{id}"),
        ("patch", "/v1/workspaces/{key}/cron/{id}"), ("delete", "/v1/workspaces/{key}/cron/{id}"), ("post", "/v1/workspaces/{key}/cron/{id}/run"),
        ("get", "/v1/workspaces/{key}/cron/{id}/runs"),
        ("put", "/v1/toolkits/{name}"), ("get", "/v1/toolkits"), ("get", "/v1/toolkits/{name}"), ("delete", "/v1/toolkits/{name}"),
        ("get", "/v1/toolkits/{name}/calls"), ("post", "/v1/toolkits/{name}/calls/{callId}"), ("get", "/v1/workspaces/{key}/tool-calls"),
        ("post", "/v1/workspaces/{key}/previews"), ("get", "/v1/workspaces/{key}/previews"), ("delete", "/v1/workspaces/{key}/previews/{token}"),
        ("put", "/v1/workspaces/{key}"), ("get", "/v1/workspaces"), ("get", "/v1/workspaces/{key}"),
        ("delete", "/v1/workspaces/{key}"), ("post", "/v1/workspaces/{key}/sleep"), ("post", "/v1/workspaces/{key}/wake"),
        ("get", "/v1/workspaces/{key}/events"),
        ("post", "/v1/workspaces/{key}/exec"), ("post", "/v1/workspaces/{key}/processes"),
        ("get", "/v1/workspaces/{key}/processes"), ("get", "/v1/workspaces/{key}/processes/{id}"),
        ("post", "/v1/workspaces/{key}/processes/{id}/stdin"), ("post", "/v1/workspaces/{key}/processes/{id}/wait"),
        ("post", "/v1/workspaces/{key}/processes/{id}/signal"), ("get", "/v1/workspaces/{key}/processes/{id}/output"),
        ("get", "/v1/workspaces/{key}/fs/file"), ("put", "/v1/workspaces/{key}/fs/file"), ("get", "/v1/workspaces/{key}/fs/entries"),
        ("get", "/v1/workspaces/{key}/fs/stat"), ("get", "/v1/workspaces/{key}/fs/exists"), ("post", "/v1/workspaces/{key}/fs/mkdir"),
        ("post", "/v1/workspaces/{key}/fs/move"), ("delete", "/v1/workspaces/{key}/fs/entry"),
        ("post", "/v1/workspaces/{key}/fs/upload"), ("get", "/v1/workspaces/{key}/fs/archive"), ("get", "/v1/workspaces/{key}/fs/watch"),
        ("post", "/v1/workspaces/{key}/snapshots"), ("get", "/v1/workspaces/{key}/snapshots"),
        ("delete", "/v1/workspaces/{key}/snapshots/{id}"),
        ("post", "/v1/workspaces/{key}/shells"), ("get", "/v1/workspaces/{key}/shells"), ("get", "/v1/workspaces/{key}/shells/{id}"),
        ("post", "/v1/workspaces/{key}/shells/{id}/input"), ("post", "/v1/workspaces/{key}/shells/{id}/resize"),
        ("delete", "/v1/workspaces/{key}/shells/{id}"), ("get", "/v1/workspaces/{key}/shells/{id}/ws"),
        ("post", "/v1/workspaces/{key}/desktop"), ("get", "/v1/workspaces/{key}/desktop"), ("delete", "/v1/workspaces/{key}/desktop"),
        ("get", "/v1/workspaces/{key}/desktop/screenshot"), ("post", "/v1/workspaces/{key}/desktop/mouse"),
        ("post", "/v1/workspaces/{key}/desktop/keyboard"), ("get", "/v1/workspaces/{key}/desktop/windows"),
        ("post", "/v1/workspaces/{key}/desktop/windows/{id}/focus"), ("delete", "/v1/workspaces/{key}/desktop/windows/{id}"),
        ("get", "/v1/workspaces/{key}/desktop/clipboard"), ("put", "/v1/workspaces/{key}/desktop/clipboard"),
        ("get", "/v1/workspaces/{key}/desktop/stream"),
        ("post", "/v1/workspaces/{key}/sessions"), ("get", "/v1/workspaces/{key}/sessions"), ("get", "/v1/workspaces/{key}/sessions/{id}"),
        ("post", "/v1/workspaces/{key}/sessions/{id}/prompt"), ("post", "/v1/workspaces/{key}/sessions/{id}/cancel"),
        ("post", "/v1/workspaces/{key}/sessions/{id}/permissions/{permissionId}"), ("post", "/v1/workspaces/{key}/sessions/{id}/resume"),
        ("post", "/v1/workspaces/{key}/sessions/{id}/close"), ("delete", "/v1/workspaces/{key}/sessions/{id}"),
        ("get", "/v1/workspaces/{key}/sessions/{id}/events"), ("get", "/v1/workspaces/{key}/sessions/{id}/events/stream"),
        ("get", "/v1/agents"), ("get", "/v1/agents/{id}"), ("post", "/v1/agents/{id}/install"),
("head", "/v1/health"), ("get", "/metrics"), ("get", "/v1/workspaces/{key}/metrics"), ("get", "/v1/workspaces/{key}/usage"),
        ("post", "/v1/mcp"), ("get", "/v1/mcp"), ("delete", "/v1/mcp"),
        ("post", "/llm/anthropic/v1/messages"), ("post", "/llm/anthropic/v1/messages/count_tokens"), ("post", "/llm/openai/v1/responses"),
        ("post", "/llm/openai/v1/chat/completions"),
        ("post", "/v1/tokens"), ("get", "/v1/tokens"), ("delete", "/v1/tokens/{id}"), ("post", "/v1/login-links"), ("post", "/v1/login"),
        ("get", "/v1/acp"), ("post", "/v1/acp/{serverId}"), ("get", "/v1/acp/{serverId}"), ("delete", "/v1/acp/{serverId}"),
        ("post", "/v1/workspaces/{key}/sessions/{id}/model"), ("post", "/v1/workspaces/{key}/sessions/{id}/questions/{questionId}"), ("post", "/v1/workspaces/{key}/sessions/{id}/mode"),
    ]

    @Test func theDocumentListsEveryServedRoute() async throws {
        try await withServer { client, _ in
            let response = try await client.execute(uri: "/v1/openapi.json", method: .get)
            #expect(response.status == .ok)
            let document = try decode(JSONValue.self, response)
            guard case .object(let root) = document, case .object(let paths)? = root["paths"] else {
                Issue.record("no paths in \(document)")
                return
            }
            #expect(root["openapi"] == "3.1.0")
            var documented: Set<String> = []
            for (path, item) in paths {
                guard case .object(let methods) = item else { continue }
                for method in methods.keys { documented.insert("\(method) \(path)") }
            }
            #expect(documented == Set(Self.served.map { "\($0.0) \($0.1)" }))
            // And each documented route is really served: none answers "no such route".
            for (method, path) in Self.served {
                let uri = path.replacingOccurrences(of: "{key}", with: "absent").replacingOccurrences(of: "{id}", with: "proc_x")
                let response = try await client.execute(uri: uri, method: HTTPRequest.Method(method.uppercased())!)
                if path.hasPrefix("/llm/") {
                    // No gateway in this server: the route answers in the provider's own error format.
                    #expect(response.status == .notFound && String(buffer: response.body).contains("LLM gateway does not serve"), "\(path)")
                } else if response.status == .notFound {
                    #expect(try decode(Problem.self, response).detail != "no such route", "\(method) \(path) is not served")
                }
            }
        }
    }

    /// Issue 18: every route the routers really serve (HTTP and WebSocket) is declared, and every declared route but the
    /// preview proxy's own is in the document with the access and scope the server enforces.
    @Test func everyServedRouteIsDeclaredAndDocumentedAsEnforced() async throws {
        try await withServer { client, manager in
            let api = buildAPI(manager: manager, token: "t")
            let served = (api.http.routes + api.webSocket.routes).map { APIRouteRegistry.key($0.method, $0.path.description) }
            #expect(served.count > 50)
            for route in served {
                #expect(api.registry.declarations[route] != nil, "\(route) is served but declares no access")
            }
            let document = try decode(JSONValue.self, try await client.execute(uri: "/v1/openapi.json", method: .get))
            var documented = 0
            for operation in api.registry.operations {
                let entry = document["paths"]?[operation.path]?[operation.method.rawValue.lowercased()]
                #expect(entry != nil, "\(operation.operationID) is not in the document")
                let declared = try #require(api.registry.declarations[APIRouteRegistry.key(operation.method, RouterPath(operation.routerPath).description)])
                #expect(entry?["x-agentbox-access"] == .string(declared.access.name), "\(operation.operationID)")
                #expect(entry?["x-agentbox-scope"] == .string(declared.scope.rawValue), "\(operation.operationID)")
                #expect(entry?["operationId"] == .string(operation.operationID))
                // Scope follows the declared parameters: a workspace route names its key.
                #expect((declared.scope == .workspace) == operation.path.hasPrefix("/v1/workspaces/{key}"), "\(operation.operationID)")
                documented += 1
            }
            #expect(documented == Self.served.count)
            let undocumented = Set(api.registry.declarations.keys).subtracting(
                api.registry.operations.map { APIRouteRegistry.key($0.method, RouterPath($0.routerPath).description) })
            // The only undocumented routes: the preview proxy's, and the Inspector's static files (open; not API).
            #expect(
                undocumented.allSatisfy { api.registry.declarations[$0]?.access == .previewToken || ($0.contains("/ui") && api.registry.declarations[$0]?.access == .open) },
                "\(undocumented)")
        }
    }

    @Test func everyReferencedSchemaIsDefined() async throws {
        try await withServer { client, _ in
            let text = String(buffer: try await client.execute(uri: "/v1/openapi.json", method: .get).body)
            let document = try decode(JSONValue.self, try await client.execute(uri: "/v1/openapi.json", method: .get))
            guard case .object(let root) = document, case .object(let components)? = root["components"],
                case .object(let schemas)? = components["schemas"]
            else {
                Issue.record("no schemas")
                return
            }
            let references = text.components(separatedBy: "#/components/schemas/").dropFirst().map { $0.prefix { $0 != "\"" } }
            #expect(!references.isEmpty)
            for name in references { #expect(schemas[String(name)] != nil, "missing schema \(name)") }
        }
    }
}
