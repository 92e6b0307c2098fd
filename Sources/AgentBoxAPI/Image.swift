import Foundation

/// A workspace's system layer and files, frozen read-only: new workspaces start from it copy-on-write
/// (`PUT /v1/workspaces/{key}` with `image`).
public struct Image: Codable, Sendable, Equatable {
    public var name: String
    public var createdAt: Date
    /// The bytes it holds (its system layer and files, its parent images' not included).
    public var sizeBytes: Int64
    /// The key of the workspace it was made from.
    public var fromWorkspace: WorkspaceKey
    public var description: String?

    public init(name: String, createdAt: Date, sizeBytes: Int64, fromWorkspace: WorkspaceKey, description: String? = nil) {
        self.name = name
        self.createdAt = createdAt
        self.sizeBytes = sizeBytes
        self.fromWorkspace = fromWorkspace
        self.description = description
    }

    /// Whether `name` is a valid image name: `[a-z0-9][a-z0-9._-]{0,63}`.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 64 else { return false }
        func allowed(_ byte: UInt8, first: Bool) -> Bool {
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || (!first && (byte == 0x2E || byte == 0x5F || byte == 0x2D))
        }
        return allowed(first, first: true) && name.utf8.dropFirst().allSatisfy { allowed($0, first: false) }
    }
}

/// `POST /v1/images`.
public struct CreateImageRequest: Codable, Sendable, Equatable {
    public var name: String
    public var fromWorkspace: WorkspaceKey
    public var description: String?

    public init(name: String, fromWorkspace: WorkspaceKey, description: String? = nil) {
        self.name = name
        self.fromWorkspace = fromWorkspace
        self.description = description
    }
}

/// `GET /v1/images`.
public struct ImageList: Codable, Sendable, Equatable {
    public var items: [Image]
    public init(items: [Image]) { self.items = items }
}
