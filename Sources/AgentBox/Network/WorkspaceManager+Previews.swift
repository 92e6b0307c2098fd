import AgentBoxAPI
import AgentBoxStore
import Foundation

/// Preview URLs: `/preview/{token}/...` reaches a port of a workspace. Tokens are 32 characters of `[a-z0-9]`
/// from the system's cryptographic generator, kept in the store with their port and expiry, so they survive sleep
/// and restarts; revoking deletes them; destroying the workspace deletes its own.
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
        let record = PreviewRecord(
            token: RandomID.make(prefix: "", length: 32), workspaceKey: key, port: port, createdAt: now,
            expiresAt: now.addingTimeInterval(Double(lifetime.components.seconds) + Double(lifetime.components.attoseconds) / 1e18))
        try await store.createPreview(record)
        return Self.wire(record)
    }

    /// The workspace's unexpired previews, oldest first. Does not boot it.
    public func previews(key: WorkspaceKey) async throws -> PreviewList {
        _ = try await workspace(key: key)
        return PreviewList(items: try await store.previews(of: key, now: Date()).map { .init(token: $0.token, port: $0.port, expiresAt: $0.expiresAt) })
    }

    /// Revokes a preview: its URL answers 404 from now on.
    public func revokePreview(key: WorkspaceKey, token: String) async throws {
        try checkOpen()
        _ = try await workspace(key: key)
        previewCache.withLock { _ = $0.removeValue(forKey: token) }
        guard Self.isPreviewToken(token), try await store.deletePreview(token: token, of: key) else {
            throw AgentBoxError(.notFound, "workspace '\(key)' has no preview '\(token)'")
        }
    }

    /// The workspace and port behind `token`; `notFound` when the token is malformed, unknown, revoked or expired
    /// (one answer for all, so that a guess learns nothing).
    public func resolvePreview(token: String) async throws -> (runtime: WorkspaceRuntime, port: Int) {
        try checkOpen()
        guard Self.isPreviewToken(token) else { throw AgentBoxError(.notFound, "no such preview") }
        var record = previewCache.withLock { $0[token] }
        if record == nil, let stored = try await store.preview(token: token) {
            record = stored
            previewCache.withLock { cache in
                if cache.count >= Self.previewCacheLimit { cache.removeAll(keepingCapacity: true) }
                cache[token] = stored
            }
        }
        guard let record, record.expiresAt > Date() else { throw AgentBoxError(.notFound, "no such preview") }
        return (try await runtime(for: record.workspaceKey), record.port)
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

    static func wire(_ record: PreviewRecord) -> Preview {
        Preview(token: record.token, port: record.port, path: "/preview/\(record.token)/", url: nil, expiresAt: record.expiresAt)
    }
}
