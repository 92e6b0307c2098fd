import Testing

@testable import AgentBoxClient

@Suite("SSE parser")
struct ServerSentEventParserTests {
    @Test func parsesFramesSplitAnywhere() {
        let text = ": connected\n\nid: 1\nevent: vmBooted\ndata: {\"bootMs\":1}\n\nid: 2\r\nevent: x\r\ndata: a\r\ndata: b\r\n\r\n"
        let bytes = Array(text.utf8)
        // Every split point gives the same events.
        for split in 0...bytes.count {
            var parser = ServerSentEventParser()
            let events = parser.consume(bytes[..<split]) + parser.consume(bytes[split...])
            #expect(events == [
                ServerSentEvent(id: "1", event: "vmBooted", data: #"{"bootMs":1}"#),
                ServerSentEvent(id: "2", event: "x", data: "a\nb"),
            ])
        }
    }

    @Test func ignoresCommentsAndEventsWithoutData() {
        var parser = ServerSentEventParser()
        #expect(parser.consume(Array(": heartbeat\n\nevent: empty\n\nretry: 5\n\n".utf8)).isEmpty)
    }
}
