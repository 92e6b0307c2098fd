import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox usage KEY`: what a workspace consumed through the LLM gateway (by model, by session) against its budget,
/// and its host tool calls.
struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage", abstract: "Show a workspace's model usage through the LLM gateway, its budget, and its tool calls.",
        discussion: """
            Tokens are as the providers reported them: input is uncached input; cache reads and writes apart. \
            Asking never boots the workspace. Set a budget with `agentbox workspaces create KEY --llm-max-requests N` \
            (and --llm-max-input-tokens, --llm-max-output-tokens, --llm-model).
            Examples:
              agentbox usage demo
              agentbox usage demo --json
            """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The workspace key.") var key: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await runClientCall {
            let usage = try await client.makeClient().workspaceUsage(key)
            if json { return try printJSON(usage) }
            let llm = usage.llm
            func limit(_ used: Int64, _ max: Int64?) -> String { max.map { "\(used) of \($0)" } ?? String(used) }
            printRows(
                [["REQUESTS", limit(llm.requests, usage.budget?.maxRequests)],
                 ["INPUT TOKENS", limit(llm.inputTokens, usage.budget?.maxInputTokens)],
                 ["OUTPUT TOKENS", limit(llm.outputTokens, usage.budget?.maxOutputTokens)],
                 ["CACHE READ", String(llm.cacheReadTokens)],
                 ["CACHE WRITE", String(llm.cacheWriteTokens)],
                 ["MODELS ALLOWED", usage.budget?.models?.joined(separator: ", ") ?? "any"],
                 ["TOOL CALLS", String(usage.toolCalls)]])
            for (title, rows) in [("MODEL", llm.byModel), ("SESSION", llm.bySession)] where !rows.isEmpty {
                print("")
                printRows(
                    [[title, "REQUESTS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE"]]
                        + rows.sorted { $0.key < $1.key }.map { name, figures in
                            [name, String(figures.requests), String(figures.inputTokens), String(figures.outputTokens),
                             String(figures.cacheReadTokens), String(figures.cacheWriteTokens)]
                        })
            }
        }
    }
}
