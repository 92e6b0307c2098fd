import AgentBoxAPI
import Foundation
import GRDB

/// The `preview` table.
struct PreviewRow: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "preview"

    /// The token's SHA-256 (the column kept its first name, `token`).
    var token: String
    var workspaceKey: String
    var port: Int
    var createdAt: Double
    var expiresAt: Double

    init(_ record: PreviewRecord) {
        token = record.tokenHash
        workspaceKey = record.workspaceKey.rawValue
        port = record.port
        createdAt = record.createdAt.timeIntervalSince1970
        expiresAt = record.expiresAt.timeIntervalSince1970
    }

    func record() throws -> PreviewRecord {
        guard let key = WorkspaceKey(rawValue: workspaceKey) else { throw StoreError(.corrupt, "stored preview key '\(workspaceKey)' is not valid") }
        return PreviewRecord(
            tokenHash: token, workspaceKey: key, port: port, createdAt: Date(timeIntervalSince1970: createdAt),
            expiresAt: Date(timeIntervalSince1970: expiresAt))
    }
}
