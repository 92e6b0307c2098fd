import NIOHTTP1
import AgentBoxAPI
import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

// Internal for the SSE frames' own `id:` lines and for the raw pages (see ``ReceivedEvent``).
@testable import AgentBoxClient

/// Fault tests of security issue #17: the server killed with SIGKILL while many clients stream.
@Suite("kill -9 under load", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct CrashEndToEndTests {
    static let workspaces = 4
    static let sessionsPerWorkspace = 5
    /// Each turn floods this many chunks as fast as the agent can, then ticks every 100 ms (`long`) for a minute, so
    /// that every turn is still running when the server dies, however fast the flood went.
    static let floodChunks = 1000
    /// The server is killed once every client has received this many events (most of them mid-flood).
    static let seenBeforeKill = 500

    /// 20 sessions in 4 workspaces, each with a turn streaming hundreds of events to its own SSE client; kill -9 while
    /// they stream; restart on the same data directory. Every event any client saw is in the transcript (same seq,
    /// same payload), every session resumes and takes a new prompt, and each client's stream resumes from its
    /// Last-Event-ID with no gap and no duplicate.
    @Test func killMinus9WhileTwentySessionsStream() async throws {
        try await withTemporaryDirectory { data in
            try await withHTTPClient(connections: 64) { http in
                let first = try await ServerProcess.start(dataDirectory: data)
                var client = AgentBoxClient(endpoint: first.endpoint, token: first.token, httpClient: http)
                let sessions = try await Self.createSessions(client)

                // Every client connects before its turn starts, then reads until the connection dies with the server.
                var opened: [ServerSentEventStream<ReceivedEvent>] = []
                for session in sessions { opened.append(try await client.receivedEvents(session.key, session.id, lastEventID: 0)) }
                let streams = opened
                let (progress, reached) = AsyncStream.makeStream(of: Void.self)
                let readers = Task {
                    try await collect(streams) { stream in
                        var events: [ReceivedEvent] = []
                        do {
                            for try await event in stream {
                                events.append(event)
                                if events.count == Self.seenBeforeKill { reached.yield() }
                            }
                        } catch {
                            // The connection died with the server: what arrived before is what counts.
                        }
                        return events
                    }
                }
                try await within(30, "every turn started") { [client] in
                    try await withThrowingTaskGroup(of: Void.self) { prompts in
                        for session in sessions {
                            prompts.addTask { try await client.startPrompt(session.key, session.id, PromptRequest(text: "flood \(Self.floodChunks) long")) }
                        }
                        try await prompts.waitForAll()
                    }
                }
                try await within(45, "every client receiving \(Self.seenBeforeKill) events") {
                    var count = 0
                    for await _ in progress {
                        count += 1
                        if count == sessions.count { return }
                    }
                }
                #expect(await first.stop(signal: SIGKILL) == SIGKILL)
                let seen = try await within(30, "every stream ending with the server") { try await readers.value }
                for (session, events) in zip(sessions, seen) {
                    #expect(events.count >= Self.seenBeforeKill, "\(session.id) received \(events.count) events")
                    #expect(events.map(\.seq) == seqs(through: events.count), "\(session.id): each event once, in order")
                    #expect(events.allSatisfy { $0.id == $0.seq.map(String.init) }, "the SSE id is the seq")
                }

                // The same data directory, and the same uids, so the workspaces' files stay theirs.
                let second = try await ServerProcess.start(dataDirectory: data, uidBase: first.uidBase)
                client = AgentBoxClient(endpoint: second.endpoint, token: second.token, httpClient: http)

                // Each client reconnects at once with the last id it got, and reads until the next turn has ended.
                var reopened: [ServerSentEventStream<ReceivedEvent>] = []
                for (session, events) in zip(sessions, seen) {
                    reopened.append(try await client.receivedEvents(session.key, session.id, lastEventID: events.last?.seq ?? 0))
                }
                let resumedStreams = reopened
                let resumedReaders = Task {
                    try await collect(resumedStreams) { stream in
                        var events: [ReceivedEvent] = []
                        for try await event in stream {
                            events.append(event)
                            if event.type == "turn_end", event.event["payload"]?["stopReason"]?.stringValue == "end_turn" { break }
                        }
                        return events
                    }
                }
                for key in Set(sessions.map(\.key)) {
                    for listed in try await client.sessions(key).items {
                        #expect(listed.status == .idle && listed.stopReason == "error", "\(listed.id): the interrupted turn is over")
                    }
                }
                try await within(60, "every session resuming and answering a prompt") { [client] in
                    try await withThrowingTaskGroup(of: Void.self) { turns in
                        for session in sessions {
                            turns.addTask {
                                let again = try await client.resumeSession(session.key, session.id)
                                #expect(again.agentRunning && again.agentSessionId == session.agentSessionId, "\(session.id) reattached")
                                let result = try await client.prompt(session.key, session.id, PromptRequest(text: "after the crash"))
                                #expect(result.stopReason == "end_turn", "\(session.id): \(result)")
                            }
                        }
                        try await turns.waitForAll()
                    }
                }
                let resumed = try await within(30, "every resumed stream reaching the new turn's end") { try await resumedReaders.value }

                for ((session, before), after) in zip(zip(sessions, seen), resumed) {
                    let stored = try await client.transcript(session.key, session.id)
                    #expect(stored.map(\.seq) == seqs(through: stored.count), "\(session.id): the transcript has no gap")
                    let lost = difference(before.map(\.event), Array(stored.prefix(before.count)))
                    #expect(lost == nil, "\(session.id): an event a client saw before kill -9 is not in the transcript as it was: \(lost ?? "")")
                    let resumedDifference = difference(after.map(\.event), Array(stored.dropFirst(before.count)))
                    #expect(
                        resumedDifference == nil,
                        "\(session.id): the stream resumed after its Last-Event-ID is not the rest of the transcript: \(resumedDifference ?? "")")
                    #expect(after.allSatisfy { $0.id == $0.seq.map(String.init) })
                    let interrupted = stored.filter { $0.type == "turn_end" && $0["payload"]?["error"]?.stringValue == "the server stopped during the turn" }
                    #expect(
                        interrupted.count == 1 && (interrupted.first?.seq ?? 0) > Int64(before.count),
                        "\(session.id): the interrupted turn ended once, after the events seen")
                    #expect(
                        stored.last { $0.type == "agent_started" }?["payload"]?["method"]?.stringValue == "load",
                        "\(session.id) was reattached with session/load")
                    #expect(stored.last?.type == "turn_end" && stored.last?["payload"]?["stopReason"]?.stringValue == "end_turn")
                }
                #expect(await second.stop() == 0)
            }
        }
    }

    struct CreatedSession: Sendable {
        let key: String
        let id: String
        let agentSessionId: String?
    }

    /// ``sessionsPerWorkspace`` mock sessions in each of ``workspaces`` workspaces, created concurrently.
    static func createSessions(_ client: AgentBoxClient) async throws -> [CreatedSession] {
        try await within(60, "creating the sessions") {
            try await withThrowingTaskGroup(of: CreatedSession.self) { group in
                for workspace in 0..<workspaces {
                    let key = "crash-\(workspace)"
                    _ = try await client.putWorkspace(key)
                    for _ in 0..<sessionsPerWorkspace {
                        group.addTask {
                            let session = try await client.createSession(key, SessionCreateRequest(agent: "mock"))
                            return CreatedSession(key: key, id: session.id, agentSessionId: session.agentSessionId)
                        }
                    }
                }
                var created: [CreatedSession] = []
                for try await session in group { created.append(session) }
                return created.sorted { ($0.key, $0.id) < ($1.key, $1.id) }
            }
        }
    }
}

