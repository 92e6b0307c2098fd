import Testing

@testable import AgentBoxClient

@Suite("SSE parser")
struct ServerSentEventParserTests {
    @Test func parsesFramesSplitAnywhere() throws {
        let text = ": connected\n\nid: 1\nevent: vmBooted\ndata: {\"bootMs\":1}\n\nid: 2\r\nevent: x\r\ndata: a\r\ndata: b\r\n\r\n"
        let bytes = Array(text.utf8)
        // Every split point gives the same events.
        for split in 0...bytes.count {
            var parser = ServerSentEventParser()
            let events = try parser.consume(bytes[..<split]) + parser.consume(bytes[split...])
            #expect(events == [
                ServerSentEvent(id: "1", event: "vmBooted", data: #"{"bootMs":1}"#),
                ServerSentEvent(id: "2", event: "x", data: "a\nb"),
            ])
        }
    }

    @Test func ignoresCommentsAndEventsWithoutData() throws {
        var parser = ServerSentEventParser()
        #expect(try parser.consume(Array(": heartbeat\n\nevent: empty\n\nretry: 5\n\n".utf8)).isEmpty)
    }

    /// The last `id:` stays with the events after it; one with a NUL is ignored; an event without `event:` is
    /// `message`.
    @Test func theLastIDCarriesOver() throws {
        var parser = ServerSentEventParser()
        let events = try parser.consume(Array("id: 7\ndata: a\n\ndata: b\n\nid: 8\u{0}\ndata: c\n\n".utf8))
        #expect(events == [
            ServerSentEvent(id: "7", event: "message", data: "a"), ServerSentEvent(id: "7", event: "message", data: "b"),
            ServerSentEvent(id: "7", event: "message", data: "c"),
        ])
    }

    /// A line longer than the limit, even cut into many chunks, is an error rather than memory without end; the
    /// events before it are still handed out.
    @Test func anOversizedEventIsAnErrorNotMemory() throws {
        var parser = ServerSentEventParser(maximumEventBytes: 1024)
        #expect(try parser.consume(Array("data: small\n\n".utf8)) == [ServerSentEvent(id: nil, event: "message", data: "small")])
        for _ in 0..<10 { _ = try parser.consume(Array(repeating: UInt8(ascii: "x"), count: 512)) }
        #expect(throws: (any Error).self) { try parser.consume(Array("\n\n".utf8)) }
        #expect(throws: (any Error).self) { try parser.consume(Array("data: after\n\n".utf8)) }

        // An event completed in the same chunk before the oversized one is handed out first; the next call throws.
        var same = ServerSentEventParser(maximumEventBytes: 1024)
        let chunk = Array("data: first\n\ndata: \(String(repeating: "y", count: 2000))\n\ndata: later\n\n".utf8)
        #expect(try same.consume(chunk) == [ServerSentEvent(id: nil, event: "message", data: "first")])
        #expect(throws: (any Error).self) { try same.consume([]) }
    }
}
