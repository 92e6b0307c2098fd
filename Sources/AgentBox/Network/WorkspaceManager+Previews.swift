import AgentBoxAPI
import AgentBoxStore
import Foundation
import Synchronization

/// Preview URLs: `/preview/{token}/...` reaches a port of a workspace. Tokens are 32 characters of `[a-z0-9]`
/// from the system's cryptographic generator. The store keeps each token's SHA-256 (never the token) with its port
/// and expiry, so previews survive sleep and restarts while a copy of the store reaches none of them; the API names a
/// preview by its id (the hash's first 16 hex digits) once it is made. Revoking deletes it; destroying the
/// workspace deletes its own.
extension WorkspaceManager {
    /// The most unexpired previews one workspace may hold.
    public static let maxPreviewsPerWorkspace = 256

    /// Makes a preview URL for `port` of the workspace, valid for `lifetime` (the configured default when `nil`,
    /// at most the configured maximum). Does not boot the workspace.
    public func createPreview(key: WorkspaceKey, port: Int, lifetime: Duration? = nil) async throws -> Preview {
        try checkOpen()
        _ = try await workspace(key: key)
        try WorkspaceRuntime.validate(port: port)
        let lifetime = lifetime ?? configuration.previewDefaultLifetime
        guard lifetime > .zero, lifetime <= configuration.previewMaxLifetime else {
            throw AgentBoxError(
                .invalidArgument,
                "expiresInSeconds must be 1...\(configuration.previewMaxLifetime.components.seconds), not \(lifetime.components.seconds)")
        }
        let now = Date()
        let count = try await store.previews(of: key, now: now).count
        guard count < Self.maxPreviewsPerWorkspace else {
            throw AgentBoxError(.conflict, "workspace '\(key)' has \(count) previews, the most it may hold; revoke one first")
        }
        let token = RandomID.make(prefix: "", length: 32)
        let record = PreviewRecord(
            tokenHash: PreviewRecord.hash(token: token), workspaceKey: key, port: port, createdAt: now,
            expiresAt: now.addingTimeInterval(Double(lifetime.components.seconds) + Double(lifetime.components.attoseconds) / 1e18))
        try await store.createPreview(record)
        return Preview(token: token, id: record.id, port: record.port, path: "/preview/\(token)/", url: nil, expiresAt: record.expiresAt)
    }

    /// The workspace's unexpired previews, oldest first. Does not boot it.
    public func previews(key: WorkspaceKey) async throws -> PreviewList {
        _ = try await workspace(key: key)
        return PreviewList(items: try await store.previews(of: key, now: Date()).map { .init(id: $0.id, port: $0.port, expiresAt: $0.expiresAt) })
    }

    /// Revokes a preview, named by its token or its id: its URL answers 404 from now on.
    public func revokePreview(key: WorkspaceKey, token tokenOrID: String) async throws {
        try checkOpen()
        _ = try await workspace(key: key)
        var hash: String?
        if Self.isPreviewToken(tokenOrID) {
            hash = PreviewRecord.hash(token: tokenOrID)
        } else if tokenOrID.count == 16, tokenOrID.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }) {
            hash = try await store.previews(of: key, now: Date()).first { $0.id == tokenOrID }?.tokenHash
        }
        guard let hash, try await store.deletePreview(tokenHash: hash, of: key) else {
            throw AgentBoxError(.notFound, "workspace '\(key)' has no preview '\(tokenOrID.prefix(64))'")
        }
        previewCache.withLock { cache in cache = cache.filter { $0.value.tokenHash != hash } }
    }

    /// The workspace and port behind `token`; `notFound` when the token is malformed, unknown, revoked or expired
    /// (one answer for all, so that a guess learns nothing).
    public func resolvePreview(token: String) async throws -> (runtime: WorkspaceRuntime, port: Int) {
        let (key, port) = try await previewTarget(token: token)
        return (try await runtime(for: key), port)
    }

    /// The workspace and port behind `token` (404 for an unknown, expired or revoked one), without loading the
    /// workspace: in a cluster, the caller decides where it is served first.
    public func previewTarget(token: String) async throws -> (key: WorkspaceKey, port: Int) {
        try checkOpen()
        guard Self.isPreviewToken(token) else { throw AgentBoxError(.notFound, "no such preview") }
        var record = previewCache.withLock { $0[token] }
        if record == nil, let stored = try await store.preview(tokenHash: PreviewRecord.hash(token: token)) {
            record = stored
            previewCache.withLock { cache in
                if cache.count >= Self.previewCacheLimit { cache.removeAll(keepingCapacity: true) }
                cache[token] = stored
            }
        }
        guard let record, record.expiresAt > Date() else { throw AgentBoxError(.notFound, "no such preview") }
        return (record.workspaceKey, record.port)
    }

    static let previewCacheLimit = 4096

    /// The workspace and port behind `token` when it is already cached and unexpired, without waiting for anything:
    /// a proxy's per-request check that a token it resolved before still holds (revoking removes it from the cache).
    public func cachedPreview(token: String) -> (key: WorkspaceKey, port: Int)? {
        guard let record = previewCache.withLock({ $0[token] }), record.expiresAt > Date() else { return nil }
        return (record.workspaceKey, record.port)
    }

    /// Forgets the cached previews of a workspace that is being destroyed.
    func forgetPreviews(of key: WorkspaceKey) {
        previewCache.withLock { cache in cache = cache.filter { $0.value.workspaceKey != key } }
    }

    static func isPreviewToken(_ token: String) -> Bool { RandomID.isValid(token, prefix: "", length: 32) }
}
