import AgentBoxAPI
import Foundation
import Testing

@testable import AgentBox

@Suite("A session's recent events in memory")
struct RecentEventsTests {
    func events(_ seqs: ClosedRange<Int64>, payloadBytes: Int = 10) -> [EncodedSessionEvent] {
        seqs.map { seq in
            let payload = Array("\"\(String(repeating: "x", count: payloadBytes))\"".utf8)
            return EncodedSessionEvent(
                SessionEvent(seq: seq, at: Date(timeIntervalSince1970: 0), sender: .agent, type: "t", payload: .string("")), payloadJSON: payload)
        }
    }

    @Test func itHoldsAtMostItsCountAndServesWhatItHolds() {
        var recent = RecentEvents(capacity: 8, byteCapacity: 1 << 20)
        recent.append(contentsOf: events(1...9))
        #expect(recent.count == 9, "trimmed only past a quarter more")
        recent.append(contentsOf: events(10...11))
        #expect(recent.count == 8 && recent.firstSeq == 4)
        #expect(recent.events(after: 2, limit: 10) == nil, "seq 3 is gone: read the store")
        #expect(recent.events(after: 3, limit: 3).map { $0.map(\.seq) } == [4, 5, 6])
        #expect(recent.events(after: 11, limit: 3) == nil)
        // A gap (events that never reached memory) empties it rather than serving across the gap.
        recent.append(contentsOf: events(20...20))
        #expect(recent.count == 1 && recent.firstSeq == 20)
    }

    @Test func largeEventsAreBoundedByBytes() {
        // (Seqs of two digits make an event's JSON a byte longer: the budget leaves room for that.)
        let cost = RecentEvents.cost(of: events(1...1, payloadBytes: 100_000)[0])
        var recent = RecentEvents(capacity: 4096, byteCapacity: 10 * cost + 100)
        recent.append(contentsOf: events(1...12, payloadBytes: 100_000))
        #expect(recent.count == 12, "within a quarter more of the bytes")
        recent.append(contentsOf: events(13...13, payloadBytes: 100_000))
        #expect(recent.count == 10 && recent.firstSeq == 4 && recent.bytes == 10 * cost + 8)
        // One event larger than the whole budget is not kept: readers get it from the store.
        recent.append(contentsOf: events(14...14, payloadBytes: 2_000_000))
        #expect(recent.count == 0 && recent.bytes == 0)
        #expect(recent.events(after: 13, limit: 1) == nil)
        recent.append(contentsOf: events(15...15))
        #expect(recent.count == 1 && recent.events(after: 14, limit: 1)?.map(\.seq) == [15])
    }
}
