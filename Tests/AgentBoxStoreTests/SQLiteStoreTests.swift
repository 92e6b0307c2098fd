import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

@Suite("SQLite store")
struct SQLiteStoreTests {
    func record(_ key: String, id: String = UUID().uuidString, at date: Date = Date()) -> WorkspaceRecord {
        WorkspaceRecord(
            id: id, key: WorkspaceKey(rawValue: key)!,
            config: WorkspaceConfig(limits: WorkspaceLimits(memoryMb: 256), env: ["A": "1"], network: NetworkPolicy(egress: .allowList(["*.example.com"]))),
            createdAt: date, lastActiveAt: date)
    }

    @Test func createIsGetOrCreate() async throws {
        let store = try SQLiteStore.inMemory()
        let first = record("alpha", id: "one")
        let (stored, created) = try await store.createWorkspace(first)
        #expect(created)
        #expect(stored.id == "one")
        let (again, createdAgain) = try await store.createWorkspace(record("alpha", id: "two"))
        #expect(!createdAgain)
        #expect(again.id == "one", "an existing workspace is returned unchanged")
        #expect(again.config == first.config)
    }

    @Test func concurrentCreatesOfOneKeyCreateOnce() async throws {
        let store = try SQLiteStore.inMemory()
        let createdCount = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<20 {
                group.addTask { try await store.createWorkspace(record("race", id: "id\(index)")).created }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(createdCount == 1)
    }

    @Test func listsInKeyOrderAfterACursor() async throws {
        let store = try SQLiteStore.inMemory()
        for key in ["c", "a", "e", "b", "d"] { _ = try await store.createWorkspace(record(key)) }
        let firstPage = try await store.workspaces(after: nil, limit: 2)
        #expect(firstPage.map(\.key.rawValue) == ["a", "b"])
        let secondPage = try await store.workspaces(after: firstPage.last?.key, limit: 10)
        #expect(secondPage.map(\.key.rawValue) == ["c", "d", "e"])
    }

    @Test func deleteRemovesOnlyThatWorkspace() async throws {
        let store = try SQLiteStore.inMemory()
        _ = try await store.createWorkspace(record("a"))
        _ = try await store.createWorkspace(record("b"))
        #expect(try await store.deleteWorkspace(key: WorkspaceKey(rawValue: "a")!))
        #expect(!(try await store.deleteWorkspace(key: WorkspaceKey(rawValue: "a")!)))
        #expect(try await store.workspace(key: WorkspaceKey(rawValue: "a")!) == nil)
        #expect(try await store.workspace(key: WorkspaceKey(rawValue: "b")!) != nil)
    }

    @Test func touchNeverMovesBackwards() async throws {
        let store = try SQLiteStore.inMemory()
        let start = Date(timeIntervalSince1970: 1_000_000)
        _ = try await store.createWorkspace(record("a", at: start))
        let key = WorkspaceKey(rawValue: "a")!
        try await store.touchWorkspace(key: key, at: start.addingTimeInterval(100))
        try await store.touchWorkspace(key: key, at: start.addingTimeInterval(50))
        let stored = try #require(try await store.workspace(key: key))
        #expect(stored.lastActiveAt == start.addingTimeInterval(100))
    }

    @Test func eventSequenceReservationsGrowAndPersist() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-store-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("db.sqlite").path
        let key = WorkspaceKey(rawValue: "seq")!
        do {
            let store = try SQLiteStore(path: path)
            _ = try await store.createWorkspace(record("seq"))
            #expect(try await store.eventSequenceBound(key: key) == 0)
            #expect(try await store.reserveEventSequence(key: key, count: 100) == 100)
            #expect(try await store.reserveEventSequence(key: key, count: 100) == 200)
            try await store.close()
        }
        let reopened = try SQLiteStore(path: path)
        #expect(try await reopened.eventSequenceBound(key: key) == 200)
        let stored = try #require(try await reopened.workspace(key: key))
        #expect(stored.config.network?.egress == .allowList(["*.example.com"]))
        await #expect(throws: StoreError.self) {
            try await reopened.reserveEventSequence(key: WorkspaceKey(rawValue: "absent")!, count: 1)
        }
        try await reopened.close()
    }
}

@Suite("SQLite store: sandbox numbers")
struct SandboxNumberTests {
    @Test func numbersAreUniqueAndNeverReused() async throws {
        let store = try SQLiteStore.inMemory()
        func make(_ key: String) -> WorkspaceRecord {
            WorkspaceRecord(id: UUID().uuidString, key: WorkspaceKey(rawValue: key)!, config: WorkspaceConfig(), createdAt: Date(), lastActiveAt: Date())
        }
        let a = try await store.createWorkspace(make("a")).record.sandboxNumber
        let b = try await store.createWorkspace(make("b")).record.sandboxNumber
        #expect(a >= 1 && b > a)
        #expect(try await store.createWorkspace(make("b")).record.sandboxNumber == b, "get-or-create returns the stored number")
        #expect(try await store.workspace(key: WorkspaceKey(rawValue: "b")!)?.sandboxNumber == b)
        _ = try await store.deleteWorkspace(key: WorkspaceKey(rawValue: "b")!)
        let c = try await store.createWorkspace(make("b")).record.sandboxNumber
        #expect(c > b, "a deleted workspace's number is not reused")
    }
}
