import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

extension StoreConformance {
    @Suite("sessions")
    struct Sessions {
        @Test(arguments: StoreFactory.all)
        func sessionsAreKeptAndListedOldestFirst(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await createWorkspace(store, "b")
                let sessions = [
                    sessionRecord("s-late", of: "a", at: time(200)), sessionRecord("s-2", of: "a", at: time(100)),
                    sessionRecord("s-1", of: "a", at: time(100)), sessionRecord("s-other", of: "b", at: time(0)),
                ]
                for session in sessions { try await store.createSession(session) }
                #expect(try await store.sessions(of: key("a")).map(\.id) == ["s-1", "s-2", "s-late"], "by time, then by id")
                #expect(try await store.sessions(of: key("b")) == [sessions[3]])
                #expect(try await store.sessions(of: key("absent")).isEmpty)
                #expect(try await store.session(id: "s-late") == sessions[0])
                #expect(try await store.session(id: "absent") == nil)
            }
        }

        @Test(arguments: StoreFactory.all)
        func updateReplacesOnlyWhatMayChange(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                let original = sessionRecord("s", of: "a", at: time(1))
                try await store.createSession(original)

                var update = original
                update.agentSessionId = "agent-1"
                update.state = "closed"
                update.stopReason = "end_turn"
                update.settings = #"{"cwd":"/elsewhere"}"#
                update.agent = "claude"
                update.workspaceKey = key("b")
                update.createdAt = time(999)
                #expect(try await store.updateSession(update))
                var expected = update
                expected.agent = original.agent
                expected.workspaceKey = original.workspaceKey
                expected.createdAt = original.createdAt
                #expect(try await store.session(id: "s") == expected)
                #expect(try await store.sessions(of: key("b")).isEmpty)
                #expect(try await store.updateSession(expected), "an unchanged session still answers true")

                // Optional fields can be cleared.
                var cleared = expected
                cleared.agentSessionId = nil
                cleared.stopReason = nil
                #expect(try await store.updateSession(cleared))
                #expect(try await store.session(id: "s") == cleared)

                #expect(try await !store.updateSession(sessionRecord("absent", of: "a")))
                #expect(try await store.session(id: "absent") == nil, "updating creates nothing")
            }
        }

        @Test(arguments: StoreFactory.all)
        func anIdThatIsTakenConflicts(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                let original = sessionRecord("s", of: "a", at: time(1))
                try await store.createSession(original)
                await expectStoreError(.conflict) { try await store.createSession(sessionRecord("s", of: "a", at: time(2))) }
                #expect(try await store.session(id: "s") == original)
            }
        }

        @Test(arguments: StoreFactory.all)
        func deleteTakesTheTranscriptAndNothingElse(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                for id in ["gone", "kept"] {
                    try await store.createSession(sessionRecord(id, of: "a"))
                    try await store.appendSessionEvents(sessionEvents(id, 1...5))
                }
                #expect(try await store.deleteSession(id: "gone"))
                #expect(try await !store.deleteSession(id: "gone"))
                #expect(try await store.session(id: "gone") == nil)
                #expect(try await store.sessionEvents(of: "gone", after: 0, limit: 10).isEmpty)
                #expect(try await store.lastSessionEventSeq(of: "gone") == 0)
                #expect(try await store.sessions(of: key("a")).map(\.id) == ["kept"])
                #expect(try await store.sessionEvents(of: "kept", after: 0, limit: 10) == sessionEvents("kept", 1...5))

                // A session made again under the id starts with an empty transcript.
                try await store.createSession(sessionRecord("gone", of: "a"))
                #expect(try await store.sessionEvents(of: "gone", after: 0, limit: 10).isEmpty)
                try await store.appendSessionEvents(sessionEvents("gone", 1...1))
                #expect(try await store.lastSessionEventSeq(of: "gone") == 1)
            }
        }
    }

    @Suite("session transcripts")
    struct Transcripts {
        @Test(arguments: StoreFactory.all)
        func eventsPageInOrderWithoutSkipsOrRepeats(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await store.createSession(sessionRecord("s", of: "a"))
                let events = sessionEvents("s", 1...250, sender: "client")
                try await store.appendSessionEvents(Array(events[..<100]))
                try await store.appendSessionEvents(Array(events[100...]))
                #expect(try await store.lastSessionEventSeq(of: "s") == 250)

                var seen: [SessionEventRecord] = []
                var after: Int64 = 0
                while true {
                    let page = try await store.sessionEvents(of: "s", after: after, limit: 64)
                    #expect(page.count <= 64)
                    guard let last = page.last else { break }
                    seen += page
                    after = last.seq
                }
                #expect(seen == events, "every field round-trips, in seq order")
                #expect(try await store.sessionEvents(of: "s", after: 249, limit: 10).map(\.seq) == [250])
                #expect(try await store.sessionEvents(of: "s", after: 250, limit: 10).isEmpty)
                #expect(try await store.sessionEvents(of: "s", after: 100, limit: 3).map(\.seq) == [101, 102, 103])
                #expect(try await store.sessionEvents(of: "s", after: -5, limit: 2).map(\.seq) == [1, 2], "after below 0 starts at the beginning")
                #expect(try await store.sessionEvents(of: "s", after: 0, limit: Int.max).count == 250)
            }
        }

        @Test(arguments: StoreFactory.all)
        func limitsOfZeroOrLessAndUnknownSessionsGiveNothing(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await store.createSession(sessionRecord("s", of: "a"))
                try await store.appendSessionEvents(sessionEvents("s", 1...3))
                #expect(try await store.sessionEvents(of: "s", after: 0, limit: 0).isEmpty)
                #expect(try await store.sessionEvents(of: "s", after: 0, limit: -1).isEmpty)
                #expect(try await store.sessionEvents(of: "s", after: 0, limit: Int.min).isEmpty)
                #expect(try await store.sessionEvents(of: "absent", after: 0, limit: 10).isEmpty)
                #expect(try await store.lastSessionEventSeq(of: "absent") == 0)
                try await store.createSession(sessionRecord("empty", of: "a"))
                #expect(try await store.lastSessionEventSeq(of: "empty") == 0)
            }
        }

        @Test(arguments: StoreFactory.all)
        func aBatchWithATakenSeqIsRefusedWhole(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await store.createSession(sessionRecord("s", of: "a"))
                try await store.appendSessionEvents(sessionEvents("s", 1...10))
                // A transcript never holds two events at one place, and never half a batch.
                await expectStoreError(.conflict) { try await store.appendSessionEvents(sessionEvents("s", 11...12) + sessionEvents("s", 10...10)) }
                #expect(try await store.lastSessionEventSeq(of: "s") == 10)
                #expect(try await store.sessionEvents(of: "s", after: 10, limit: 10).isEmpty)
                // A seq twice within one batch is refused the same way.
                await expectStoreError(.conflict) { try await store.appendSessionEvents(sessionEvents("s", 11...11) + sessionEvents("s", 11...11)) }
                #expect(try await store.lastSessionEventSeq(of: "s") == 10)
                #expect(try await store.sessionEvents(of: "s", after: 9, limit: 1) == sessionEvents("s", 10...10), "the stored event is unchanged")
            }
        }

        @Test(arguments: StoreFactory.all)
        func aBatchMayHoldSeveralSessionsAndAnEmptyOneDoesNothing(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                for id in ["s1", "s2"] { try await store.createSession(sessionRecord(id, of: "a")) }
                try await store.appendSessionEvents([])
                #expect(try await store.lastSessionEventSeq(of: "s1") == 0)
                try await store.appendSessionEvents(sessionEvents("s1", 1...2) + sessionEvents("s2", 1...1))
                #expect(try await store.sessionEvents(of: "s1", after: 0, limit: 10) == sessionEvents("s1", 1...2))
                #expect(try await store.sessionEvents(of: "s2", after: 0, limit: 10) == sessionEvents("s2", 1...1))
            }
        }
    }
}
