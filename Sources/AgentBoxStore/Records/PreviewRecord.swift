import AgentBoxAPI
import Crypto
import Foundation

/// A preview token as the store keeps it: `/preview/{token}/` reaches `port` of the workspace until `expiresAt`.
public struct PreviewRecord: Sendable, Equatable {
    /// The SHA-256 of the token, in hex (``PreviewRecord/hash(token:)``): a store never holds the token itself, so
    /// a copy of it reaches no preview. Unique among previews of all workspaces.
    public var tokenHash: String
    public var workspaceKey: WorkspaceKey
    public var port: Int
    public var createdAt: Date
    public var expiresAt: Date

    /// The SHA-256 of `token`, in lower-case hex.
    public static func hash(token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
        }.joined()
    }

    /// What the API names the preview by once it is made: the hash's first 16 hex digits.
    public var id: String { String(tokenHash.prefix(16)) }

    public init(tokenHash: String, workspaceKey: WorkspaceKey, port: Int, createdAt: Date, expiresAt: Date) {
        self.tokenHash = tokenHash
        self.workspaceKey = workspaceKey
        self.port = port
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}
