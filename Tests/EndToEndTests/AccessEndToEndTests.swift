import AgentBoxAPI
import AgentBoxClient
import AsyncHTTPClient
import ChildProcessSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// Scoped API tokens against the real binary: every documented route, walked with each kind of caller, answers as its
/// declaration says; revoking a token ends its open streams.
@Suite("Access with scoped tokens", .timeLimit(.minutes(3)))
struct AccessEndToEndTests {
    enum Caller: String, CaseIterable {
        case admin, userInScope, userOutOfScope, reader, expired, revoked, unknown
    }

    @Test func everyRouteAnswersEachCallerAsDeclared() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let admin = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            func make(_ role: TokenRole, _ patterns: [String], expires: Int? = nil) async throws -> AccessToken {
                try await admin.createToken(TokenCreateRequest(workspaces: patterns, role: role, expiresInSeconds: expires, label: "\(role)"))
            }
            let adminToken = try await make(.admin, ["*"]), user = try await make(.user, ["in-*"]), reader = try await make(.reader, ["in-*"])
            let expired = try await make(.user, ["*"], expires: 1), revoked = try await make(.admin, ["*"])
            try await admin.revokeToken(revoked.id)
            #expect(try await admin.tokens().items.map(\.id).contains(revoked.id) == false)
            #expect(try await admin.tokens().items.allSatisfy { $0.token == nil }, "secrets are never listed")
            try await Task.sleep(for: .milliseconds(1100))
            let secrets: [Caller: String] = [
                .admin: adminToken.token!, .userInScope: user.token!, .userOutOfScope: user.token!, .reader: reader.token!,
                .expired: expired.token!, .revoked: revoked.token!, .unknown: "abx_" + String(repeating: "x", count: 40),
            ]

