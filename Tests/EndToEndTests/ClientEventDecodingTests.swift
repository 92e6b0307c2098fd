import AgentBoxAPI
import Foundation
import Testing

@testable import AgentBoxClient

/// The client reads session events with `JSONValue.parse` instead of `Codable` (see `SessionEvent+JSONText.swift`):
/// the same values, the same refusals, in a fraction of the time.
@Suite("Client event decoding")
struct ClientEventDecodingTests {
    static let at = RFC3339.parse("2026-11-02T10:00:00.123Z")!

    /// A streamed chunk of the agent's reply, and a tool call with nested content: the bulk of a transcript.
    static let events: [SessionEvent] = [
        SessionEvent(
            seq: 42, at: at, sender: .agent, type: "agent_message_chunk",
            payload: [
                "sessionId": "sess_1",
                "update": ["sessionUpdate": "agent_message_chunk", "content": ["type": "text", "text": "Hello, I will read the file \"a.txt\" — ok?\n"]],
            ]),
        SessionEvent(
            seq: 43, at: at, sender: .agent, type: "tool_call",
            payload: [
                "sessionId": "sess_1",
                "update": [
                    "sessionUpdate": "tool_call", "toolCallId": "call_7", "title": "Run the tests", "kind": "execute", "status": "pending",
                    "rawInput": ["command": "swift test", "timeout": 120, "env": ["CI": "1"], "args": ["--parallel", true, nil, .number(1.5)]],
                    "locations": [["path": "/workspace/Package.swift", "line": 3]],
                ],
            ]),
        SessionEvent(seq: 44, at: at, sender: .server, type: "turn_end", payload: ["stopReason": "end_turn"]),
    ]

    static func json(_ value: some Encodable) throws -> String {
        String(decoding: try AgentBoxJSON.makeEncoder().encode(value), as: UTF8.self)
    }

    @Test func sessionEventsReadAsCodableReadsThem() throws {
        for event in Self.events {
            let text = try Self.json(event)
            let viaCodable = try AgentBoxJSON.makeDecoder().decode(SessionEvent.self, from: Data(text.utf8))
            #expect(try SessionEvent(jsonText: text) == viaCodable)
            #expect(viaCodable == event)
        }
        let page = SessionEventPage(items: Self.events, nextCursor: "44")
        #expect(try SessionEventPage(jsonText: Data(try Self.json(page).utf8)) == page)
        let last = SessionEventPage(items: [], nextCursor: nil)
        #expect(try SessionEventPage(jsonText: Data(try Self.json(last).utf8)) == last)
    }

    @Test func workspaceStreamNoticesReadAsTheAPIDecodesThem() throws {
        let notice = WorkspaceEvent.sessionEvent(SessionEventNotice(sessionId: "sess_1", seq: 43, event: Self.events[1]))
        let request = WorkspaceEvent.permissionRequest(
            PermissionRequestNotice(
                sessionId: "sess_1", permissionId: "perm_2", toolCall: Self.events[1].payload["update"]!,
                options: [["optionId": "allow", "kind": "allow_once"], ["optionId": "reject", "kind": "reject_once"]]))
        let exit = WorkspaceEvent.processExit(ProcessExitEvent(processId: "p1", exitCode: 3))
        let unknown = WorkspaceEvent.other(name: "fromTheFuture", data: ["a": [1, 2]])
        for event in [notice, request, exit, unknown] {
            let data = try event.encodedData()
            let frame = ServerSentEvent(id: "9", event: event.name, data: String(decoding: data, as: UTF8.self))
            let decoded = try WorkspaceEventEnvelope(frame, decoder: AgentBoxJSON.makeDecoder())
            #expect(decoded == WorkspaceEventEnvelope(seq: 9, event: try WorkspaceEvent.decode(name: event.name, data: data)))
            #expect(decoded.event == event)
        }
    }

    @Test(arguments: [
        #"{"seq":1,"at":"2026-11-02T10:00:00.123Z","sender":"agent","type":"x"}"#,
        #"{"seq":1.5,"at":"2026-11-02T10:00:00.123Z","sender":"agent","type":"x","payload":{}}"#,
        #"{"seq":1,"at":"yesterday","sender":"agent","type":"x","payload":{}}"#,
        #"{"seq":1,"at":"2026-11-02T10:00:00.123Z","sender":"robot","type":"x","payload":{}}"#,
        #"{"seq":1,"at":"2026-11-02T10:00:00.123Z","sender":"agent","type":7,"payload":{}}"#,
        #"[1,2]"#,
        #"{"seq":1,"at":"2026-11-02T10:00:00.123Z","sender":"agent","type":"x","payload":{}"#,
    ])
    func malformedSessionEventsAreRefusedLikeCodableRefusesThem(_ text: String) {
        #expect(throws: (any Error).self) { try AgentBoxJSON.makeDecoder().decode(SessionEvent.self, from: Data(text.utf8)) }
        #expect(throws: (any Error).self) { try SessionEvent(jsonText: text) }
    }

    /// Issue 18 measured ~630 µs per event through `Codable` in a debug build; this prints both paths' cost per
    /// event (run with `--filter ClientEventDecoding` and read the output) and checks the new one is the cheaper.
    @Test func decodingOneEventIsCheap() throws {
        let frames = try Self.events.map { event in
            ServerSentEvent(
                id: String(event.seq), event: "sessionEvent",
                data: try Self.json(SessionEventNotice(sessionId: "sess_1", seq: event.seq, event: event)))
        }
        let decoder = AgentBoxJSON.makeDecoder()
        let rounds = 100
        func microseconds(_ body: (ServerSentEvent) throws -> Void) rethrows -> Double {
            let clock = ContinuousClock()
            let elapsed = try clock.measure {
                for _ in 0..<rounds { for frame in frames { try body(frame) } }
            }
            let (seconds, attoseconds) = elapsed.components
            return (Double(seconds) * 1e6 + Double(attoseconds) / 1e12) / Double(rounds * frames.count)
        }
        let codable = try microseconds { frame in
            _ = try WorkspaceEvent.decode(name: frame.event, data: Data(frame.data.utf8), using: decoder)
        }
        let parsed = try microseconds { frame in _ = try WorkspaceEventEnvelope(frame, decoder: decoder) }
        print("client event decode: Codable \(Int(codable)) µs, JSONValue.parse \(Int(parsed)) µs per event")
        #expect(parsed < codable)
    }
}