/// One transcript event as an SSE client received it: the frame's `id:` line and the event as JSON.
///
/// Events are compared as JSON values rather than decoded into `SessionEvent`: the client's Codable path costs
/// ~0.6 ms an event in a debug build (JSONValue's decoder tries each JSON type in turn, throwing for each miss), which
/// made 20 readers of a few hundred events each take most of a minute on two busy cores.
struct ReceivedEvent: Sendable {
    let id: String?
    let event: JSONValue
    var seq: Int64? { event.seq }
}

extension JSONValue {
    /// A transcript event's `seq`.
    var seq: Int64? {
        if case .number(let number)? = self["seq"] { return Int64(exactly: number) }
        return nil
    }

    /// A transcript event's `type`.
    var type: String? { self["type"]?.stringValue }
}

extension ReceivedEvent {
    var type: String? { event.type }
}

extension AgentBoxClient {
    /// The session's SSE stream after `lastEventID`, frame by frame with each frame's `id:`.
    func receivedEvents(_ key: String, _ id: String, lastEventID: Int64) async throws -> ServerSentEventStream<ReceivedEvent> {
        var request = makeRequest(.GET, Self.sessionPath(key, id) + "/events/stream")
        request.headers.add(name: "Accept", value: "text/event-stream")
        request.headers.add(name: "Last-Event-ID", value: String(lastEventID))
        let response = try await http.execute(request, timeout: .minutes(5))
        guard response.status == .ok else { throw try await AgentBoxClientError(response: response) }
        return ServerSentEventStream(body: response.body) { frame, _ in
            ReceivedEvent(id: frame.id, event: try JSONValue.parse(frame.data))
        }
    }

