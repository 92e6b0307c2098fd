import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

/// What only ``SQLiteStore`` promises: where its file is and who may read it. Its behaviour as a ``Store`` is
/// ``StoreConformance``'s.
@Suite("SQLite store")
struct SQLiteStoreTests {
    @Test func opensInADataDirectoryItCreatesWithAnOwnerOnlyFile() async throws {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-sqlite-\(UUID())")
        defer { try? FileManager.default.removeItem(at: parent) }
        let directory = parent.appendingPathComponent("data/dir")
        let store = try SQLiteStore.open(in: directory)
        _ = try await store.createWorkspace(workspaceRecord("a"))
        let path = SQLiteStore.databasePath(in: directory)
        #expect(path == directory.appendingPathComponent("agentbox.sqlite").path)
        for file in [path, path + "-wal"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600, "\(file)")
        }
        try await store.close()
        // The same file is the same store.
        let reopened = try SQLiteStore(path: path)
        #expect(try await reopened.workspace(key: key("a")) != nil)
        try await reopened.close()
    }

    @Test func copiesOfAStoreCloseTogether() async throws {
        let store = try SQLiteStore.inMemory()
        let copy = store
        try await store.close()
        await expectStoreError(.closed) { try await copy.workspace(key: key("a")) }
    }
}
