import AgentBoxAPI
import Foundation
import GRDB

/// The `snapshot` table.
struct SnapshotRow: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "snapshot"

    var id: String
    var workspaceKey: String
    var config: String
    var createdAt: Double
    var sizeBytes: Int64

    init(_ record: SnapshotRecord) throws {
        id = record.id
        workspaceKey = record.workspaceKey.rawValue
        config = String(decoding: try AgentBoxJSON.makeEncoder().encode(record.config), as: UTF8.self)
        createdAt = record.createdAt.timeIntervalSince1970
        sizeBytes = record.sizeBytes
    }

    func record() throws -> SnapshotRecord {
        guard let key = WorkspaceKey(rawValue: workspaceKey) else { throw StoreError(.corrupt, "stored snapshot key '\(workspaceKey)' is not valid") }
        let decoded = try AgentBoxJSON.makeDecoder().decode(WorkspaceConfig.self, from: Data(config.utf8))
        return SnapshotRecord(id: id, workspaceKey: key, config: decoded, createdAt: Date(timeIntervalSince1970: createdAt), sizeBytes: sizeBytes)
    }
}
