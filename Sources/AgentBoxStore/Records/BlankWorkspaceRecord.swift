import Foundation

/// A blank workspace as the store keeps it: an internal id and a sandbox number reserved for a workspace not created
/// yet, whose storage the library makes ahead of need (see ``Store/createBlankWorkspace(id:at:)``).
public struct BlankWorkspaceRecord: Sendable, Equatable {
    /// The internal id the workspace made from it will have (names its data directory on the host).
    public var id: String
    /// The sandbox number the workspace made from it will have.
    public var sandboxNumber: Int
    public var createdAt: Date

    public init(id: String, sandboxNumber: Int, createdAt: Date) {
        self.id = id
        self.sandboxNumber = sandboxNumber
        self.createdAt = createdAt
    }
}
