import AgentBoxAPI
import Foundation
import PostgresNIO
import Synchronization

/// Nodes and leases (``ClusterStore``). Every time is the database server's (`clock_timestamp()`, the time of the
/// statement's work rather than of its transaction's start), never a node's.
extension PostgresStore {
    public func now() async throws -> Date {
        try await read { connection in
            guard let row = try await connection.rows("SELECT clock_timestamp()").first else {
                throw StoreError(.corrupt, "the server did not tell its time")
            }
            return try row.decode(PostgresTime.self).date
        }
    }

    @discardableResult
    public func heartbeat(address: String, startedAt: Date) async throws -> NodeRecord {
        let node = try clusterNode()
        return try await write(fence: .none) { connection in
            guard
                let row = try await connection.rows(
                    """
                    INSERT INTO node (id, address, started_at, heartbeat_at) VALUES (\(node), \(address), \(PostgresTime(startedAt)), clock_timestamp())
                    ON CONFLICT (id) DO UPDATE SET address = excluded.address, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
                    RETURNING id, address, started_at, heartbeat_at
                    """
                ).first
            else { throw StoreError(.corrupt, "the node's record was not returned") }
            return try Self.decodeNode(row)
        }
    }

    public func nodes() async throws -> [NodeRecord] {
        try await read { connection in
            try await connection.rows("SELECT id, address, started_at, heartbeat_at FROM node ORDER BY id").map(Self.decodeNode)
        }
    }

    public func removeNode(id: String) async throws -> Bool {
        try await write(fence: .none) { connection in
            try await !connection.rows("DELETE FROM node WHERE id = \(id) RETURNING 1").isEmpty
        }
    }

    public func acquireLease(key: WorkspaceKey, ttl: Duration) async throws -> LeaseAcquisition {
        let node = try clusterNode()
        let acquisition = try await write(fence: .none) { connection -> LeaseAcquisition in
            // One statement takes a free, released or expired lease (epoch + 1) or renews this node's own (same
            // epoch), and changes nothing of another node's live one. Concurrent acquirers of a free key: the insert
            // of one wins, the others' conflict clause then sees its live lease. A lease released between the
            // statement and the read of the holder is tried again.
            for _ in 0..<8 {
                let taken = try await connection.rows(
                    """
                    INSERT INTO lease AS held (key, node_id, epoch, expires_at)
                    VALUES (\(key.rawValue), \(node), 1, clock_timestamp() + \(ttl.microseconds) * interval '1 microsecond')
                    ON CONFLICT (key) DO UPDATE SET
                        node_id = excluded.node_id,
                        epoch = CASE WHEN held.node_id = excluded.node_id THEN held.epoch ELSE held.epoch + 1 END,
                        expires_at = excluded.expires_at,
                        state = CASE WHEN held.node_id = excluded.node_id THEN held.state END
                    WHERE held.node_id IS NULL OR held.node_id = excluded.node_id OR held.expires_at <= clock_timestamp()
                    RETURNING \(unescaped: Self.leaseColumns)
                    """)
                if let row = taken.first { return .acquired(try Self.decodeLease(row)) }
                let holder = try await connection.rows(
                    "SELECT \(unescaped: Self.leaseColumns) FROM lease WHERE key = \(key.rawValue) AND node_id IS NOT NULL AND expires_at > clock_timestamp()")
                if let row = holder.first { return .held(try Self.decodeLease(row)) }
            }
            throw StoreError(.conflict, "the lease of workspace '\(key)' kept changing hands while this node tried to take it")
        }
        if case .acquired(let lease) = acquisition {
            engine.leases.withLock { $0[key.rawValue] = lease.epoch }
        }
        return acquisition
    }

    public func renewLeases(ttl: Duration) async throws -> [WorkspaceKey] {
        let node = try clusterNode()
        let held = engine.leases.withLock { $0 }
        guard !held.isEmpty else {
            try checkOpen()
            return []
        }
        let keys = Array(held.keys)
        let epochs = keys.map { held[$0]! }
        // The rows are locked in key order, as fenced writes lock theirs, so that the two never wait for each other in
        // a cycle.
        let lost = try await write(fence: .none) { connection in
            try await connection.rows(
                """
                WITH held (key, epoch) AS (SELECT * FROM unnest(\(keys)::text[], \(epochs)::bigint[])),
                    still AS (
                        SELECT lease.key FROM lease JOIN held ON lease.key = held.key AND lease.epoch = held.epoch
                        WHERE lease.node_id = \(node) ORDER BY lease.key FOR UPDATE OF lease
                    ),
                    renewed AS (
                        UPDATE lease SET expires_at = clock_timestamp() + \(ttl.microseconds) * interval '1 microsecond'
                        FROM still WHERE lease.key = still.key
                        RETURNING lease.key
                    )
                SELECT key FROM held WHERE key NOT IN (SELECT key FROM renewed) ORDER BY key
                """
            ).map { try $0.decode(String.self) }
        }
        // Forgotten only as they were when read: a lease acquired again meanwhile has another epoch and stays.
        engine.leases.withLock { leases in
            for key in lost where leases[key] == held[key] { leases[key] = nil }
        }
        return lost.compactMap(WorkspaceKey.init(rawValue:))
    }

