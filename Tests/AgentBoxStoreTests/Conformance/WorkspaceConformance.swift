import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

extension StoreConformance {
    @Suite("workspaces")
    struct Workspaces {
        @Test(arguments: StoreFactory.all)
        func createReportsCreatedAndIsIdempotent(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                let first = WorkspaceRecord(id: "one", key: key("alpha"), config: sampleConfig, createdAt: time(1), lastActiveAt: time(2), sandboxNumber: 999_999)
                let (stored, created) = try await store.createWorkspace(first)
                #expect(created)
                #expect(stored.sandboxNumber >= 1 && stored.sandboxNumber != 999_999, "the store assigns the number")
                var expected = first
                expected.sandboxNumber = stored.sandboxNumber
                #expect(stored == expected)
                #expect(try await store.workspace(key: key("alpha")) == expected)

                let other = WorkspaceRecord(id: "two", key: key("alpha"), config: WorkspaceConfig(), createdAt: time(5), lastActiveAt: time(5))
                let (again, createdAgain) = try await store.createWorkspace(other)
                #expect(!createdAgain)
                #expect(again == expected, "an existing workspace is returned as stored, not as asked")
                #expect(try await store.workspace(key: key("alpha")) == expected, "and is left unchanged")
                #expect(try await store.workspaces(after: nil, limit: 10).count == 1)
            }
        }

        @Test(arguments: StoreFactory.all)
        func concurrentCreatesOfOneKeyCreateOnce(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                let results = try await withThrowingTaskGroup(of: (record: WorkspaceRecord, created: Bool).self) { group in
                    for index in 0..<20 {
                        group.addTask { try await store.createWorkspace(workspaceRecord("race", id: "id\(index)")) }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(results.filter(\.created).count == 1)
                let winner = try #require(results.first { $0.created }?.record)
                #expect(results.allSatisfy { $0.record == winner }, "every caller gets the one stored record")
                #expect(try await store.workspace(key: key("race")) == winner)
            }
        }

        @Test(arguments: StoreFactory.all)
        func sandboxNumbersAreUniqueAndNeverReused(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                var seen: Set<Int> = []
                for raw in ["a", "b", "c"] {
                    #expect(seen.insert(try await createWorkspace(store, raw).sandboxNumber).inserted)
                }
                #expect(try await store.deleteWorkspace(key: key("c")))
                let again = try await createWorkspace(store, "c").sandboxNumber
                #expect(again > seen.max()!, "the number of a deleted workspace, even the highest, is not handed out again")
            }
        }

