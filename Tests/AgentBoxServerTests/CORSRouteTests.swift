import AgentBox
import AgentBoxAPI
import AgentBoxServer
import AgentBoxStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import AgentBoxServer

/// `serve --cors-origin`: browsers of the listed origins may call the API (preflights answered before the token is
/// asked for), and no other origin gets a CORS header.
@Suite("CORS")
struct CORSRouteTests {
    func withCORSServer(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-routes-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let manager = try WorkspaceManager.open(
            configuration: AgentBoxConfiguration(dataDirectory: directory), store: try SQLiteStore.open(in: directory), logger: logger)
        let app = try buildApplication(
            manager: manager, configuration: ServerConfiguration(token: "t", corsOrigins: ["https://app.example.com", "http://localhost:5173"]),
            logger: logger)
        try await app.test(.router) { client in try await body(client) }
        await manager.shutdown()
    }

    @Test func listedOriginsOnly() async throws {
        try await withCORSServer { client in
            // A preflight from a listed origin: 204 with the methods and headers, before any token.
            let preflight = try await client.execute(
                uri: "/v1/workspaces/w", method: .options,
                headers: [.origin: "https://app.example.com", .accessControlRequestMethod: "PUT", .accessControlRequestHeaders: "authorization, content-type"])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://app.example.com")
            #expect(preflight.headers[.accessControlAllowMethods]?.contains("PUT") == true)
            #expect(preflight.headers[.accessControlAllowHeaders]?.contains("authorization") == true)
            #expect(preflight.headers[.accessControlAllowCredentials] == nil, "no cookies: the page sends the token itself")
            // The call itself: answered with the origin, and still needs the token.
            let anonymous = try await client.execute(uri: "/v1/workspaces", method: .get, headers: [.origin: "http://localhost:5173"])
            #expect(anonymous.status == .unauthorized && anonymous.headers[.accessControlAllowOrigin] == "http://localhost:5173")
            let listed = try await client.execute(
                uri: "/v1/workspaces", method: .get, headers: [.origin: "http://localhost:5173", .authorization: "Bearer t"])
            #expect(listed.status == .ok && listed.headers[.accessControlAllowOrigin] == "http://localhost:5173")
            #expect(listed.headers[values: .vary].contains { $0.contains("Origin") })
            // Any other origin, or a look-alike: no CORS header on the preflight or the call.
            for origin in ["https://evil.example", "https://app.example.com.evil.example", "null", "https://APP.example.com"] {
                let refused = try await client.execute(
                    uri: "/v1/workspaces", method: .options, headers: [.origin: origin, .accessControlRequestMethod: "GET"])
                #expect(refused.headers[.accessControlAllowOrigin] == nil && refused.headers[.accessControlAllowMethods] == nil, "\(origin)")
                let call = try await client.execute(uri: "/v1/workspaces", method: .get, headers: [.origin: origin, .authorization: "Bearer t"])
                #expect(call.status == .ok && call.headers[.accessControlAllowOrigin] == nil, "\(origin)")
            }
        }
    }

    @Test func originsAreCheckedAtStart() {
        for bad in ["app.example.com", "https://app.example.com/", "https://app.example.com/path", "ftp://x", "https://", "https://a b"] {
            #expect(throws: (any Error).self, "\(bad)") { try ServerConfiguration(corsOrigins: [bad]).validate() }
        }
        #expect(throws: Never.self) { try ServerConfiguration(corsOrigins: ["https://app.example.com", "http://localhost:5173"]).validate() }
    }
}
