import NIOCore
import Testing

@testable import AgentBoxServer

@Suite("SSE frames")
struct ServerSentEventsTests {
    @Test func aFrameHasItsFieldsAndAnEventNameCannotForgeMore() {
        var buffer = ByteBuffer()
        ServerSentEvents.write(id: 7, event: "agent_message_chunk", json: Array(#"{"a":1}"#.utf8), into: &buffer)
        // An agent-chosen name with a line break would otherwise add a `data:` or `id:` line of its own.
        ServerSentEvents.write(id: 8, event: "x\ndata: {\"forged\":true}\nid: 99", json: Array("{}".utf8), into: &buffer)
        ServerSentEvents.write(id: nil, event: "y\r", json: Array("[]".utf8), into: &buffer)
        #expect(String(buffer: buffer) == "id: 7\nevent: agent_message_chunk\ndata: {\"a\":1}\n\nid: 8\nevent: x\ndata: {}\n\nevent: y\ndata: []\n\n")
    }
}
