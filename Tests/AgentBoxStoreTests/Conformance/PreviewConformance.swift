import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

extension StoreConformance {
    @Suite("previews")
    struct Previews {
        @Test(arguments: StoreFactory.all)
        func previewsAreFoundByTokenHash(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                let preview = previewRecord("secret", of: "a", port: 3000, createdAt: time(0), expiresAt: time(60))
                try await store.createPreview(preview)
                #expect(try await store.preview(tokenHash: PreviewRecord.hash(token: "secret")) == preview)
                #expect(try await store.preview(tokenHash: "secret") == nil, "a token is found by its hash only")
                #expect(try await store.preview(tokenHash: PreviewRecord.hash(token: "other")) == nil)
            }
        }

        @Test(arguments: StoreFactory.all)
        func listingLeavesOutExpiredPreviewsOldestFirst(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await createWorkspace(store, "b")
                let short = previewRecord("short", of: "a", createdAt: time(10), expiresAt: time(100))
                let long = previewRecord("long", of: "a", createdAt: time(5), expiresAt: time(200))
                let tied = [previewRecord("tie-1", of: "a", createdAt: time(7)), previewRecord("tie-2", of: "a", createdAt: time(7))]
                for preview in [short, long] + tied { try await store.createPreview(preview) }
                try await store.createPreview(previewRecord("elsewhere", of: "b", createdAt: time(1)))

                let tiesInOrder = tied.sorted { $0.tokenHash < $1.tokenHash }
                #expect(try await store.previews(of: key("a"), now: time(99)) == [long] + tiesInOrder + [short], "by creation, then by token hash")
                #expect(try await store.previews(of: key("a"), now: time(100)) == [long] + tiesInOrder, "expiring at `now` is expired")
                #expect(try await store.previews(of: key("a"), now: time(200)) == tiesInOrder)
                #expect(try await store.preview(tokenHash: short.tokenHash) == short, "an expired preview is still found by its token")
                #expect(try await store.previews(of: key("absent"), now: time(0)).isEmpty)
            }
        }

        @Test(arguments: StoreFactory.all)
        func creatingRemovesOnlyThatWorkspacesExpiredPreviews(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await createWorkspace(store, "b")
                let expired = previewRecord("expired", of: "a", createdAt: time(0), expiresAt: time(100))
                let alive = previewRecord("alive", of: "a", createdAt: time(0), expiresAt: time(101))
                let othersExpired = previewRecord("others", of: "b", createdAt: time(0), expiresAt: time(50))
                for preview in [expired, alive, othersExpired] { try await store.createPreview(preview) }

                try await store.createPreview(previewRecord("new", of: "a", createdAt: time(100), expiresAt: time(500)))
                #expect(try await store.preview(tokenHash: expired.tokenHash) == nil, "expired as of the new preview's creation")
                #expect(try await store.preview(tokenHash: alive.tokenHash) == alive)
                #expect(try await store.preview(tokenHash: othersExpired.tokenHash) == othersExpired, "another workspace's are left alone")
            }
        }

        @Test(arguments: StoreFactory.all)
        func deletingIsScopedToTheWorkspace(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await createWorkspace(store, "b")
                let preview = previewRecord("p", of: "a")
                try await store.createPreview(preview)
                #expect(try await !store.deletePreview(tokenHash: preview.tokenHash, of: key("b")), "b cannot revoke a's preview")
                #expect(try await store.preview(tokenHash: preview.tokenHash) == preview)
                #expect(try await store.deletePreview(tokenHash: preview.tokenHash, of: key("a")))
                #expect(try await store.preview(tokenHash: preview.tokenHash) == nil)
                #expect(try await !store.deletePreview(tokenHash: preview.tokenHash, of: key("a")), "a second revoke finds nothing")
                #expect(try await !store.deletePreview(tokenHash: "absent", of: key("absent")))
            }
        }

        @Test(arguments: StoreFactory.all)
        func aTokenHashThatIsTakenConflicts(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await createWorkspace(store, "b")
                let original = previewRecord("p", of: "a", port: 1000)
                try await store.createPreview(original)
                await expectStoreError(.conflict) { try await store.createPreview(previewRecord("p", of: "b", port: 2000)) }
                #expect(try await store.preview(tokenHash: original.tokenHash) == original)
                #expect(try await store.previews(of: key("b"), now: time(0)).isEmpty)
            }
        }
    }
}
