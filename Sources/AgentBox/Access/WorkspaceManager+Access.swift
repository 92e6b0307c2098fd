import AgentBoxAPI
import AgentBoxStore
import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Who made a request: the server's own token (admin of everything), or an API token with a role and the workspace
/// patterns it may touch.
public struct AccessPrincipal: Sendable, Equatable {
    public var role: TokenRole
    /// Keys, or prefixes ending in `*`; `["*"]` for every workspace.
    public var workspaces: [String]
    /// The API token's id; `nil` for the server's own token and for tokens the auth hook admitted.
    public var tokenId: String?
    /// Who this is, for what must not be shared between callers (an MCP session): `server`, `token:ID`, `hook:HASH`.
    public var identity: String

    public init(role: TokenRole, workspaces: [String], tokenId: String?, identity: String? = nil) {
        self.role = role
        self.workspaces = workspaces
        self.tokenId = tokenId
        self.identity = identity ?? tokenId.map { "token:" + $0 } ?? "server"
    }

    /// The server's own token.
    public static let server = AccessPrincipal(role: .admin, workspaces: ["*"], tokenId: nil)

    /// Whether the principal's patterns match workspace `key` (an admin's always do).
    public func covers(_ key: WorkspaceKey) -> Bool {
        role == .admin || workspaces.contains { AccessToken.pattern($0, matches: key.rawValue) }
    }
}

/// What the auth hook is told about a request whose token the server does not know.
public struct AuthHookRequest: Sendable {
    public var method: String
    public var path: String
    public var workspace: String?

    public init(method: String, path: String, workspace: String?) {
        self.method = method
        self.path = path
        self.workspace = workspace
    }
}

extension WorkspaceManager {
    /// The most tokens a server keeps.
    public static let maxAccessTokens = 10_000

    /// Makes an API token; its secret is in the answer only (the store keeps its SHA-256).
    public func createAccessToken(_ request: TokenCreateRequest) async throws -> AccessToken {
        try checkOpen()
        guard (1...100).contains(request.workspaces.count) else {
            throw AgentBoxError(.invalidArgument, "workspaces: 1...100 patterns (a key, a prefix ending in *, or * for all)")
        }
        for pattern in request.workspaces {
            let stem = pattern.hasSuffix("*") ? String(pattern.dropLast()) : pattern
            guard stem.isEmpty && pattern == "*" || WorkspaceKey(rawValue: stem) != nil || (pattern.hasSuffix("*") && Self.isKeyPrefix(stem)) else {
                throw AgentBoxError(.invalidArgument, "workspaces: '\(pattern.prefix(80))' is not a workspace key or a prefix ending in *")
            }
        }
        if let seconds = request.expiresInSeconds, !(1...(10 * 365 * 86_400)).contains(seconds) {
            throw AgentBoxError(.invalidArgument, "expiresInSeconds: 1...315360000, not \(seconds)")
        }
        if let label = request.label, label.utf8.count > 200 { throw AgentBoxError(.invalidArgument, "label: at most 200 bytes") }
        guard try await store.accessTokens().count < Self.maxAccessTokens else {
            throw AgentBoxError(.conflict, "this server already has \(Self.maxAccessTokens) tokens; revoke some first")
        }
        let now = Date()
        return try await mintAccessToken(
            role: request.role, workspaces: request.workspaces, label: request.label,
            expiresAt: request.expiresInSeconds.map { now.addingTimeInterval(Double($0)) }, parentId: nil)
    }

    /// Stores a new token and answers it with its secret.
    func mintAccessToken(role: TokenRole, workspaces: [String], label: String?, expiresAt: Date?, parentId: String?) async throws -> AccessToken {
        let secret = RandomID.make(prefix: "abx_", length: 40)
        let record = AccessTokenRecord(
            id: RandomID.make(prefix: "tok_", length: 16), hash: Self.tokenHash(secret), role: role, workspaces: workspaces,
            label: label, createdAt: Date(), expiresAt: expiresAt, parentId: parentId)
        try await store.createAccessToken(record)
        var token = Self.shown(record)
        token.token = secret
        return token
    }

    /// Every token, without its secret.
    public func accessTokens() async throws -> AccessTokenList {
        try checkOpen()
        return AccessTokenList(items: try await store.accessTokens().map(Self.shown))
    }

    /// Revokes token `id` at once: its next request is refused, and the streams it has open end (see
    /// ``revocations(of:)``).
    public func revokeAccessToken(id: String) async throws {
        try checkOpen()
        let records = try await store.deleteAccessToken(id: id)
        guard !records.isEmpty else { throw AgentBoxError(.notFound, "no token '\(id.prefix(80))'") }
        for record in records {
            accessCache.withLock { _ = $0.removeValue(forKey: record.hash) }
            let waiters = revocationWaiters.withLock { $0.removeValue(forKey: record.id) ?? [:] }
            for waiter in waiters.values { waiter.finish() }
        }
    }

