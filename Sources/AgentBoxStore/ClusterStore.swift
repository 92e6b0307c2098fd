import AgentBoxAPI
import Foundation

/// A store shared by the nodes of a cluster (Postgres): besides everything a ``Store`` keeps, it keeps the nodes
/// and, for each workspace, a lease that names its one owner at a time, with a fencing epoch.
///
/// Each opened store belongs to one node (``nodeId``, fixed when it is opened). The rules of ``Store`` hold, and:
/// - **Time is the store's.** Heartbeats and lease expiries are set and compared with the store's own clock (the
///   database server's), never a node's, so nodes whose clocks disagree still agree on who owns what.
/// - **Leases.** A workspace's lease is held by at most one node at a time. Taking over a lease that another node
///   held (or that was released) increases its `epoch` by one; renewing one's own keeps it. Epochs of a key never
///   go down, not even when the workspace is deleted and made again.
/// - **Fencing.** Every write that concerns one workspace (its record, event numbering, snapshots, previews,
///   sessions and their transcripts, cron jobs and runs, tool calls, model usage) succeeds only while this node
///   holds that workspace's lease with the epoch it acquired: checked in the same transaction as the write, so that
///   a takeover and a stale owner's write are ordered. Otherwise it throws ``StoreError/Code-swift.struct/fenced``
///   and writes nothing. Writes that concern no one workspace (tokens, toolkits, images) are not fenced.
///   A lease that has expired but that no other node has taken is still this node's: its writes go on, and a
///   renewal keeps the epoch.
/// - ``Store/interruptCronRuns(endedAt:error:)`` ends only the runs of workspaces that no node holds a live lease
///   on (a node starting must not end its neighbours' runs).
public protocol ClusterStore: Store {
    /// The node this store belongs to.
    var nodeId: String { get }

    /// The store's clock.
    func now() async throws -> Date

    /// Registers this node, or refreshes its record: `address` (the base URL at which other nodes reach its API),
    /// `startedAt`, and `heartbeatAt` set to the store's now. Returns the stored record.
    @discardableResult
    func heartbeat(address: String, startedAt: Date) async throws -> NodeRecord

    /// Every registered node, by id.
    func nodes() async throws -> [NodeRecord]

    /// Removes node `id`'s record (a node leaving the cluster for good); `false` when there was none. Its leases
    /// stay until they expire.
    func removeNode(id: String) async throws -> Bool

    /// Takes or renews the lease of workspace `key` for this node, until the store's now + `ttl`:
    /// - no lease, or one that was released or has expired (whoever held it): this node takes it, with the epoch
    ///   one above the key's last one (1 for a key never leased) → `.acquired`;
    /// - this node's own lease (even expired, if no one took it): renewed, same epoch → `.acquired`;
    /// - another node's live lease: nothing is written → `.held` with that lease.
    func acquireLease(key: WorkspaceKey, ttl: Duration) async throws -> LeaseAcquisition

    /// Renews, until the store's now + `ttl`, every lease this node acquired and has not released, in one
    /// statement; returns the keys whose lease another node has taken since (lost: this node's writes to them are
    /// fenced from now on, and it forgets them).
    func renewLeases(ttl: Duration) async throws -> [WorkspaceKey]

    /// Gives up this node's lease of `key` (the epoch stays recorded, so the next owner's is higher); `false` when
    /// this node did not hold it.
    @discardableResult
    func releaseLease(key: WorkspaceKey) async throws -> Bool

    /// Makes checkpoint `id` the one a node taking workspace `key` over restores, recording this node's epoch with
    /// it. Fenced like every workspace write, in one statement: throws ``StoreError/Code-swift.struct/fenced`` (and
    /// records nothing) unless this node still holds the lease with the epoch it acquired. The pointer stays when
    /// the lease is released or changes hands.
    func recordCheckpoint(key: WorkspaceKey, id: String) async throws

    /// The lease of `key` as stored (live, expired or released), or `nil` when it was never leased.
    func lease(key: WorkspaceKey) async throws -> LeaseRecord?

    /// Every lease that is live at the store's now (held and not expired), by key.
    func liveLeases() async throws -> [LeaseRecord]

    /// The live leases among those of `keys`, by key.
    func liveLeases(keys: [WorkspaceKey]) async throws -> [LeaseRecord]

    /// Records `state` as workspace `key`'s, for other nodes to show (``LeaseRecord/state``). Fenced like
    /// ``recordCheckpoint(key:id:)``. A lease that changes hands, or is released, forgets it.
    func recordState(key: WorkspaceKey, state: WorkspaceState) async throws
}

/// A node of a cluster.
public struct NodeRecord: Sendable, Equatable, Codable {
    /// Unique in the cluster, stable across the node's restarts (`serve --node-id`).
    public var id: String
    /// The base URL at which other nodes reach this node's API (`http://10.0.0.2:8080`).
    public var address: String
    public var startedAt: Date
    /// The store's time of the node's last heartbeat.
    public var heartbeatAt: Date

    public init(id: String, address: String, startedAt: Date, heartbeatAt: Date) {
        self.id = id
        self.address = address
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
    }
}

/// Who owns a workspace, and until when.
public struct LeaseRecord: Sendable, Equatable, Codable {
    public var key: WorkspaceKey
    /// The holder, `nil` once released.
    public var nodeId: String?
    /// Grows by one at each change of owner.
    public var epoch: Int64
    /// In the store's time.
    public var expiresAt: Date
    /// The checkpoint of the workspace's files to restore on a takeover (``ClusterStore/recordCheckpoint(key:id:)``).
    public var checkpointId: String?
    /// The epoch under which ``checkpointId`` was recorded.
    public var checkpointEpoch: Int64?
    /// The workspace's state as the holder last recorded it (``ClusterStore/recordState(key:state:)``); `nil` when
    /// it recorded none under this lease.
    public var state: WorkspaceState?

    public init(
        key: WorkspaceKey, nodeId: String?, epoch: Int64, expiresAt: Date, checkpointId: String? = nil, checkpointEpoch: Int64? = nil,
        state: WorkspaceState? = nil
    ) {
        self.key = key
        self.nodeId = nodeId
        self.epoch = epoch
        self.expiresAt = expiresAt
        self.checkpointId = checkpointId
        self.checkpointEpoch = checkpointEpoch
        self.state = state
    }
}

/// What ``ClusterStore/acquireLease(key:ttl:)`` answers.
public enum LeaseAcquisition: Sendable, Equatable {
    /// This node holds the lease (taken now or renewed).
    case acquired(LeaseRecord)
    /// Another node holds a live lease: this one.
    case held(LeaseRecord)
}
