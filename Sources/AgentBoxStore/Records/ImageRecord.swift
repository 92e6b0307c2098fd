import AgentBoxAPI
import Foundation

/// An image as the store keeps it.
public struct ImageRecord: Sendable, Equatable {
    /// Unique among images; what users name it by.
    public var name: String
    /// Names its directory; a name deleted and made again gets a new id.
    public var id: String
    public var createdAt: Date
    public var sizeBytes: Int64
    public var fromWorkspace: WorkspaceKey
    public var description: String?
    /// The ids of the images whose system layers a workspace made from this one stacks, top first: this image's
    /// own, then its parent's (the image its workspace was made from), and so on.
    public var layers: [String]

    public init(
        name: String, id: String, createdAt: Date, sizeBytes: Int64, fromWorkspace: WorkspaceKey, description: String?, layers: [String]
    ) {
        self.name = name
        self.id = id
        self.createdAt = createdAt
        self.sizeBytes = sizeBytes
        self.fromWorkspace = fromWorkspace
        self.description = description
        self.layers = layers
    }

    /// The image as the API shows it.
    public var image: Image {
        Image(name: name, createdAt: createdAt, sizeBytes: sizeBytes, fromWorkspace: fromWorkspace, description: description)
    }
}
