import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

extension StoreConformance {
    @Suite("counts")
    struct Counts {
        @Test(arguments: StoreFactory.all)
        func countsWorkspacesAndSessionsByState(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                #expect(try await store.recordCounts() == RecordCounts(workspaces: 0, sessionsByState: [:]))
                for raw in ["a", "b", "c"] { _ = try await createWorkspace(store, raw) }
                var closed = sessionRecord("s2", of: "a")
                closed.state = "closed"
                try await store.createSession(sessionRecord("s1", of: "a"))
                try await store.createSession(closed)
                try await store.createSession(sessionRecord("s3", of: "b"))
                #expect(try await store.recordCounts() == RecordCounts(workspaces: 3, sessionsByState: ["active": 2, "closed": 1]))
                #expect(try await store.deleteWorkspace(key: key("a")))
                #expect(
                    try await store.recordCounts() == RecordCounts(workspaces: 2, sessionsByState: ["active": 1]),
                    "a deleted workspace's sessions go with it")
            }
        }
    }
}
