import AgentBox
import AgentBoxAPI
import AgentBoxServer
import AgentBoxStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import AgentBoxServer

/// `/ui/` (the Inspector's static files) and its login links.
@Suite("Inspector and login links")
struct InspectorRouteTests {
    func withServer(uiDirectory: String?, _ body: @Sendable (any TestClientProtocol, WorkspaceManager) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-routes-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let manager = try WorkspaceManager.open(
            configuration: AgentBoxConfiguration(dataDirectory: directory), store: try SQLiteStore.open(in: directory), logger: logger)
        let app = try buildApplication(manager: manager, configuration: ServerConfiguration(token: "t", uiDirectory: uiDirectory), logger: logger)
        try await app.test(.router) { client in try await body(client, manager) }
        await manager.shutdown()
    }

    /// A folder standing in for the app, with a symbolic link out of it and a hidden file.
    func makeApp() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-ui-\(UUID())")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("vendor"), withIntermediateDirectories: true)
        try Data("<!doctype html><title>Inspector</title>".utf8).write(to: folder.appendingPathComponent("index.html"))
        try Data("export const a = 1\n".utf8).write(to: folder.appendingPathComponent("app.js"))
        try Data(".x{}".utf8).write(to: folder.appendingPathComponent("vendor/x.css"))
        try Data("secret".utf8).write(to: folder.appendingPathComponent(".env"))
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("out.txt").path, withDestinationPath: "/etc/hostname")
        return folder
    }

    @Test func servesTheAppsFilesAndNothingElse() async throws {
        let app = try makeApp()
        defer { try? FileManager.default.removeItem(at: app) }
        try await withServer(uiDirectory: app.path) { client, _ in
            // Without a token: the files hold no secret.
            let index = try await client.execute(uri: "/ui/", method: .get)
            #expect(index.status == .ok && String(buffer: index.body).contains("<title>Inspector</title>"))
            #expect(index.headers[.contentType] == "text/html; charset=utf-8")
            let policy = try #require(index.headers[.contentSecurityPolicy])
            #expect(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'") && policy.contains("connect-src 'self'"))
            #expect(index.headers[.xContentTypeOptions] == "nosniff")
            let redirect = try await client.execute(uri: "/ui", method: .get)
            #expect(redirect.status == .permanentRedirect && redirect.headers[.location] == "/ui/")
            #expect(try await client.execute(uri: "/ui/app.js", method: .get).headers[.contentType] == "text/javascript; charset=utf-8")
            #expect(try await client.execute(uri: "/ui/vendor/x.css", method: .get).headers[.contentType] == "text/css; charset=utf-8")
            // Outside the folder, hidden, a folder, encoded dots, absent: 404 problem+json, never the file.
            for path in ["/ui/out.txt", "/ui/.env", "/ui/vendor", "/ui/%2e%2e/%2e%2e/etc/passwd", "/ui/vendor/..%2f..%2fetc%2fpasswd", "/ui/nope.js"] {
                let response = try await client.execute(uri: path, method: .get)
                #expect(response.status == .notFound, "\(path): \(response.status)")
                #expect(response.headers[.contentType] == "application/problem+json", "\(path)")
                #expect(!String(buffer: response.body).contains("secret"), "\(path)")
            }
        }
    }

    @Test func withoutTheFilesTheRouteSaysWhatIsMissing() async throws {
        try await withServer(uiDirectory: nil) { client, _ in
            // The test binary has the resources beside it only when SwiftPM copied them; either answer is a clear one.
            let response = try await client.execute(uri: "/ui/", method: .get)
            if response.status == .notFound {
                #expect(String(buffer: response.body).contains("--ui-dir"))
            } else {
                #expect(response.status == .ok && response.headers[.contentSecurityPolicy] != nil)
            }
        }
        #expect(throws: AgentBoxError.self) { try ServerConfiguration(token: "t", uiDirectory: "/nonexistent").validate() }
    }

    @Test func aLoginLinkWorksOnceAndMakesATokenRevokedWithItsMaker() async throws {
        try await withServer(uiDirectory: nil) { client, manager in
            let reader = try await manager.createAccessToken(TokenCreateRequest(workspaces: ["team-*"], role: .reader, expiresInSeconds: 600))
            // Any role may make a link for itself (a reader too); no token may not.
            #expect(try await client.execute(uri: "/v1/login-links", method: .post).status == .unauthorized)
            let made = try await client.execute(uri: "/v1/login-links", method: .post, headers: [.authorization: "Bearer \(reader.token!)"])
            #expect(made.status == .created)
            let link = try AgentBoxJSON.makeDecoder().decode(LoginLink.self, from: Data(String(buffer: made.body).utf8))
            #expect(link.url == "/ui/#login=" + link.code && link.expiresAt > Date() && link.expiresAt < Date().addingTimeInterval(200))
            // Exchanged once, with no token: the reader's role and workspaces, no longer than the reader's own expiry.
            let body = ByteBuffer(string: #"{"code":"\#(link.code)"}"#)
            let json: HTTPFields = [.contentType: "application/json"]
            let first = try await client.execute(uri: "/v1/login", method: .post, headers: json, body: body)
            #expect(first.status == .ok)
            let token = try AgentBoxJSON.makeDecoder().decode(AccessToken.self, from: Data(String(buffer: first.body).utf8))
            #expect(token.role == .reader && token.workspaces == ["team-*"] && token.parentId == reader.id)
            #expect(try #require(token.expiresAt) <= reader.expiresAt!)
            let again = try await client.execute(uri: "/v1/login", method: .post, headers: json, body: body)
            #expect(again.status == .unauthorized && again.headers[.contentType] == "application/problem+json")
            // The new token works, as a reader; revoking the reader revokes it.
            let secret = try #require(token.token)
            #expect(try await client.execute(uri: "/v1/workspaces", method: .get, headers: [.authorization: "Bearer \(secret)"]).status == .ok)
            try await manager.revokeAccessToken(id: reader.id)
            #expect(try await client.execute(uri: "/v1/workspaces", method: .get, headers: [.authorization: "Bearer \(secret)"]).status == .unauthorized)
            #expect(try await manager.accessTokens().items.isEmpty)
            // The server's own token makes admin logins of at most 12 h.
            let adminLink = try await manager.createLoginLink(for: .server)
            let admin = try await manager.login(code: adminLink.code)
            #expect(admin.role == .admin && admin.parentId == nil && admin.expiresAt! <= Date().addingTimeInterval(12 * 3600 + 1))
            // Bad input: unknown, malformed, oversized codes are 401 or 400, never 5xx.
            for bad in [#"{"code":"abl_nope"}"#, #"{"code":""}"#, #"{"code":"\#(String(repeating: "a", count: 5000))"}"#] {
                let response = try await client.execute(uri: "/v1/login", method: .post, headers: json, body: ByteBuffer(string: bad))
                #expect(response.status == .unauthorized, "\(bad.prefix(40))")
            }
            for bad in ["{", "[]", #"{"code":1}"#] {
                #expect(try await client.execute(uri: "/v1/login", method: .post, headers: json, body: ByteBuffer(string: bad)).status == .badRequest)
            }
        }
    }

    @Test func tokensTheHookAdmittedMakeNoLinksAndLinksAreBounded() async throws {
        try await withServer(uiDirectory: nil) { _, manager in
            let hooked = AccessPrincipal(role: .user, workspaces: ["*"], tokenId: nil, identity: "hook:abc")
            await #expect(throws: AgentBoxError.self) { _ = try await manager.createLoginLink(for: hooked) }
            for _ in 0..<1000 { _ = try await manager.createLoginLink(for: .server) }
            let refused = await #expect(throws: AgentBoxError.self) { _ = try await manager.createLoginLink(for: .server) }
            #expect(refused?.code == .limitReached)
        }
    }
}
