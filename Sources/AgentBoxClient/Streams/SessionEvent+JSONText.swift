import AgentBoxAPI
import Foundation

/// Reading session events straight from JSON text.
///
/// A session event's `payload` is a ``JSONValue``, and Foundation's `Codable` path into that enum tries each case
/// in turn at every level of nesting (a thrown error per miss): about 600 µs for a typical agent message chunk in a
/// debug build. `JSONValue.parse` reads the same text in a few microseconds, so transcript
/// events are parsed once into a ``JSONValue`` and their fields taken from it. The rules are the decoder's:
/// every field is required, `at` is an RFC 3339 date, `sender` one of the known senders; unknown fields are ignored.
extension SessionEvent {
    /// Parses one event from its JSON text.
    init(jsonText text: String) throws {
        try self.init(json: try JSONValue.parse(text))
    }

    /// Reads one event from a parsed JSON object.
    init(json: JSONValue) throws {
        guard case .object(let fields) = json else { throw EventFormatError("a session event is a JSON object") }
        guard case .number(let number)? = fields["seq"], let seq = Int64(exactly: number) else {
            throw EventFormatError("'seq' must be an integer")
        }
        guard let text = fields["at"]?.stringValue, let at = RFC3339.parse(text) else {
            throw EventFormatError("'at' must be an RFC 3339 date-time")
        }
        guard let name = fields["sender"]?.stringValue, let sender = SessionEventSender(rawValue: name) else {
            throw EventFormatError("'sender' must be client, agent or server")
        }
        guard let type = fields["type"]?.stringValue else { throw EventFormatError("'type' must be a string") }
        guard let payload = fields["payload"] else { throw EventFormatError("'payload' is missing") }
        self.init(seq: seq, at: at, sender: sender, type: type, payload: payload)
    }
}

extension SessionEventPage {
    /// Parses a page of a transcript from its JSON text (see ``SessionEvent/init(json:)``).
    init(jsonText data: Data) throws {
        guard case .object(let fields) = try JSONValue.parse(data), case .array(let items)? = fields["items"] else {
            throw EventFormatError("a page of session events is an object with 'items'")
        }
        let cursor: String?
        switch fields["nextCursor"] {
        case nil, .null?: cursor = nil
        case .string(let text)?: cursor = text
        default: throw EventFormatError("'nextCursor' must be a string")
        }
        self.init(items: try items.map { try SessionEvent(json: $0) }, nextCursor: cursor)
    }
}

/// An event whose JSON is not what the API says it is.
struct EventFormatError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = "invalid event: " + description }
}
