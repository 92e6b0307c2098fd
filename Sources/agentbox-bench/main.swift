import AgentBoxAPI
import AgentBoxStore
import Foundation

// agentbox-bench: measurements that need no server (the server-level ones are the scripts in bench/).
//
//   agentbox-bench store [EVENTS]   session event ingest into SQLite (one event per transaction, and batches of
//                                   100), then the latency of a 100-event page at the start, middle and end of a
//                                   session of EVENTS events (default 1,000,000). Prints a Markdown table.

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

func percentile(_ samples: [Double], _ q: Double) -> Double {
    let sorted = samples.sorted()
    return sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))]
}

func storeBenchmark(events total: Int) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let store = try SQLiteStore(path: directory.appendingPathComponent("bench.sqlite").path)
    let key = WorkspaceKey(rawValue: "bench")!
    _ = try await store.createWorkspace(WorkspaceRecord(id: "bench", key: key, config: WorkspaceConfig(), createdAt: Date(), lastActiveAt: Date()))
    let payload = #"{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"a chunk of an agent's answer, about eighty bytes"}}"#
    func event(_ session: String, _ seq: Int) -> SessionEventRecord {
        SessionEventRecord(sessionId: session, seq: Int64(seq), at: Date(), kind: "update", payload: payload)
    }
    let clock = ContinuousClock()

    // Ingest, one event per transaction: what persisting each event before publishing it costs when events come
    // one at a time.
    try await store.createSession(SessionRecord(id: "single", workspaceKey: key, agent: "mock", state: "active", createdAt: Date()))
    let singles = min(total, 20_000)
    var start = clock.now
    for seq in 1...singles { try await store.appendSessionEvents([event("single", seq)]) }
    let singleRate = Double(singles) / (milliseconds(clock.now - start) / 1000)

    // Ingest in batches of 100 (a busy turn's events gathered while the previous write runs), filling the session
    // that is then paged.
    try await store.createSession(SessionRecord(id: "big", workspaceKey: key, agent: "mock", state: "active", createdAt: Date()))
    start = clock.now
    var seq = 0
    while seq < total {
        let batch = (1...min(100, total - seq)).map { event("big", seq + $0) }
        try await store.appendSessionEvents(batch)
        seq += batch.count
    }
    let batchRate = Double(total) / (milliseconds(clock.now - start) / 1000)

    var pages: [(String, [Double])] = []
    for (name, after) in [("first page", 0), ("middle page", total / 2), ("last page", total - 100)] {
        var samples: [Double] = []
        for _ in 0..<200 {
            let begin = clock.now
            let page = try await store.sessionEvents(of: "big", after: Int64(after), limit: 100)
            samples.append(milliseconds(clock.now - begin))
            precondition(page.count == 100 && page.first?.seq == Int64(after + 1))
        }
        pages.append((name, samples))
    }

    print("| session events in SQLite (WAL, synchronous=NORMAL) | result |")
    print("|---|---|")
    print("| ingest, one event per transaction (\(singles) events) | \(Int(singleRate)) events/s |")
    print("| ingest, batches of 100 (\(total) events) | \(Int(batchRate)) events/s |")
    for (name, samples) in pages {
        print(
            "| \(name) of 100 events, session of \(total) events (200 reads) | p50 \(String(format: "%.3f", percentile(samples, 0.5))) ms, p99 \(String(format: "%.3f", percentile(samples, 0.99))) ms |"
        )
    }
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "store":
    let events = arguments.dropFirst().first.flatMap { Int($0) } ?? 1_000_000
    guard events >= 200 else {
        FileHandle.standardError.write(Data("agentbox-bench store: EVENTS must be at least 200\n".utf8))
        exit(2)
    }
    try await storeBenchmark(events: events)
default:
    FileHandle.standardError.write(Data("usage: agentbox-bench store [EVENTS]\n".utf8))
    exit(2)
}
