import AgentBox
import AgentBoxAPI
import AgentBoxStore
import Foundation
import Logging
import NIOCore

// agentbox-bench: measurements that need no server (the server-level ones are the scripts in bench/).
//
//   agentbox-bench store [EVENTS]   session event ingest into SQLite (one event per transaction, and batches of
//                                   100), then the latency of a 100-event page at the start, middle and end of a
//                                   session of EVENTS events (default 1,000,000). Prints a Markdown table.
//   agentbox-bench store-postgres URL [EVENTS]
//                                   the same against a PostgresStore (single node) in the database of URL
//                                   (`postgres://user@host:port/db`; scripts/setup-postgres.sh starts a server), in
//                                   a workspace of its own that it deletes afterwards.
//   agentbox-bench session [EVENTS] a whole session turn in a real sandbox: the mock agent streams EVENTS chunks
//                                   (default 200,000) over ACP; each is parsed, numbered, group-committed to SQLite
//                                   and published. Events per second, without and with a live stream reader.
//                                   Needs root and bubblewrap, and the mock agent built beside this binary.

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
    try await transcriptBenchmark(store, title: "session events in SQLite (WAL, synchronous=NORMAL)", events: total)
    try await store.close()
}

func postgresStoreBenchmark(url: String, events total: Int) async throws {
    var logger = Logger(label: "agentbox-bench")
    logger.logLevel = .warning
    let store = try await PostgresStore.open(url: url, logger: logger)
    try await transcriptBenchmark(store, title: "session events in Postgres (single node, one connection at a time)", events: total)
    try await store.close()
}

/// Session event ingest (one event per call, and batches of 100), then the latency of a 100-event page at the start,
/// middle and end and at random places of a session of `total` events, in a workspace of its own that is deleted
/// afterwards. Prints a Markdown table.
func transcriptBenchmark(_ store: any Store, title: String, events total: Int) async throws {
    let key = WorkspaceKey(rawValue: "bench-\(UUID().uuidString.prefix(8).lowercased())")!
    _ = try await store.createWorkspace(WorkspaceRecord(id: key.rawValue, key: key, config: WorkspaceConfig(), createdAt: Date(), lastActiveAt: Date()))
    let payload = #"{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"a chunk of an agent's answer, about eighty bytes"}}"#
    func event(_ session: String, _ seq: Int) -> SessionEventRecord {
        SessionEventRecord(sessionId: session, seq: Int64(seq), at: Date(), kind: "update", payload: payload)
    }
    let clock = ContinuousClock()
    let (single, big) = ("\(key)-single", "\(key)-big")

    // Ingest, one event per transaction: what persisting each event before publishing it costs when events come
    // one at a time.
    try await store.createSession(SessionRecord(id: single, workspaceKey: key, agent: "mock", state: "active", createdAt: Date()))
    let singles = min(total, 20_000)
    var start = clock.now
    for seq in 1...singles { try await store.appendSessionEvents([event(single, seq)]) }
    let singleRate = Double(singles) / (milliseconds(clock.now - start) / 1000)

    // Ingest in batches of 100 (a busy turn's events gathered while the previous write runs), filling the session
    // that is then paged.
    try await store.createSession(SessionRecord(id: big, workspaceKey: key, agent: "mock", state: "active", createdAt: Date()))
    start = clock.now
    var seq = 0
    while seq < total {
        let batch = (1...min(100, total - seq)).map { event(big, seq + $0) }
        try await store.appendSessionEvents(batch)
        seq += batch.count
    }
    let batchRate = Double(total) / (milliseconds(clock.now - start) / 1000)

    var pages: [(String, [Double])] = []
    var generator = SystemRandomNumberGenerator()
    for (name, after) in [("first page", 0), ("middle page", total / 2), ("last page", total - 100), ("page at a random place", -1)] {
        var samples: [Double] = []
        for _ in 0..<200 {
            let from = after >= 0 ? after : Int.random(in: 0...(total - 100), using: &generator)
            let begin = clock.now
            let page = try await store.sessionEvents(of: big, after: Int64(from), limit: 100)
            samples.append(milliseconds(clock.now - begin))
            precondition(page.count == 100 && page.first?.seq == Int64(from + 1))
        }
        pages.append((name, samples))
    }
    _ = try await store.deleteWorkspace(key: key)

    print("| \(title) | result |")
    print("|---|---|")
    print("| ingest, one event per transaction (\(singles) events) | \(Int(singleRate)) events/s |")
    print("| ingest, batches of 100 (\(total) events) | \(Int(batchRate)) events/s |")
    for (name, samples) in pages {
        print(
            "| \(name) of 100 events, session of \(total) events (200 reads) | p50 \(String(format: "%.3f", percentile(samples, 0.5))) ms, p99 \(String(format: "%.3f", percentile(samples, 0.99))) ms |"
        )
    }
}