    /// The whole transcript as stored, page by page, each event as JSON.
    func transcript(_ key: String, _ id: String) async throws -> [JSONValue] {
        var events: [JSONValue] = []
        var after: Int64 = 0
        while true {
            let response = try await perform(.GET, Self.sessionPath(key, id) + "/events", query: [("after", String(after)), ("limit", "1000")])
            let page = try JSONValue.parse(Data(response.body.readableBytesView))
            guard case .array(let items)? = page["items"] else { throw UnexpectedPage(page: page) }
            events += items
            guard let next = page["nextCursor"]?.stringValue.flatMap({ Int64($0) }) else { return events }
            after = next
        }
    }
}

/// Where two runs of events first differ (by position, seq and content), or `nil` when they are the same.
func difference(_ received: [JSONValue], _ stored: [JSONValue]) -> String? {
    for (index, (got, kept)) in zip(received, stored).enumerated() where got != kept {
        return "received event #\(index + 1) (seq \(got.seq.map(String.init) ?? "?")) is \(got.jsonText), stored: \(kept.jsonText)"
    }
    guard received.count == stored.count else { return "\(received.count) received, \(stored.count) stored" }
    return nil
}

/// 1, 2, ... `count`.
func seqs(through count: Int) -> [Int64?] { (0..<Int64(count)).map { $0 + 1 } }

/// `read` applied to every stream concurrently; the results in the streams' order.
func collect<Stream: Sendable, Result: Sendable>(
    _ streams: [Stream], _ read: @escaping @Sendable (Stream) async throws -> Result
) async throws -> [Result] {
    try await withThrowingTaskGroup(of: (Int, Result).self) { group in
        for (index, stream) in streams.enumerated() { group.addTask { (index, try await read(stream)) } }
        var results: [Result?] = Array(repeating: nil, count: streams.count)
        for try await (index, result) in group { results[index] = result }
        return results.map { $0! }
    }
}

/// An HTTP client of its own with room for many concurrent connections (the shared one keeps 8 per host, which 20
/// open event streams would exhaust), shut down when `body` returns.
func withHTTPClient<T>(connections: Int, _ body: (HTTPClient) async throws -> T) async throws -> T {
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    do {
        let result = try await body(http)
        try await http.shutdown()
        return result
    } catch {
        try? await http.shutdown()
        throw error
    }
}

/// Runs `body`, failing with `what` when it has not finished after `seconds` (it is then cancelled).
func within<T: Sendable>(_ seconds: Int, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimedOut(what: what, seconds: seconds) }
        return value
    }
}

struct UnexpectedPage: Error {
    let page: JSONValue
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    let seconds: Int
    var description: String { "timed out after \(seconds) s waiting for \(what)" }
}