    @discardableResult
    public func releaseLease(key: WorkspaceKey) async throws -> Bool {
        let node = try clusterNode()
        guard let epoch = engine.epoch(of: key.rawValue) else {
            try checkOpen()
            return false
        }
        let released = try await write(fence: .none) { connection in
            try await !connection.rows(
                "UPDATE lease SET node_id = NULL, state = NULL WHERE key = \(key.rawValue) AND node_id = \(node) AND epoch = \(epoch) RETURNING 1"
            ).isEmpty
        }
        engine.leases.withLock { leases in
            if leases[key.rawValue] == epoch { leases[key.rawValue] = nil }
        }
        return released
    }

    public func lease(key: WorkspaceKey) async throws -> LeaseRecord? {
        try await read { connection in
            try await connection.rows("SELECT \(unescaped: Self.leaseColumns) FROM lease WHERE key = \(key.rawValue)").first.map(Self.decodeLease)
        }
    }

    public func liveLeases() async throws -> [LeaseRecord] {
        try await read { connection in
            try await connection.rows(
                "SELECT \(unescaped: Self.leaseColumns) FROM lease WHERE node_id IS NOT NULL AND expires_at > clock_timestamp() ORDER BY key"
            ).map(Self.decodeLease)
        }
    }

    public func liveLeases(keys: [WorkspaceKey]) async throws -> [LeaseRecord] {
        guard !keys.isEmpty else { return [] }
        let names = keys.map(\.rawValue)
        return try await read { connection in
            try await connection.rows(
                """
                SELECT \(unescaped: Self.leaseColumns) FROM lease
                WHERE key = ANY(\(names)::text[]) AND node_id IS NOT NULL AND expires_at > clock_timestamp() ORDER BY key
                """
            ).map(Self.decodeLease)
        }
    }

    public func recordState(key: WorkspaceKey, state: WorkspaceState) async throws {
        let node = try clusterNode()
        guard let epoch = engine.epoch(of: key.rawValue) else { throw Self.fencedError(key.rawValue) }
        let recorded = try await write(fence: .none) { connection in
            try await !connection.rows(
                """
                UPDATE lease SET state = \(state.rawValue)
                WHERE key = \(key.rawValue) AND node_id = \(node) AND epoch = \(epoch) RETURNING 1
                """
            ).isEmpty
        }
        if !recorded { throw Self.fencedError(key.rawValue) }
    }

    /// This store's node, for the requirements that act as one; a store opened without a node id refuses them.
    private func clusterNode() throws -> String {
        try checkOpen()
        guard let node = engine.node else {
            throw StoreError(.invalidArgument, "this Postgres store was opened without a node id: it takes part in no cluster")
        }
        return node
    }

    public func recordCheckpoint(key: WorkspaceKey, id: String) async throws {
        let node = try clusterNode()
        guard let epoch = engine.epoch(of: key.rawValue) else { throw Self.fencedError(key.rawValue) }
        // One statement, so the check of the holder and the write are one: after a takeover the epoch differs and
        // nothing matches.
        let recorded = try await write(fence: .none) { connection in
            try await !connection.rows(
                """
                UPDATE lease SET checkpoint_id = \(id), checkpoint_epoch = epoch
                WHERE key = \(key.rawValue) AND node_id = \(node) AND epoch = \(epoch) RETURNING 1
                """
            ).isEmpty
        }
        if !recorded { throw Self.fencedError(key.rawValue) }
    }

    static let leaseColumns = "key, node_id, epoch, expires_at, checkpoint_id, checkpoint_epoch, state"

    static func decodeLease(_ row: PostgresRow) throws -> LeaseRecord {
        let (key, node, epoch, expiresAt, checkpointId, checkpointEpoch, state) = try row.decode(
            (String, String?, Int64, PostgresTime, String?, Int64?, String?).self)
        guard let workspaceKey = WorkspaceKey(rawValue: key) else { throw StoreError(.corrupt, "stored lease key '\(key)' is not valid") }
        return LeaseRecord(
            key: workspaceKey, nodeId: node, epoch: epoch, expiresAt: expiresAt.date, checkpointId: checkpointId, checkpointEpoch: checkpointEpoch,
            state: state.flatMap(WorkspaceState.init(rawValue:)))
    }

    static func decodeNode(_ row: PostgresRow) throws -> NodeRecord {
        let (id, address, startedAt, heartbeatAt) = try row.decode((String, String, PostgresTime, PostgresTime).self)
        return NodeRecord(id: id, address: address, startedAt: startedAt.date, heartbeatAt: heartbeatAt.date)
    }
}