    /// The principal of API token `secret`, or `nil` when it is unknown, revoked or expired. Looked up once, then
    /// remembered (revocation forgets it). A token this server does not know goes to the auth hook, when there is one
    /// (``AgentBoxConfiguration/authHook``), with what the request is: `request`.
    public func principal(forToken secret: String, request: AuthHookRequest? = nil) async -> AccessPrincipal? {
        guard secret.utf8.count <= 4096, !secret.isEmpty else { return nil }
        let hash = Self.tokenHash(secret)
        guard secret.hasPrefix("abx_") else {
            guard let hook = configuration.authHook, let request else { return nil }
            return await hookPrincipal(secret, hash: hash, hook: hook, request: request)
        }
        var record = accessCache.withLock { $0[hash] }
        if record == nil {
            guard let stored = try? await store.accessToken(hash: hash) else { return nil }
            record = stored
            accessCache.withLock { cache in
                if cache.count >= 4096 { cache.removeAll() }
                cache[hash] = stored
            }
        }
        guard let record else {
            guard let hook = configuration.authHook, let request else { return nil }
            return await hookPrincipal(secret, hash: hash, hook: hook, request: request)
        }
        if let expiresAt = record.expiresAt, expiresAt <= Date() { return nil }
        return AccessPrincipal(role: record.role, workspaces: record.workspaces, tokenId: record.id)
    }

    /// Asks the auth hook about a token this server does not know: `POST {token, method, path, workspace?}`; a 200
    /// `{allow: true, role, workspaces, ttlSeconds?}` admits it, and its answer is kept for `ttlSeconds` (none: asked
    /// again next time). Anything else refuses: another status, `allow: false`, a malformed answer, a hook that is
    /// down or slower than 5 s. A refusal with `ttlSeconds` is kept as long too.
    private func hookPrincipal(_ secret: String, hash: String, hook: URL, request: AuthHookRequest) async -> AccessPrincipal? {
        let now = ContinuousClock.now
        if let kept = hookAnswers.withLock({ $0[hash] }), kept.until > now { return kept.principal }
        var outbound = HTTPClientRequest(url: hook.absoluteString)
        outbound.method = .POST
        outbound.headers.add(name: "content-type", value: "application/json")
        var body: [String: JSONValue] = ["token": .string(secret), "method": .string(request.method), "path": .string(request.path)]
        if let workspace = request.workspace { body["workspace"] = .string(workspace) }
        outbound.body = .bytes(ByteBuffer(bytes: JSONValue.object(body).jsonBytes))
        let answer: JSONValue
        do {
            let response = try await HTTPClient.shared.execute(outbound, timeout: .seconds(5))
            guard response.status == .ok else { return nil }
            answer = try JSONValue.parse(Array(try await response.body.collect(upTo: 64 << 10).readableBytesView))
        } catch {
            logger.warning("the auth hook did not answer; the token is refused", metadata: ["error": "\(error)"])
            return nil
        }
        var principal: AccessPrincipal?
        if answer["allow"] == .bool(true), let role = answer["role"]?.stringValue.flatMap(TokenRole.init(rawValue:)),
            case .array(let patterns)? = answer["workspaces"]
        {
            let workspaces = patterns.compactMap(\.stringValue)
            if workspaces.count == patterns.count, !workspaces.isEmpty {
                principal = AccessPrincipal(role: role, workspaces: workspaces, tokenId: nil, identity: "hook:" + hash.prefix(32))
            }
        }
        if case .number(let ttl)? = answer["ttlSeconds"], ttl > 0 {
            let until = now + .seconds(min(ttl, 86_400))
            hookAnswers.withLock { answers in
                if answers.count >= 4096 { answers.removeAll() }
                answers[hash] = (principal, until)
            }
        }
        return principal
    }

    /// Ends when token `id` is revoked (at once if it no longer exists): what a stream opened with it waits on.
    public func revocations(of id: String) async -> AsyncStream<Never> {
        let (stream, continuation) = AsyncStream<Never>.makeStream()
        let waiter = UUID()
        revocationWaiters.withLock { $0[id, default: [:]][waiter] = continuation }
        // A stream that ends (or is dropped unread) stops waiting.
        continuation.onTermination = { [weak self] _ in
            self?.revocationWaiters.withLock { waiters in
                waiters[id]?[waiter] = nil
                if waiters[id]?.isEmpty == true { waiters[id] = nil }
            }
        }
        if (try? await store.accessTokens().contains { $0.id == id }) != true {
            continuation.finish()
        }
        return stream
    }

    static func tokenHash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func shown(_ record: AccessTokenRecord) -> AccessToken {
        AccessToken(
            id: record.id, workspaces: record.workspaces, role: record.role, createdAt: record.createdAt, expiresAt: record.expiresAt, label: record.label,
            parentId: record.parentId)
    }

    /// Whether `text` could begin a workspace key (the characters keys are made of).
    static func isKeyPrefix(_ text: String) -> Bool {
        !text.isEmpty && WorkspaceKey(rawValue: text + "a") != nil
    }
}