        @Test(arguments: StoreFactory.all)
        func anIdThatIsTakenConflicts(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                _ = try await store.createWorkspace(workspaceRecord("a", id: "same"))
                await expectStoreError(.conflict) { try await store.createWorkspace(workspaceRecord("b", id: "same")) }
                #expect(try await store.workspace(key: key("b")) == nil, "nothing was written")
            }
        }

        @Test(arguments: StoreFactory.all)
        func unknownKeysAreNotErrors(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                _ = try await createWorkspace(store, "known")
                #expect(try await store.workspace(key: key("absent")) == nil)
                #expect(try await !store.deleteWorkspace(key: key("absent")))
                #expect(try await !store.updateWorkspaceConfig(key: key("absent"), config: sampleConfig))
                try await store.touchWorkspace(key: key("absent"), at: time(10))
                #expect(try await store.workspace(key: key("absent")) == nil, "neither update nor touch creates a workspace")
                #expect(try await store.workspaces(after: nil, limit: 10).map(\.key) == [key("known")])
            }
        }

        @Test(arguments: StoreFactory.all)
        func pagesFollowByteOrderAndCursorsNeverSkipOrRepeat(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                // Mixed case and punctuation: a locale's collation would order these differently from their bytes.
                let keys = ["b", "B", "a", "_u", "0", "-x", ".y", "Z", "a:1", "aa", "A", "9z", "a-", "a."]
                for raw in keys.shuffled() { _ = try await createWorkspace(store, raw) }
                let expected = keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                #expect(expected.prefix(4) == ["-x", ".y", "0", "9z"], "the test's own idea of byte order")

                var listed: [String] = []
                var cursor: WorkspaceKey?
                while true {
                    let page = try await store.workspaces(after: cursor, limit: 3)
                    #expect(page.count <= 3)
                    guard let last = page.last else { break }
                    listed += page.map(\.key.rawValue)
                    cursor = last.key
                }
                #expect(listed == expected)

                #expect(try await store.workspaces(after: nil, limit: Int.max).map(\.key.rawValue) == expected)
                #expect(try await store.workspaces(after: key(expected.last!), limit: 10).isEmpty)
                // A cursor need not be a stored key: "Zz" sorts between "Z" and "_u".
                #expect(try await store.workspaces(after: key("Zz"), limit: 1).map(\.key.rawValue) == ["_u"])
                // The key that ended a page may be deleted before the next page is asked for.
                #expect(try await store.deleteWorkspace(key: key("a")))
                #expect(try await store.workspaces(after: key("a"), limit: 2).map(\.key.rawValue) == ["a-", "a."])
            }
        }

        @Test(arguments: StoreFactory.all)
        func limitsOfZeroOrLessListNothing(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                for raw in ["a", "b"] { _ = try await createWorkspace(store, raw) }
                #expect(try await store.workspaces(after: nil, limit: 0).isEmpty)
                #expect(try await store.workspaces(after: nil, limit: -1).isEmpty)
                #expect(try await store.workspaces(after: nil, limit: Int.min).isEmpty)
                #expect(try await store.workspaces(after: nil, limit: 1).map(\.key.rawValue) == ["a"])
            }
        }

        @Test(arguments: StoreFactory.all)
        func deleteTakesEverythingOfTheWorkspaceAndNothingElse(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                for raw in ["gone", "kept"] {
                    _ = try await createWorkspace(store, raw)
                    _ = try await store.reserveEventSequence(key: key(raw), count: 10)
                    try await store.createSnapshot(snapshotRecord("snap-\(raw)", of: raw))
                    try await store.createPreview(previewRecord("token-\(raw)", of: raw))
                    try await store.createSession(sessionRecord("session-\(raw)", of: raw))
                    try await store.appendSessionEvents(sessionEvents("session-\(raw)", 1...3))
                }
                #expect(try await store.deleteWorkspace(key: key("gone")))
                #expect(try await !store.deleteWorkspace(key: key("gone")), "a second delete finds nothing")

                #expect(try await store.workspace(key: key("gone")) == nil)
                #expect(try await store.snapshots(of: key("gone")).isEmpty)
                #expect(try await store.snapshot(id: "snap-gone") == nil)
                #expect(try await store.preview(tokenHash: PreviewRecord.hash(token: "token-gone")) == nil)
                #expect(try await store.previews(of: key("gone"), now: time(0)).isEmpty)
                #expect(try await store.session(id: "session-gone") == nil)
                #expect(try await store.sessions(of: key("gone")).isEmpty)
                #expect(try await store.sessionEvents(of: "session-gone", after: 0, limit: 10).isEmpty)
                #expect(try await store.lastSessionEventSeq(of: "session-gone") == 0)

                #expect(try await store.workspace(key: key("kept")) != nil)
                #expect(try await store.eventSequenceBound(key: key("kept")) == 10)
                #expect(try await store.snapshot(id: "snap-kept") != nil)
                #expect(try await store.preview(tokenHash: PreviewRecord.hash(token: "token-kept")) != nil)
                #expect(try await store.session(id: "session-kept") != nil)
                #expect(try await store.sessionEvents(of: "session-kept", after: 0, limit: 10).map(\.seq) == [1, 2, 3])

                // Created again under the same key, the workspace starts afresh.
                let again = try await createWorkspace(store, "gone")
                #expect(try await store.eventSequenceBound(key: again.key) == 0)
                #expect(try await store.snapshots(of: again.key).isEmpty)
                #expect(try await store.sessions(of: again.key).isEmpty)
            }
        }

        @Test(arguments: StoreFactory.all)
        func touchNeverMovesBackwards(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                let created = try await createWorkspace(store, "a", at: time(0))
                try await store.touchWorkspace(key: key("a"), at: time(100))
                try await store.touchWorkspace(key: key("a"), at: time(50))
                try await store.touchWorkspace(key: key("a"), at: time(-10))
                let stored = try #require(try await store.workspace(key: key("a")))
                #expect(stored.lastActiveAt == time(100))
                var expected = created
                expected.lastActiveAt = time(100)
                #expect(stored == expected, "touching changes nothing else")
            }
        }

        @Test(arguments: StoreFactory.all)
        func updateConfigReplacesOnlyTheConfig(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                let created = try await createWorkspace(store, "a")
                _ = try await store.reserveEventSequence(key: key("a"), count: 5)
                let config = WorkspaceConfig(limits: WorkspaceLimits(memoryMb: 512), env: ["C": "3"])
                #expect(try await store.updateWorkspaceConfig(key: key("a"), config: config))
                var expected = created
                expected.config = config
                #expect(try await store.workspace(key: key("a")) == expected)
                #expect(try await store.eventSequenceBound(key: key("a")) == 5)
                #expect(try await store.updateWorkspaceConfig(key: key("a"), config: config), "an unchanged config still answers true")
                #expect(try await store.updateWorkspaceConfig(key: key("a"), config: WorkspaceConfig()))
                #expect(try await store.workspace(key: key("a"))?.config == WorkspaceConfig(), "an empty config replaces too")
            }
        }

        @Test(arguments: StoreFactory.all)
        func timesAreKeptToTheMicrosecond(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                let now = Date()
                let later = now.addingTimeInterval(0.123_456)
                _ = try await store.createWorkspace(workspaceRecord("a", at: now))
                try await store.touchWorkspace(key: key("a"), at: later)
                let stored = try #require(try await store.workspace(key: key("a")))
                #expect(abs(stored.createdAt.timeIntervalSince(now)) < 1e-6)
                #expect(abs(stored.lastActiveAt.timeIntervalSince(later)) < 1e-6)
            }
        }
    }
}
