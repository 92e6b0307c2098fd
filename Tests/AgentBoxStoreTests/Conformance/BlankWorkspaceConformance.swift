import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

extension StoreConformance {
    /// Blank workspaces: ids and sandbox numbers reserved ahead of creates, taken by a create in one atomic step.
    @Suite("blank workspaces")
    struct BlankWorkspaces {
        @Test(arguments: StoreFactory.all)
        func aBlankTakesANumberOfTheWorkspacesSequenceAndIsNoWorkspace(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                let before = try await createWorkspace(store, "a").sandboxNumber
                let number = try await store.createBlankWorkspace(id: "blank-1", at: time(3))
                #expect(number > before)
                #expect(try await store.blankWorkspaces() == [BlankWorkspaceRecord(id: "blank-1", sandboxNumber: number, createdAt: time(3))])
                #expect(try await store.workspaces(after: nil, limit: 10).map(\.key) == [key("a")], "a blank is not listed")
                #expect(try await store.recordCounts().workspaces == 1, "nor counted")
                #expect(try await createWorkspace(store, "b").sandboxNumber > number, "its number is never handed out again")
                await expectStoreError(.conflict) { try await store.createBlankWorkspace(id: "blank-1", at: time(4)) }
                let workspaceID = try #require(try await store.workspace(key: key("a"))).id
                await expectStoreError(.conflict, "a workspace's id is taken too") { try await store.createBlankWorkspace(id: workspaceID, at: time(4)) }
            }
        }

        @Test(arguments: StoreFactory.all)
        func aClaimMakesTheWorkspaceWithTheBlanksIdAndNumber(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                let number = try await store.createBlankWorkspace(id: "blank-1", at: time(1))
                let asked = WorkspaceRecord(id: "ignored", key: key("w"), config: sampleConfig, createdAt: time(5), lastActiveAt: time(6), sandboxNumber: 7)
                let claimed = try #require(try await store.claimBlankWorkspace("blank-1", as: asked, eventSequenceBound: 1024))
                var expected = asked
                expected.id = "blank-1"
                expected.sandboxNumber = number
                #expect(claimed.created && claimed.record == expected)
                #expect(try await store.workspace(key: key("w")) == expected)
                #expect(try await store.eventSequenceBound(key: key("w")) == 1024, "the numbers the claim reserved")
                #expect(try await store.blankWorkspaces().isEmpty, "the blank is gone")
                #expect(try await store.claimBlankWorkspace("blank-1", as: workspaceRecord("v", id: "x"), eventSequenceBound: 0) == nil, "and cannot be claimed twice")
                #expect(try await store.workspace(key: key("v")) == nil, "a claim that finds no blank writes nothing")
            }
        }

        @Test(arguments: StoreFactory.all)
        func aClaimForAKeyThatExistsLeavesTheBlank(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                let existing = try await createWorkspace(store, "taken")
                _ = try await store.createBlankWorkspace(id: "blank-1", at: time(1))
                let claimed = try #require(try await store.claimBlankWorkspace("blank-1", as: workspaceRecord("taken", id: "new"), eventSequenceBound: 0))
                #expect(!claimed.created && claimed.record == existing, "the stored workspace, as create answers")
                #expect(try await store.blankWorkspaces().map(\.id) == ["blank-1"], "the blank stays")
            }
        }

        @Test(arguments: StoreFactory.all)
        func concurrentClaimsOfOneBlankMakeOneWorkspace(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                _ = try await store.createBlankWorkspace(id: "blank-1", at: time(1))
                let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<10 {
                        group.addTask { try await store.claimBlankWorkspace("blank-1", as: workspaceRecord("k\(index)", id: "i\(index)"), eventSequenceBound: 0)?.created == true }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(results.filter { $0 }.count == 1)
                #expect(try await store.recordCounts().workspaces == 1)
            }
        }

        @Test(arguments: StoreFactory.all)
        func deletingABlank(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                _ = try await store.createBlankWorkspace(id: "blank-1", at: time(1))
                _ = try await store.createBlankWorkspace(id: "blank-2", at: time(2))
                #expect(try await store.deleteBlankWorkspace(id: "blank-1"))
                #expect(try await !store.deleteBlankWorkspace(id: "blank-1"))
                #expect(try await store.blankWorkspaces().map(\.id) == ["blank-2"])
            }
        }
    }
}
