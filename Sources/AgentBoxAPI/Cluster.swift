import Foundation

/// `GET /v1/cluster`: the nodes of the cluster this server belongs to, and the workspaces each one holds.
public struct ClusterStatus: Codable, Sendable, Equatable {
    /// The node that answered.
    public var node: String
    public var nodes: [ClusterNode]

    public init(node: String, nodes: [ClusterNode]) {
        self.node = node
        self.nodes = nodes
    }
}

/// One node of a cluster.
public struct ClusterNode: Codable, Sendable, Equatable {
    public var id: String
    /// The base URL other nodes forward to.
    public var advertise: String
    /// `up` while it heart-beats (three times per lease) and answers; `down` otherwise.
    public var state: String
    /// Its last heartbeat.
    public var lastSeenAt: Date
    public var startedAt: Date
    /// The workspaces whose lease it holds, by key.
    public var workspaces: [String]

    public init(id: String, advertise: String, state: String, lastSeenAt: Date, startedAt: Date, workspaces: [String]) {
        self.id = id
        self.advertise = advertise
        self.state = state
        self.lastSeenAt = lastSeenAt
        self.startedAt = startedAt
        self.workspaces = workspaces
    }
}
