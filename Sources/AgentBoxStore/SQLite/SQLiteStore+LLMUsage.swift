import AgentBoxAPI
import Foundation
import GRDB

extension SQLiteStore {
    public func addLLMUsage(_ figures: LLMUsageFigures, of key: WorkspaceKey, session: String?, model: String) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO llm_usage (workspaceKey, sessionId, model, requests, inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (workspaceKey, sessionId, model) DO UPDATE SET
                        requests = requests + excluded.requests, inputTokens = inputTokens + excluded.inputTokens,
                        outputTokens = outputTokens + excluded.outputTokens, cacheReadTokens = cacheReadTokens + excluded.cacheReadTokens,
                        cacheWriteTokens = cacheWriteTokens + excluded.cacheWriteTokens
                    """,
                arguments: [
                    key.rawValue, session ?? "", model, figures.requests, figures.inputTokens, figures.outputTokens, figures.cacheReadTokens,
                    figures.cacheWriteTokens,
                ])
        }
    }

    public func llmUsage(of key: WorkspaceKey) async throws -> [LLMUsageRecord] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT sessionId, model, requests, inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens FROM llm_usage
                    WHERE workspaceKey = ? ORDER BY sessionId, model
                    """,
                arguments: [key.rawValue]
            ).map { row in
                let session: String = row["sessionId"]
                return LLMUsageRecord(
                    session: session.isEmpty ? nil : session, model: row["model"],
                    figures: LLMUsageFigures(
                        requests: row["requests"], inputTokens: row["inputTokens"], outputTokens: row["outputTokens"],
                        cacheReadTokens: row["cacheReadTokens"], cacheWriteTokens: row["cacheWriteTokens"]))
            }
        }
    }
}
