import AgentBoxAPI
import Foundation
import GRDB

/// The `session` table.
struct SessionRow: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "session"

    var id: String
    var workspaceKey: String
    var agent: String
    var agentSessionId: String?
    var state: String
    var createdAt: Double
    var stopReason: String?
    var settings: String

    init(_ record: SessionRecord) {
        id = record.id
        workspaceKey = record.workspaceKey.rawValue
        agent = record.agent
        agentSessionId = record.agentSessionId
        state = record.state
        createdAt = record.createdAt.timeIntervalSince1970
        stopReason = record.stopReason
        settings = record.settings
    }

    func record() throws -> SessionRecord {
        guard let key = WorkspaceKey(rawValue: workspaceKey) else { throw StoreError(.corrupt, "stored session key '\(workspaceKey)' is not valid") }
        return SessionRecord(
            id: id, workspaceKey: key, agent: agent, agentSessionId: agentSessionId, state: state,
            createdAt: Date(timeIntervalSince1970: createdAt), stopReason: stopReason, settings: settings)
    }
}
