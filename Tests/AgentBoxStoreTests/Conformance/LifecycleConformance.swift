import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

extension StoreConformance {
    @Suite("closing and opening again")
    struct Lifecycle {
        @Test(arguments: StoreFactory.all)
        func callsAfterCloseThrowClosed(_ factory: StoreFactory) async throws {
            try await factory.withLocation { location throws in
                let store = try await location.open()
                try await createWorkspace(store, "a")
                try await store.createSession(sessionRecord("s", of: "a"))
                try await store.close()
                await expectStoreError(.closed) { try await store.workspace(key: key("a")) }
                await expectStoreError(.closed) { try await store.workspaces(after: nil, limit: 10) }
                await expectStoreError(.closed) { try await store.createWorkspace(workspaceRecord("b")) }
                await expectStoreError(.closed) { try await store.touchWorkspace(key: key("a"), at: time(1)) }
                await expectStoreError(.closed) { try await store.reserveEventSequence(key: key("a"), count: 1) }
                await expectStoreError(.closed) { try await store.createPreview(previewRecord("p", of: "a")) }
                await expectStoreError(.closed) { try await store.appendSessionEvents(sessionEvents("s", 1...1)) }
                await expectStoreError(.closed) { try await store.appendSessionEvents([]) }
                await expectStoreError(.closed) { try await store.sessionEvents(of: "s", after: 0, limit: 10) }
                await expectStoreError(.closed) { try await store.deleteWorkspace(key: key("a")) }
                try await store.close()  // a second close does nothing
            }
        }

        @Test(arguments: StoreFactory.all)
        func callsRacingCloseCompleteOrThrowClosed(_ factory: StoreFactory) async throws {
            try await factory.withLocation { location throws in
                let store = try await location.open()
                try await createWorkspace(store, "a")
                let unexpected = await withTaskGroup(of: (any Error)?.self) { group in
                    for index in 0..<200 {
                        group.addTask {
                            do {
                                if index.isMultiple(of: 2) {
                                    _ = try await store.reserveEventSequence(key: key("a"), count: 1)
                                } else {
                                    _ = try await store.workspace(key: key("a"))
                                }
                                return nil
                            } catch let error as StoreError where error.code == .closed {
                                return nil
                            } catch {
                                return error
                            }
                        }
                        if index == 100 { group.addTask { try? await store.close(); return nil } }
                    }
                    return await group.compactMap { $0 }.reduce(into: [String]()) { $0.append("\($1)") }
                }
                #expect(unexpected.isEmpty)
                try await store.close()
            }
        }

        @Test(arguments: StoreFactory.durable)
        func everythingSurvivesReopening(_ factory: StoreFactory) async throws {
            try await factory.withLocation { location throws in
                let store = try await location.open()
                try await createWorkspace(store, "a", at: time(0))
                let b = try await createWorkspace(store, "b", at: time(0))
                try await store.touchWorkspace(key: key("a"), at: time(30))
                #expect(try await store.updateWorkspaceConfig(key: key("a"), config: WorkspaceConfig(env: ["X": "y"])))
                _ = try await store.reserveEventSequence(key: key("a"), count: 1024)
                let snapshot = snapshotRecord("snap", of: "a", at: time(5))
                try await store.createSnapshot(snapshot)
                let preview = previewRecord("token", of: "a")
                try await store.createPreview(preview)
                var session = sessionRecord("s", of: "a", at: time(7))
                try await store.createSession(session)
                session.state = "closed"
                #expect(try await store.updateSession(session))
                try await store.appendSessionEvents(sessionEvents("s", 1...20))
                let workspaces = try await store.workspaces(after: nil, limit: 10)
                try await store.close()

                let reopened = try await location.open()
                #expect(try await reopened.workspaces(after: nil, limit: 10) == workspaces)
                let a = try #require(try await reopened.workspace(key: key("a")))
                #expect(a.lastActiveAt == time(30) && a.config == WorkspaceConfig(env: ["X": "y"]))
                #expect(try await reopened.eventSequenceBound(key: key("a")) == 1024)
                #expect(try await reopened.snapshots(of: key("a")) == [snapshot])
                #expect(try await reopened.preview(tokenHash: preview.tokenHash) == preview)
                #expect(try await reopened.session(id: "s") == session)
                #expect(try await reopened.sessionEvents(of: "s", after: 0, limit: 100) == sessionEvents("s", 1...20))
                // Sandbox numbers keep counting from where they were.
                let c = try await createWorkspace(reopened, "c")
                #expect(c.sandboxNumber > max(a.sandboxNumber, b.sandboxNumber))
                try await reopened.close()
            }
        }
    }

    @Suite("concurrency")
    struct Concurrency {
        @Test(arguments: StoreFactory.all)
        func concurrentAppendsLoseNothing(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                let (sessions, batches, batchSize): (Int, Int, Int64) = (16, 10, 5)
                for index in 0..<sessions { try await store.createSession(sessionRecord("s\(index)", of: "a")) }
                // Each session's batches in order from its own task; the sessions' tasks all at once.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<sessions {
                        group.addTask {
                            for batch in 0..<Int64(batches) {
                                try await store.appendSessionEvents(sessionEvents("s\(index)", (batch * batchSize + 1)...((batch + 1) * batchSize)))
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let total = Int64(batches) * batchSize
                for index in 0..<sessions {
                    #expect(try await store.sessionEvents(of: "s\(index)", after: 0, limit: 1000) == sessionEvents("s\(index)", 1...total))
                    #expect(try await store.lastSessionEventSeq(of: "s\(index)") == total)
                }
            }
        }

        @Test(arguments: StoreFactory.all)
        func contestedSeqsAreWrittenOnce(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await store.createSession(sessionRecord("s", of: "a"))
                // Four writers race for each of 1...50, each with its own sender: exactly one wins each seq.
                let outcomes = await withTaskGroup(of: (seq: Int64, sender: String, result: Result<Void, StoreError>?).self) { group in
                    for seq in Int64(1)...50 {
                        for writer in 0..<4 {
                            group.addTask {
                                let sender = "writer\(writer)"
                                do {
                                    try await store.appendSessionEvents(sessionEvents("s", seq...seq, sender: sender))
                                    return (seq, sender, .success(()))
                                } catch let error as StoreError {
                                    return (seq, sender, .failure(error))
                                } catch {
                                    return (seq, sender, nil)
                                }
                            }
                        }
                    }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                #expect(outcomes.allSatisfy { $0.result != nil }, "every failure is a StoreError")
                let stored = try await store.sessionEvents(of: "s", after: 0, limit: 1000)
                #expect(stored.map(\.seq) == Array(1...50))
                for seq in Int64(1)...50 {
                    let mine = outcomes.filter { $0.seq == seq }
                    let winners = mine.filter { if case .success = $0.result { true } else { false } }
                    #expect(winners.count == 1, "seq \(seq)")
                    #expect(mine.allSatisfy { if case .failure(let error) = $0.result { error.code == .conflict } else { true } })
                    #expect(stored[Int(seq) - 1].sender == winners.first?.sender, "the stored event is the winner's")
                }
            }
        }

        @Test(arguments: StoreFactory.all)
        func concurrentCreatesOfManyKeysGetDistinctNumbers(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                let records = try await withThrowingTaskGroup(of: WorkspaceRecord.self) { group in
                    for index in 0..<40 { group.addTask { try await store.createWorkspace(workspaceRecord("w\(index)")).record } }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(Set(records.map(\.sandboxNumber)).count == 40)
                #expect(try await store.workspaces(after: nil, limit: 100).count == 40)
            }
        }
    }
}
