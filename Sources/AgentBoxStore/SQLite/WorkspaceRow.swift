import AgentBoxAPI
import Foundation
import GRDB

/// The `workspace` table. Times are stored as Unix seconds (REAL) so that ordering and MAX() work in SQL.
struct WorkspaceRow: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "workspace"

    var key: String
    var id: String
    var config: String
    var createdAt: Double
    var lastActiveAt: Double
    var eventSeqBound: Int64
    var sandboxNumber: Int

    init(_ record: WorkspaceRecord) throws {
        key = record.key.rawValue
        id = record.id
        config = String(decoding: try AgentBoxJSON.makeEncoder().encode(record.config), as: UTF8.self)
        createdAt = record.createdAt.timeIntervalSince1970
        lastActiveAt = record.lastActiveAt.timeIntervalSince1970
        eventSeqBound = 0
        sandboxNumber = record.sandboxNumber
    }

    func record() throws -> WorkspaceRecord {
        guard let workspaceKey = WorkspaceKey(rawValue: key) else {
            throw StoreError(.corrupt, "stored workspace key '\(key)' is not valid")
        }
        let decoded: WorkspaceConfig
        do {
            decoded = try AgentBoxJSON.makeDecoder().decode(WorkspaceConfig.self, from: Data(config.utf8))
        } catch {
            throw StoreError(.corrupt, "stored config of workspace '\(key)' cannot be read", underlyingError: error)
        }
        return WorkspaceRecord(
            id: id, key: workspaceKey, config: decoded, createdAt: Date(timeIntervalSince1970: createdAt),
            lastActiveAt: Date(timeIntervalSince1970: lastActiveAt), sandboxNumber: sandboxNumber)
    }
}
