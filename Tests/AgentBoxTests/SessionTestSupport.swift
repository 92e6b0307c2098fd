import AgentBoxAPI
import AgentBoxStore
import Foundation
import Logging
import Synchronization

@testable import AgentBox

/// What a transcript writer published, in order, and whether each event was in the store when it was published.
final class PublishedEvents: Sendable {
    private let events = Mutex<[(seq: Int64, stored: Bool)]>([])
    let store: any Store

    init(checking store: any Store) { self.store = store }

    func add(_ batch: [SessionEvent], sessionId: String) async {
        let stored = (try? await store.sessionEvents(of: sessionId, after: batch[0].seq - 1, limit: batch.count).map(\.seq)) ?? []
        events.withLock { events in
            for event in batch { events.append((event.seq, stored.contains(event.seq))) }
        }
    }

    var seqs: [Int64] { events.withLock { $0.map(\.seq) } }
    var allStoredFirst: Bool { events.withLock { $0.allSatisfy(\.stored) } }
}

/// A transcript writer for session `ses_test` on `store`, whose publishing `published` records.
func makeTranscriptWriter(store: any Store, published: PublishedEvents, lastSeq: Int64 = 0) -> TranscriptWriter {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return TranscriptWriter(
        sessionId: "ses_test", lastSeq: lastSeq, store: store, recentCapacity: 64, recentByteCapacity: 1 << 20, logger: logger
    ) { batch in
        await published.add(batch, sessionId: "ses_test")
    }
}
