import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

@Suite("SQLite store: sessions")
struct SessionStoreTests {
    func workspace(_ store: SQLiteStore, _ key: String) async throws -> WorkspaceKey {
        let key = WorkspaceKey(rawValue: key)!
        _ = try await store.createWorkspace(WorkspaceRecord(id: UUID().uuidString, key: key, config: WorkspaceConfig(), createdAt: Date(), lastActiveAt: Date()))
        return key
    }

    @Test func sessionsAreKeptListedAndUpdated() async throws {
        let store = try SQLiteStore.inMemory()
        let key = try await workspace(store, "ws")
        let first = SessionRecord(id: "s1", workspaceKey: key, agent: "mock", state: "active", createdAt: Date(timeIntervalSince1970: 100))
        let second = SessionRecord(id: "s2", workspaceKey: key, agent: "claude", state: "active", createdAt: Date(timeIntervalSince1970: 200))
        try await store.createSession(second)
        try await store.createSession(first)
        #expect(try await store.sessions(of: key).map(\.id) == ["s1", "s2"])
        var updated = first
        updated.agentSessionId = "agent-1"
        updated.state = "closed"
        #expect(try await store.updateSession(updated))
        #expect(try await store.session(id: "s1") == updated)
        #expect(try await !store.updateSession(SessionRecord(id: "none", workspaceKey: key, agent: "mock", state: "x", createdAt: Date())))
        #expect(try await store.session(id: "none") == nil)
    }

    @Test func eventsPageInOrderAndGoWithTheirWorkspace() async throws {
        let store = try SQLiteStore.inMemory()
        let key = try await workspace(store, "ws")
        try await store.createSession(SessionRecord(id: "s", workspaceKey: key, agent: "mock", state: "active", createdAt: Date()))
        let events = (1...250).map { SessionEventRecord(sessionId: "s", seq: Int64($0), at: Date(timeIntervalSince1970: Double($0)), kind: "update", payload: #"{"n":\#($0)}"#) }
        try await store.appendSessionEvents(Array(events[..<100]))
        try await store.appendSessionEvents(Array(events[100...]))
        #expect(try await store.lastSessionEventSeq(of: "s") == 250)
        var seen: [SessionEventRecord] = []
        var after: Int64 = 0
        while true {
            let page = try await store.sessionEvents(of: "s", after: after, limit: 64)
            if page.isEmpty { break }
            seen += page
            after = page.last!.seq
        }
        #expect(seen == events)
        #expect(try await store.sessionEvents(of: "s", after: 249, limit: 10).map(\.seq) == [250])
        #expect(try await store.sessionEvents(of: "other", after: 0, limit: 10).isEmpty)
        // A seq used twice is refused, and the whole batch with it: a transcript never holds two events at one place.
        await #expect(throws: (any Error).self) {
            try await store.appendSessionEvents([
                SessionEventRecord(sessionId: "s", seq: 251, at: Date(), kind: "update", payload: "{}"),
                SessionEventRecord(sessionId: "s", seq: 250, at: Date(), kind: "update", payload: "{}"),
            ])
        }
        #expect(try await store.lastSessionEventSeq(of: "s") == 250)
        _ = try await store.deleteWorkspace(key: key)
        #expect(try await store.session(id: "s") == nil)
        #expect(try await store.lastSessionEventSeq(of: "s") == 0)
    }
}
