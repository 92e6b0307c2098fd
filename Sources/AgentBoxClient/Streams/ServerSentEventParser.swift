import Foundation

/// One Server-Sent Event as received.
public struct ServerSentEvent: Sendable, Equatable {
    /// The `id:` field (a sequence number on AgentBox's streams), if the frame had one.
    public var id: String?
    /// The `event:` field, `message` when the frame had none.
    public var event: String
    /// The `data:` lines, joined by newlines.
    public var data: String
}

/// Parses a `text/event-stream` incrementally, as bytes arrive (the WHATWG event-stream format: `field: value`
/// lines, events ended by a blank line, `:` comments ignored, LF, CR or CRLF line ends).
///
/// Written by hand because the one SSE package on this machine (mattt/EventSource) does not build on Linux.
struct ServerSentEventParser {
    private var line: [UInt8] = []
    private var lastWasCR = false
    private var id: String?
    private var event = ""
    private var data: [String] = []
    private var hasData = false

    /// Feeds bytes and returns the events they complete.
    mutating func consume(_ bytes: some Sequence<UInt8>) -> [ServerSentEvent] {
        var completed: [ServerSentEvent] = []
        for byte in bytes {
            if lastWasCR, byte == UInt8(ascii: "\n") {
                lastWasCR = false
                continue
            }
            lastWasCR = byte == UInt8(ascii: "\r")
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                if let event = endLine() { completed.append(event) }
            } else {
                line.append(byte)
            }
        }
        return completed
    }

    private mutating func endLine() -> ServerSentEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            // A blank line dispatches the event being built, if it has data.
            defer {
                event = ""
                data.removeAll()
                hasData = false
            }
            guard hasData else { return nil }
            return ServerSentEvent(id: id, event: event.isEmpty ? "message" : event, data: data.joined(separator: "\n"))
        }
        if line.first == UInt8(ascii: ":") { return nil }
        let text = String(decoding: line, as: UTF8.self)
        let field: Substring
        var value: Substring
        if let colon = text.firstIndex(of: ":") {
            field = text[..<colon]
            value = text[text.index(after: colon)...]
            if value.first == " " { value = value.dropFirst() }
        } else {
            field = Substring(text)
            value = ""
        }
        switch field {
        case "id": if !value.contains("\0") { id = String(value) }
        case "event": event = String(value)
        case "data":
            data.append(String(value))
            hasData = true
        default: break
        }
        return nil
    }
}