/// An ACP agent that writes pre-formatted chunks as fast as Python can: it shows what the server side sustains when
/// the agent is not the bottleneck (the Swift mock spends most of the time encoding its own JSON).
let floodAgent = #"""
import sys, json
out = sys.stdout.buffer
for raw in sys.stdin.buffer:
    msg = json.loads(raw)
    m = msg.get("method"); i = msg.get("id")
    if m == "initialize":
        out.write(json.dumps({"jsonrpc":"2.0","id":i,"result":{"protocolVersion":1,"agentCapabilities":{"loadSession":False}}}).encode()+b"\n")
    elif m == "session/new":
        out.write(json.dumps({"jsonrpc":"2.0","id":i,"result":{"sessionId":"flood-1"}}).encode()+b"\n")
    elif m == "session/prompt":
        n = int(msg["params"]["prompt"][-1]["text"].split()[-1])
        chunk = '{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"flood-1","update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"%d "}}}}\n'
        for k in range(n):
            out.write((chunk % k).encode())
        out.write(json.dumps({"jsonrpc":"2.0","id":i,"result":{"stopReason":"end_turn"}}).encode()+b"\n")
    elif i is not None:
        out.write(json.dumps({"jsonrpc":"2.0","id":i,"error":{"code":-32601,"message":"no"}}).encode()+b"\n")
    out.flush()
"""#

func sessionBenchmark(events total: Int) async throws {
    let directory = URL(fileURLWithPath: "/var/tmp").appendingPathComponent("agentbox-bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    chmod(directory.path, 0o755)
    defer { try? FileManager.default.removeItem(at: directory) }
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    var configuration = AgentBoxConfiguration(dataDirectory: directory)
    configuration.sandbox = try SandboxKind.linux.makeBackend(dataDirectory: directory).backend
    configuration.agents.append(AgentDefinition(id: "flood", name: "flood", command: ["/usr/bin/python3", "/workspace/flood.py"]))
    let manager = try WorkspaceManager.open(configuration: configuration, store: try SQLiteStore.open(in: directory), logger: logger)
    let key = WorkspaceKey(rawValue: "bench")!
    _ = try await manager.create(key: key)
    let script = ByteBuffer(string: floodAgent)
    _ = try await manager.runtime(for: key).files().write(
        try WorkspacePath("/workspace/flood.py"),
        chunks: AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            continuation.yield(script)
            continuation.finish()
        })
    let clock = ContinuousClock()
    var rows: [String] = []
    for (agent, reader) in [("mock", false), ("mock", true), ("flood", false), ("flood", true)] {
        let session = try await manager.createSession(key: key, SessionCreateRequest(agent: agent))
        let consumer: Task<Int, any Error>? =
            reader
            ? Task {
                var count = 0
                for try await event in try await manager.sessionEventStream(key: key, id: session.id, after: session.lastEventSeq) {
                    count += 1
                    if event.type == "turn_end" { break }
                }
                return count
            } : nil
        let start = clock.now
        let result = try await manager.prompt(key: key, id: session.id, PromptRequest(text: "flood \(total)"))
        let elapsed = milliseconds(clock.now - start) / 1000
        precondition(result?.stopReason == "end_turn")
        let stored = try await manager.store.lastSessionEventSeq(of: session.id)
        let seen = try await consumer?.value
        if let seen { precondition(Int64(seen) == stored - session.lastEventSeq, "the reader saw \(seen) of \(stored - session.lastEventSeq)") }
        rows.append(
            "| \(agent == "mock" ? "the Swift mock agent" : "a Python agent writing pre-formatted lines"), \(total) chunks, \(reader ? "one live stream reader" : "no reader") | \(Int(Double(stored - session.lastEventSeq) / elapsed)) events/s (\(String(format: "%.2f", elapsed)) s) |")
    }
    await manager.shutdown()
    print("| a session turn in a sandbox: mock agent → ACP → transcript in SQLite → subscribers | result |")
    print("|---|---|")
    for row in rows { print(row) }
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
case "store-postgres":
    guard let url = arguments.dropFirst().first else {
        FileHandle.standardError.write(Data("usage: agentbox-bench store-postgres URL [EVENTS]\n".utf8))
        exit(2)
    }
    let events = arguments.dropFirst(2).first.flatMap { Int($0) } ?? 1_000_000
    guard events >= 200 else {
        FileHandle.standardError.write(Data("agentbox-bench store-postgres: EVENTS must be at least 200\n".utf8))
        exit(2)
    }
    try await postgresStoreBenchmark(url: url, events: events)
case "session":
    let events = arguments.dropFirst().first.flatMap { Int($0) } ?? 200_000
    guard events >= 1 else {
        FileHandle.standardError.write(Data("agentbox-bench session: EVENTS must be at least 1\n".utf8))
        exit(2)
    }
    try await sessionBenchmark(events: events)
default:
    FileHandle.standardError.write(Data("usage: agentbox-bench store [EVENTS] | store-postgres URL [EVENTS] | session [EVENTS]\n".utf8))
    exit(2)
}