            let (_, body) = try await AttackEndToEndTests.get(server, "/v1/openapi.json", authorized: true)
            let document = try JSONDecoder().decode(JSONValue.self, from: Data(body.utf8))
            guard case .object(let paths)? = document["paths"] else { Issue.record("no paths"); return }
            var checked = 0
            for (template, item) in paths.sorted(by: { $0.key < $1.key }) {
                guard case .object(let methods) = item else { continue }
                for (method, operation) in methods.sorted(by: { $0.key < $1.key }) {
                    if case .array(let security)? = operation["security"], security.isEmpty { continue }  // open, previews, the gateway
                    let workspaceScoped = operation["x-agentbox-scope"] == "workspace"
                    let scopedTokens = operation["x-agentbox-scoped-tokens"] == .bool(true)
                    let everyRole = operation["x-agentbox-every-role"] == .bool(true)
                    let reads = method == "get" || method == "head"
                    for caller in Caller.allCases {
                        let key = caller == .userOutOfScope ? "out-k" : "in-k"
                        let path = template.replacingOccurrences(of: "{key}", with: key)
                            .replacingOccurrences(of: #"\{[^}]+\}"#, with: "x", options: .regularExpression)
                        var request = HTTPClientRequest(url: server.endpoint.absoluteString + path)
                        request.method = .init(rawValue: method.uppercased())
                        request.headers.add(name: "authorization", value: "Bearer \(secrets[caller]!)")
                        request.headers.add(name: "content-type", value: "application/json")
                        request.headers.add(name: "accept", value: "application/json, text/event-stream")
                        request.body = .bytes(ByteBuffer(string: "{}"))
                        // The head is enough: a stream's body is not read.
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                        let status = Int(response.status.code)
                        let expected: String
                        switch caller {
                        case .expired, .revoked, .unknown: expected = "401"
                        case .admin: expected = "allowed"
                        case .userInScope, .userOutOfScope, .reader:
                            let covered = caller != .userOutOfScope
                            if everyRole {
                                expected = "allowed"
                            } else if caller == .reader && !reads {
                                expected = "403"
                            } else if workspaceScoped {
                                expected = covered ? "allowed" : "403"
                            } else if scopedTokens {
                                expected = caller == .reader && path.hasPrefix("/v1/mcp") ? "403" : "allowed"
                            } else {
                                expected = "403"
                            }
                        }
                        let got = status == 401 ? "401" : status == 403 ? "403" : "allowed"
                        #expect(got == expected, "\(method.uppercased()) \(path) as \(caller): \(status)")
                        checked += 1
                    }
                }
            }
            #expect(checked > 500, "\(checked) checks")
            // A scoped user lists only its own workspaces, and may not give itself a budget or host toolkits.
            _ = try await admin.putWorkspace("in-a")
            _ = try await admin.putWorkspace("out-b")
            let scoped = AgentBoxClient(endpoint: server.endpoint, token: user.token!)
            #expect(try await scoped.workspaces().items.map(\.key.rawValue).allSatisfy { $0.hasPrefix("in-") })
            await #expect(throws: AgentBoxClientError.self) { _ = try await scoped.putWorkspace("in-c", config: WorkspaceConfig(llm: LLMBudget(maxRequests: 1_000_000))) }
            await #expect(throws: AgentBoxClientError.self) { _ = try await scoped.putWorkspace("in-c", config: WorkspaceConfig(toolkits: ["web"])) }
            _ = try await scoped.putWorkspace("in-c")
            // Bad requests to the token routes: 400, and the secrets are not in the store.
            await #expect(throws: AgentBoxClientError.self) { _ = try await admin.createToken(TokenCreateRequest(workspaces: [], role: .user)) }
            await #expect(throws: AgentBoxClientError.self) { _ = try await admin.createToken(TokenCreateRequest(workspaces: ["bad key!"], role: .user)) }
            await #expect(throws: AgentBoxClientError.self) { _ = try await admin.createToken(TokenCreateRequest(workspaces: ["*"], role: .user, expiresInSeconds: 0)) }
            await #expect(throws: AgentBoxClientError.self) { try await admin.revokeToken("tok_nope") }
            await server.stop()
            for name in ["agentbox.sqlite", "agentbox.sqlite-wal"] {
                let bytes = (try? Data(contentsOf: data.appendingPathComponent(name))) ?? Data()
                #expect(bytes.range(of: Data(user.token!.utf8)) == nil, "\(name) holds a token's secret")
            }
        }
    }

    /// Revoking a token ends the streams it opened: a workspace's event stream and a session's transcript stream.
    @Test func revocationEndsTheTokensStreams() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let admin = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await admin.putWorkspace("in-s")
            let token = try await admin.createToken(TokenCreateRequest(workspaces: ["in-s"], role: .reader))
            let reader = AgentBoxClient(endpoint: server.endpoint, token: token.token!)
            let events = try await reader.events("in-s")
            let ended = Task {
                for try await _ in events {}
                return ContinuousClock.now
            }
            try await Task.sleep(for: .milliseconds(300))
            let revokedAt = ContinuousClock.now
            try await admin.revokeToken(token.id)
            let end = try await ended.value
            #expect(end - revokedAt < .seconds(5), "the stream ended \(end - revokedAt) after the revocation")
            await #expect(throws: AgentBoxClientError.self) { _ = try await reader.workspace("in-s") }
            await server.stop()
        }
    }

    /// The CLI as a person uses it: `tokens create|list|revoke`, and `agentbox ui` printing a login link that the
    /// Inspector page (here: a plain client) exchanges once for a token of its own, revoked with the maker's.
    @Test func theCLIMakesTokensAndLoginLinks() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            var environment = ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!]
            func cli(_ arguments: String...) async throws -> (status: Int32, stdout: String, stderr: String) {
                try await AgentBoxBinary.run(arguments, environment: environment)
            }
            let made = try await cli("tokens", "create", "--workspace", "team-*", "--role", "user", "--expires", "1h", "--label", "team")
            #expect(made.status == 0, "\(made.stderr)")
            let secret = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(secret.hasPrefix("abx_") && made.stderr.contains("not shown again"))
            let listed = try await cli("tokens", "list")
            #expect(listed.stdout.contains("team-*") && listed.stdout.contains("user") && !listed.stdout.contains(secret))
            // The link is made with the user's token, and is the server's address plus /ui/#login=CODE.
            environment["AGENTBOX_TOKEN"] = secret
            let ui = try await cli("ui")
            #expect(ui.status == 0, "\(ui.stderr)")
            let url = ui.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(url.hasPrefix(server.endpoint.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/ui/#login=abl_"), "\(url)")
            let code = String(url[url.range(of: "#login=")!.upperBound...])
            let anonymous = AgentBoxClient(endpoint: server.endpoint, token: nil)
            let browser = try await anonymous.login(code: code)
            #expect(browser.role == .user && browser.workspaces == ["team-*"])
            await #expect(throws: AgentBoxClientError.self) { _ = try await anonymous.login(code: code) }
            let page = AgentBoxClient(endpoint: server.endpoint, token: browser.token!)
            _ = try await page.putWorkspace("team-a")
            await #expect(throws: AgentBoxClientError.self) { _ = try await page.putWorkspace("other") }
            // Revoking the user's token (by id, from the list) ends the browser's too.
            environment["AGENTBOX_TOKEN"] = server.token!
            let id = try #require(try await AgentBoxClient(endpoint: server.endpoint, token: server.token).tokens().items.first { $0.label == "team" }?.id)
            #expect(try await cli("tokens", "revoke", id).status == 0)
            await #expect(throws: AgentBoxClientError.self) { _ = try await page.workspaces() }
            #expect(try await cli("ui", "--help").stdout.contains("agentbox ui --open"))
            // The Inspector's files come with the binary.
            let (status, index) = try await AttackEndToEndTests.get(server, "/ui/", authorized: false)
            #expect(status == 200 && index.contains("<html"), "\(status)")
            await server.stop()
        }
    }
}

