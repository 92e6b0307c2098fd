import AgentBoxAPI
import AsyncHTTPClient
import Foundation
import NIOHTTP1

/// API tokens (admin only): tokens scoped to workspaces and a role, for the people and programs you hand workspaces to.
extension AgentBoxClient {
    /// Makes a token; its secret (`token`) is in this answer only.
    ///
    /// ```swift
    /// let made = try await admin.createToken(TokenCreateRequest(workspaces: ["team-a-*"], role: .user, expiresInSeconds: 86_400))
    /// let scoped = AgentBoxClient(endpoint: endpoint, token: made.token!)
    /// ```
    public func createToken(_ request: TokenCreateRequest) async throws -> AccessToken {
        try await send(.POST, "/v1/tokens", json: request)
    }

    /// The tokens, without their secrets.
    public func tokens() async throws -> AccessTokenList {
        try await send(.GET, "/v1/tokens")
    }

    /// Revokes a token at once; its open streams end.
    public func revokeToken(_ id: String) async throws {
        _ = try await perform(.DELETE, "/v1/tokens/" + Self.segment(id))
    }

    /// A one-time Inspector login link for this client's token (any role): open `endpoint` + `url` in a browser
    /// within two minutes. The browser gets a token of its own, made from this one (revoking this one revokes it).
    ///
    /// ```swift
    /// let link = try await client.createLoginLink()
    /// print(client.endpoint.absoluteString + link.url)   // http://127.0.0.1:2468/ui/#login=abl_…
    /// ```
    public func createLoginLink() async throws -> LoginLink {
        try await send(.POST, "/v1/login-links")
    }

    /// Exchanges a login link's code for a token (what the Inspector does with `#login=CODE`). Works once.
    public func login(code: String) async throws -> AccessToken {
        try await send(.POST, "/v1/login", json: LoginRequest(code: code))
    }
}
