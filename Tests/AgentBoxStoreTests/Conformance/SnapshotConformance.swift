import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

extension StoreConformance {
    @Suite("snapshots")
    struct Snapshots {
        @Test(arguments: StoreFactory.all)
        func snapshotsAreKeptListedOldestFirstAndDeleted(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await createWorkspace(store, "b")
                let snapshots = [
                    snapshotRecord("s-late", of: "a", at: time(20)), snapshotRecord("s-b", of: "a", at: time(10)),
                    snapshotRecord("s-a", of: "a", at: time(10)), snapshotRecord("s-other", of: "b", at: time(5)),
                ]
                for snapshot in snapshots { try await store.createSnapshot(snapshot) }
                #expect(try await store.snapshots(of: key("a")).map(\.id) == ["s-a", "s-b", "s-late"], "by time, then by id")
                #expect(try await store.snapshots(of: key("b")) == [snapshots[3]])
                #expect(try await store.snapshot(id: "s-late") == snapshots[0], "every field, config included, round-trips")
                #expect(try await store.snapshot(id: "s-other") == snapshots[3], "found by id whatever its workspace")

                #expect(try await store.deleteSnapshot(id: "s-b"))
                #expect(try await !store.deleteSnapshot(id: "s-b"))
                #expect(try await store.snapshot(id: "s-b") == nil)
                #expect(try await store.snapshots(of: key("a")).map(\.id) == ["s-a", "s-late"])
            }
        }

        @Test(arguments: StoreFactory.all)
        func anIdThatIsTakenConflicts(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await createWorkspace(store, "b")
                let original = snapshotRecord("s", of: "a", at: time(1))
                try await store.createSnapshot(original)
                await expectStoreError(.conflict) { try await store.createSnapshot(snapshotRecord("s", of: "b", at: time(2))) }
                #expect(try await store.snapshot(id: "s") == original)
                #expect(try await store.snapshots(of: key("b")).isEmpty)
            }
        }

        @Test(arguments: StoreFactory.all)
        func unknownIdsAndWorkspacesHaveNone(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                #expect(try await store.snapshot(id: "absent") == nil)
                #expect(try await store.snapshots(of: key("a")).isEmpty)
                #expect(try await store.snapshots(of: key("absent")).isEmpty)
                #expect(try await !store.deleteSnapshot(id: "absent"))
            }
        }
    }
}