@Suite("The auth hook", .timeLimit(.minutes(2)))
struct AuthHookEndToEndTests {
    /// `serve --auth-hook`: a token the server does not know is admitted as the hook says, its answer kept for its ttl;
    /// a refusal, and a hook that is down, refuse.
    @Test func theHookAdmitsKeepsAndRefuses() async throws {
        try await withPythonHelper("auth_hook.py") { port, hook in try await exercise(port: port, hook: hook) }
    }

    func exercise(port: Int, hook: ChildProcess) async throws {
        func asked() async throws -> Int {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/count"), timeout: .seconds(10))
            guard case .number(let count)? = try JSONValue.parse(Array(try await response.body.collect(upTo: 1024).readableBytesView))["count"] else { return -1 }
            return Int(count)
        }
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--auth-hook", "http://127.0.0.1:\(port)/check"])
            let admin = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await admin.putWorkspace("in-a")
            _ = try await admin.putWorkspace("out-b")
            let user = AgentBoxClient(endpoint: server.endpoint, token: "hook-user")
            #expect(try await user.workspace("in-a").key.rawValue == "in-a")
            #expect(try await user.exec("in-a", command: "echo hi").stdout == "hi\n")
            await #expect(throws: AgentBoxClientError.self) { _ = try await user.workspace("out-b") }
            await #expect(throws: AgentBoxClientError.self) { _ = try await user.toolkits() }
            #expect(try await asked() == 1, "the answer is kept for its ttl")
            // Kept only with a ttl: a reader admitted without one is asked about each time, and may only read.
            let reader = AgentBoxClient(endpoint: server.endpoint, token: "hook-short")
            _ = try await reader.workspace("in-a")
            _ = try await reader.workspace("in-a")
            #expect(try await asked() == 3)
            await #expect(throws: AgentBoxClientError.self) { _ = try await reader.exec("in-a", command: "true") }
            // Refused by the hook: 401.
            let stranger = AgentBoxClient(endpoint: server.endpoint, token: "nobody")
            let refused = await #expect(throws: AgentBoxClientError.self) { _ = try await stranger.workspace("in-a") }
            #expect(refused?.status == 401)
            // The hook down: refused, never admitted; what was kept still holds until its ttl.
            hook.signal(SIGKILL)
            hook.waitUntilExit()
            let down = await #expect(throws: AgentBoxClientError.self) { _ = try await reader.workspace("in-a") }
            #expect(down?.status == 401)
            #expect(try await user.workspace("in-a").key.rawValue == "in-a")
            await server.stop()
        }
    }
}
