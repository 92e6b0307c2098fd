import AgentBoxAPI
import AgentBoxStore
import Foundation
import Synchronization

/// A login link made and not yet used: who made it, and until when it works.
struct PendingLogin: Sendable {
    var principal: AccessPrincipal
    var until: Date
}

extension WorkspaceManager {
    /// How long a login link works, once.
    public static let loginLinkLifetime: TimeInterval = 120
    /// How long the token a login link gives works (at most; never longer than the token that made the link).
    public static let loginTokenLifetime: TimeInterval = 12 * 3600
    /// The most login links waiting to be used.
    static let maxPendingLogins = 1000

    /// A one-time code that logs a browser into the Inspector as `principal`: `POST /v1/login` exchanges it, within
    /// ``loginLinkLifetime``, for a new token of the same role and workspaces. That token is made from the caller's
    /// (``AccessTokenRecord/parentId``): revoking the caller's token revokes it, and it expires no later than the
    /// caller's, and after ``loginTokenLifetime`` at most. The server's own token makes admin tokens.
    ///
    /// The code, not a token, is what travels in the link, so a link that leaks into a shell's history or a screen
    /// share is worth nothing once used or two minutes old. Tokens the auth hook admitted cannot make links: the
    /// hook decides about them on every use, which a token of the server's own would bypass.
    public func createLoginLink(for principal: AccessPrincipal) async throws -> LoginLink {
        try checkOpen()
        guard principal.tokenId != nil || principal == .server else {
            throw AgentBoxError(
                .invalidArgument, "login links are made with tokens this server issued; log in to the Inspector with this token itself")
        }
        let code = RandomID.make(prefix: "abl_", length: 40)
        let now = Date()
        let until = now.addingTimeInterval(Self.loginLinkLifetime)
        try loginLinks.withLock { links in
            links = links.filter { $0.value.until > now }
            guard links.count < Self.maxPendingLogins else {
                throw AgentBoxError(.limitReached, "\(Self.maxPendingLogins) login links are waiting to be used; try again in a minute")
            }
            links[Self.tokenHash(code)] = PendingLogin(principal: principal, until: until)
        }
        return LoginLink(code: code, url: "/ui/#login=" + code, expiresAt: until)
    }

    /// Exchanges a login link's code for a token (with its secret), once. A code that is unknown, used or expired is
    /// `unauthenticated`, as is one whose maker's token has been revoked or has expired since.
    public func login(code: String) async throws -> AccessToken {
        try checkOpen()
        let refused = AgentBoxError(.unauthenticated, "this login link is unknown, used or expired; make another with `agentbox ui`")
        guard code.utf8.count <= 200 else { throw refused }
        let now = Date()
        guard let pending = loginLinks.withLock({ $0.removeValue(forKey: Self.tokenHash(code)) }), pending.until > now else { throw refused }
        let principal = pending.principal
        var expiresAt = now.addingTimeInterval(Self.loginTokenLifetime)
        if let parent = principal.tokenId {
            guard let record = try await store.accessTokens().first(where: { $0.id == parent }) else { throw refused }
            if let parentExpiry = record.expiresAt {
                guard parentExpiry > now else { throw refused }
                expiresAt = min(expiresAt, parentExpiry)
            }
        }
        return try await mintAccessToken(
            role: principal.role, workspaces: principal.workspaces, label: "Inspector login" + (principal.tokenId.map { " (from \($0))" } ?? ""),
            expiresAt: expiresAt, parentId: principal.tokenId)
    }
}
