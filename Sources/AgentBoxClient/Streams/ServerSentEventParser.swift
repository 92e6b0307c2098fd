import AgentBoxAPI
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

/// Parses a `text/event-stream` incrementally, as bytes arrive, with the library's ``ServerSentEventScanner`` (the
/// WHATWG event-stream format: `field: value` lines, events ended by a blank line, `:` comments ignored, LF, CR or
/// CRLF line ends). An event's `id` is the stream's last `id:` field so far.
///
/// Bounded: a line or an event's data longer than ``maximumEventBytes`` is an error, not memory without end (the
/// server's events are far smaller: an agent's line is at most 32 MiB).
struct ServerSentEventParser {
    /// The largest line, and event data, that is read.
    static let maximumEventBytes = 96 << 20

    private var scanner: ServerSentEventScanner
    private var collected = Collected()

    init(maximumEventBytes: Int = Self.maximumEventBytes) {
        scanner = ServerSentEventScanner(maximumLineBytes: maximumEventBytes)
    }

    /// Feeds bytes and returns the events they complete. Once an event went past the limit, the events before it are
    /// still returned, and the next call throws.
    mutating func consume(_ bytes: some Sequence<UInt8>) throws -> [ServerSentEvent] {
        if collected.oversized, collected.events.isEmpty {
            throw EventFormatError("an event of the stream is larger than \(scanner.maximumLineBytes >> 20) MiB")
        }
        if !collected.oversized {
            let chunk = Array(bytes)
            chunk.withUnsafeBufferPointer { scanner.scan($0, into: &collected) }
        }
        if collected.oversized, collected.events.isEmpty {
            throw EventFormatError("an event of the stream is larger than \(scanner.maximumLineBytes >> 20) MiB")
        }
        defer { collected.events.removeAll(keepingCapacity: true) }
        return collected.events
    }

    /// What the scanner found in one chunk.
    private struct Collected: ServerSentEventSink {
        var events: [ServerSentEvent] = []
        var oversized = false

        mutating func receive(eventNamed name: [UInt8], data: [UInt8], lastEventID: [UInt8]?) {
            guard !oversized else { return }  // nothing after the oversized event is handed out
            events.append(
                ServerSentEvent(
                    id: lastEventID.map { String(decoding: $0, as: UTF8.self) },
                    event: name.isEmpty ? "message" : String(decoding: name, as: UTF8.self), data: String(decoding: data, as: UTF8.self)))
        }

        mutating func skippedOversizedEvent() { oversized = true }
    }
}
