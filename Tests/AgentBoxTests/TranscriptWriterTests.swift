import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

@testable import AgentBox
import AgentBoxSandbox

@Suite("A session's transcript writer")
struct TranscriptWriterTests {
    @Test func everyEventIsNumberedStoredAndOnlyThenPublished() async throws {
        let store = try SQLiteStore.inMemory()
        let published = PublishedEvents(checking: store)
        let writer = makeTranscriptWriter(store: store, published: published, lastSeq: 4)
        for index in 0..<20 { await writer.append(.agent, "agent_message_chunk", .number(Double(index))) }
        #expect(await writer.waitUntilDurable(24))
        await writer.flush()
        #expect(published.seqs == Array(5...24), "numbered on from the last stored seq, published in order")
        #expect(published.allStoredFirst)
        #expect(try await store.lastSessionEventSeq(of: "ses_test") == 24)
        guard case .events(let events) = await writer.events(after: 10, limit: 3) else {
            Issue.record("the latest events are held for readers")
            return
        }
        #expect(events.map(\.seq) == [11, 12, 13])
    }

    /// A bounded wait on a store that stalls ends at its limit, or when its task is cancelled, with `false`, while the
    /// write still waits; the event is written once the store answers.
    @Test func aBoundedWaitEndsWhenTheStoreStallsOrTheReaderGoes() async throws {
        let store = WriteFailingStore(try SQLiteStore.inMemory())
        let writer = makeTranscriptWriter(store: store, published: PublishedEvents(checking: store.base))
        store.hold()
        await writer.append(.agent, "agent_message_chunk", "slow")
        #expect(await writer.waitUntilDurable(1, atMost: .milliseconds(100)) == false)
        #expect(await writer.durableSeq == 0, "it ended at its limit, not with the store's write")

        let waiting = Task { await writer.waitUntilDurable(1, atMost: .seconds(600)) }
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        #expect(await waiting.value == false, "a cancelled reader stops waiting")
        #expect(await writer.durableSeq == 0)

        store.release()
        #expect(await writer.waitUntilDurable(1), "the store's write completes")
        #expect(try await store.base.lastSessionEventSeq(of: "ses_test") == 1)
    }

    @Test func eventsTheStoreRefusesAreNeverPublishedAndAreWrittenWhenItRecovers() async throws {
        let store = WriteFailingStore(try SQLiteStore.inMemory())
        let published = PublishedEvents(checking: store.base)
        let writer = makeTranscriptWriter(store: store, published: published)
        await writer.append(.client, "prompt", "one")
        await writer.append(.agent, "agent_message_chunk", "two")
        #expect(await writer.waitUntilDurable(2))

        store.failing = true
        for index in 3...5 { await writer.append(.agent, "agent_message_chunk", .number(Double(index))) }
        #expect(await writer.waitUntilDurable(5) == false, "a waiter learns that the store refused its event")
        await writer.flush()
        #expect(writer.failure.reason?.contains("injected") == true)
        #expect(store.refused >= TranscriptWriter.attempts)
        #expect(published.seqs == [1, 2], "nothing unstored is published")
        #expect(await writer.durableSeq == 2)
        #expect(try await store.base.lastSessionEventSeq(of: "ses_test") == 2)
        guard case .events(let held) = await writer.events(after: 0, limit: 10) else {
            Issue.record("readers get the stored events")
            return
        }
        #expect(held.map(\.seq) == [1, 2], "readers see only stored events")
        let refusal = await #expect(throws: AgentBoxError.self, "no prompts while events wait") { try await writer.checkWritable() }
        #expect(refusal?.code == .unavailable)

        // The store takes writes again: the queued events go first, in order, then the new ones.
        store.failing = false
        try await writer.checkWritable()
        #expect(writer.failure.reason == nil)
        await writer.append(.server, "turn_end", "six")
        #expect(await writer.waitUntilDurable(6))
        await writer.flush()
        #expect(published.seqs == [1, 2, 3, 4, 5, 6])
        #expect(published.allStoredFirst)
        let stored = try await store.base.sessionEvents(of: "ses_test", after: 0, limit: 100).map(\.seq)
        #expect(stored == [1, 2, 3, 4, 5, 6])
    }

    @Test func theNextEventRetriesTheQueuedOnes() async throws {
        let store = WriteFailingStore(try SQLiteStore.inMemory())
        let published = PublishedEvents(checking: store.base)
        let writer = makeTranscriptWriter(store: store, published: published)
        store.failing = true
        await writer.append(.agent, "agent_message_chunk", "lost?")
        await writer.flush()
        #expect(writer.failure.reason != nil && published.seqs.isEmpty)
        store.failing = false
        // The session's error event, say: written with what waited before it.
        await writer.append(.server, "error", "the store failed")
        #expect(await writer.waitUntilDurable(2))
        await writer.flush()
        #expect(published.seqs == [1, 2])
        #expect(writer.failure.reason == nil)
    }

    @Test func readersEndWhenTheSessionEndsOrTheServerDrains() async throws {
        let store = try SQLiteStore.inMemory()
        let writer = makeTranscriptWriter(store: store, published: PublishedEvents(checking: store))
        await writer.append(.client, "prompt", "one")
        await writer.flush()
        let reader = Task { await writer.events(after: 1, limit: 10) }
        await writer.drain()
        guard case .ended = await reader.value else {
            Issue.record("a waiting reader ends when the server drains")
            return
        }
        await writer.end()
        guard case .ended = await writer.events(after: 0, limit: 10) else {
            Issue.record("no events once the session is gone")
            return
        }
    }
}
