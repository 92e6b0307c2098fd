import AgentBoxAPI
import PostgresNIO

extension PostgresStore {
    public func addLLMUsage(_ figures: LLMUsageFigures, of key: WorkspaceKey, session: String?, model: String) async throws {
        try await write(fence: .workspace(key)) { connection in
            try await connection.run(
                """
                INSERT INTO llm_usage AS usage (workspace_key, session_id, model, requests, input_tokens, output_tokens, cache_read_tokens,
                    cache_write_tokens)
                VALUES (\(key.rawValue), \(session ?? ""), \(model), \(figures.requests), \(figures.inputTokens),
                    \(figures.outputTokens), \(figures.cacheReadTokens), \(figures.cacheWriteTokens))
                ON CONFLICT (workspace_key, session_id, model) DO UPDATE SET
                    requests = usage.requests + excluded.requests, input_tokens = usage.input_tokens + excluded.input_tokens,
                    output_tokens = usage.output_tokens + excluded.output_tokens,
                    cache_read_tokens = usage.cache_read_tokens + excluded.cache_read_tokens,
                    cache_write_tokens = usage.cache_write_tokens + excluded.cache_write_tokens
                """)
        }
    }

    public func llmUsage(of key: WorkspaceKey) async throws -> [LLMUsageRecord] {
        try await read { connection in
            try await connection.rows(
                """
                SELECT session_id, model, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens FROM llm_usage
                WHERE workspace_key = \(key.rawValue) ORDER BY session_id, model
                """
            ).map { row in
                let (session, model, requests, input, output, cacheRead, cacheWrite) = try row.decode(
                    (String, String, Int64, Int64, Int64, Int64, Int64).self)
                return LLMUsageRecord(
                    session: session.isEmpty ? nil : session, model: model,
                    figures: LLMUsageFigures(
                        requests: requests, inputTokens: input, outputTokens: output, cacheReadTokens: cacheRead, cacheWriteTokens: cacheWrite))
            }
        }
    }
}
