import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

func toolkit(_ name: String, at date: Date = time(0), updated: Date? = nil, description: String = "web tools") -> Toolkit {
    Toolkit(
        name: name, description: description,
        tools: [
            ToolDefinition(
                name: "search", description: "Search the web",
                inputSchema: ["type": "object", "properties": ["q": ["type": "string"]], "required": ["q"]],
                handler: .http(HTTPToolHandler(url: "http://127.0.0.1:9/hook", headers: ["Authorization": "Bearer host-secret"], timeoutMs: 500))),
            ToolDefinition(name: "ask", description: "Ask a person", inputSchema: ["type": "object"], handler: .client(ClientToolHandler())),
        ],
        createdAt: date, updatedAt: updated ?? date)
}

func toolCall(_ id: String, at date: Date = time(0), status: ToolCallStatus = .ok) -> ToolCall {
    ToolCall(callId: id, toolkit: "web", tool: "search", input: ["q": "swift"], status: status, durationMs: 12, at: date, sessionId: "ses_1",
             error: status == .ok ? nil : "boom")
}

extension StoreConformance {
    @Suite("toolkits")
    struct Toolkits {
        @Test(arguments: StoreFactory.all)
        func toolkitsArePutListedReplacedAndDeleted(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                #expect(try await store.putToolkit(toolkit("web")))
                #expect(try await store.putToolkit(toolkit("docs")))
                #expect(try await store.toolkits().map(\.name) == ["docs", "web"])
                #expect(try await store.toolkit(name: "web") == toolkit("web"), "every field, handlers' headers included, round-trips")
                #expect(try await !store.putToolkit(toolkit("web", at: time(50), updated: time(60), description: "new")), "a replacement")
                let replaced = try #require(try await store.toolkit(name: "web"))
                #expect(replaced.description == "new" && replaced.createdAt == time(0) && replaced.updatedAt == time(60))
                #expect(try await store.toolkit(name: "absent") == nil)
                #expect(try await store.deleteToolkit(name: "web"))
                #expect(try await !store.deleteToolkit(name: "web"))
                #expect(try await store.toolkits().map(\.name) == ["docs"])
            }
        }

        @Test(arguments: StoreFactory.all)
        func toolCallsArePagedOldestFirstKeptToTheRetentionAndGoWithTheirWorkspace(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await createWorkspace(store, "b")
                var seqs: [Int64] = []
                for index in 0..<7 { seqs.append(try await store.appendToolCall(toolCall("c\(index)", at: time(index)), of: key("a"), retention: 5)) }
                try await store.appendToolCall(toolCall("other", status: .timeout), of: key("b"), retention: 5)
                #expect(seqs == seqs.sorted() && Set(seqs).count == 7)
                let all = try await store.toolCalls(of: key("a"), after: 0, limit: 100)
                #expect(all.map(\.call.callId) == ["c2", "c3", "c4", "c5", "c6"], "the newest 5 kept, oldest first")
                #expect(all.first?.call == toolCall("c2", at: time(2)))
                let page = try await store.toolCalls(of: key("a"), after: all[1].seq, limit: 2)
                #expect(page.map(\.call.callId) == ["c4", "c5"])
                #expect(try await store.toolCalls(of: key("a"), after: 0, limit: 0).isEmpty)
                #expect(try await store.toolCalls(of: key("b"), after: 0, limit: 10).map(\.call.status) == [.timeout])
                #expect(try await store.deleteWorkspace(key: key("a")))
                #expect(try await store.toolCalls(of: key("a"), after: 0, limit: 100).isEmpty)
                #expect(try await store.toolCalls(of: key("b"), after: 0, limit: 100).count == 1)
            }
        }

        @Test(arguments: StoreFactory.all)
        func llmUsageAddsUpPerSessionAndModelAndGoesWithItsWorkspace(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await createWorkspace(store, "b")
                let one = LLMUsageFigures(requests: 1, inputTokens: 10, outputTokens: 5, cacheReadTokens: 2, cacheWriteTokens: 1)
                try await store.addLLMUsage(one, of: key("a"), session: "s1", model: "m1")
                try await store.addLLMUsage(one, of: key("a"), session: "s1", model: "m1")
                try await store.addLLMUsage(LLMUsageFigures(requests: 1), of: key("a"), session: nil, model: "m2")
                try await store.addLLMUsage(one, of: key("b"), session: "s1", model: "m1")
                let rows = try await store.llmUsage(of: key("a"))
                #expect(rows == [
                    LLMUsageRecord(session: nil, model: "m2", figures: LLMUsageFigures(requests: 1)),
                    LLMUsageRecord(session: "s1", model: "m1", figures: LLMUsageFigures(requests: 2, inputTokens: 20, outputTokens: 10, cacheReadTokens: 4, cacheWriteTokens: 2)),
                ])
                #expect(try await store.deleteWorkspace(key: key("a")))
                #expect(try await store.llmUsage(of: key("a")).isEmpty)
                #expect(try await store.llmUsage(of: key("b")).count == 1)
            }
        }
    }
}
