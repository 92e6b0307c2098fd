// An incremental, bounded server-sent-events parser: it turns arbitrarily chunked bytes into events.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What receives the events a ``ServerSentEventScanner`` finds.
public protocol ServerSentEventSink {
    /// Whether the data of an event with this `event:` name is worth keeping; answering false lets the
    /// scanner skip copying the data of events that cannot matter.
    func wantsData(forEventNamed name: [UInt8]) -> Bool

    /// One complete event: its name (empty when it had no `event:` field), its data lines joined by LF, and the
    /// stream's last event id (the latest `id:` field so far, which later events keep; `nil` before any).
    mutating func receive(eventNamed name: [UInt8], data: [UInt8], lastEventID: [UInt8]?)

    /// An event was dropped because one of its lines, or its data, went past the scanner's limit.
    mutating func skippedOversizedEvent()
}

extension ServerSentEventSink {
    public func wantsData(forEventNamed name: [UInt8]) -> Bool { true }
    public mutating func skippedOversizedEvent() {}
}

/// Splits a `text/event-stream` body into events, one chunk at a time, following the WHATWG rules that
/// matter for reading an API's stream: lines end with LF, CRLF or a lone CR (also when the CR and LF
/// arrive in different chunks); `data:` lines of one event are joined with LF; a blank line dispatches;
/// lines starting with `:` are comments; one space after the colon is dropped; `id:` sets the last event id
/// (unless its value holds a NUL); other fields are ignored. The client's streams and the LLM gateway's usage
/// meter both read with it. Written by hand: the one SSE package on this machine (mattt/EventSource) does not
/// build on Linux.
///
/// Memory is bounded by `maximumLineBytes`: a line longer than that is never accumulated past the limit;
/// it is skipped whole and spoils the event it belongs to, as does an event whose data grows past the
/// same limit (the sink hears of it). Each byte is looked at once: a complete line is handled in place in the caller's chunk,
/// and only a line cut by a chunk boundary is copied into `partialLine`.
///
/// Two deliberate departures from the browser algorithm: a byte-order mark is not stripped (it only
/// renames the first field, which then reads as unknown), and ``finish(into:)`` dispatches a final event
/// that lacks its blank line, because a stream cut right after its last `data:` line still reported usage.
public struct ServerSentEventScanner: Sendable {
    private static let lineFeed = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")
    private static let colon = UInt8(ascii: ":")
    private static let space = UInt8(ascii: " ")
    private static let dataField = Array("data".utf8)
    private static let eventField = Array("event".utf8)
    private static let idField = Array("id".utf8)

    /// The longest line, and the largest event data, that is kept; longer ones are skipped.
    public let maximumLineBytes: Int

    /// The start of a line whose end has not arrived yet.
    private var partialLine: [UInt8] = []
    /// The current line outgrew the limit: drop bytes until its end.
    private var isDiscardingLine = false
    /// The previous chunk ended with CR, so an LF opening the next chunk belongs to that line break.
    private var swallowsLeadingLineFeed = false

    private var lastEventID: [UInt8]?
    private var eventName: [UInt8] = []
    private var eventData: [UInt8] = []
    private var eventHasData = false
    /// The sink does not want this event's data (decided from its name), so none is copied.
    private var eventIsUnwanted = false
    /// A line or the data of this event went past the limit; the event is dropped when it dispatches.
    private var eventIsSpoiled = false

    public init(maximumLineBytes: Int) {
        self.maximumLineBytes = maximumLineBytes
    }

    /// Feeds one chunk; complete events go to `sink` as their blank line arrives.
    public mutating func scan<Sink: ServerSentEventSink>(_ chunk: UnsafeBufferPointer<UInt8>, into sink: inout Sink) {
        guard let base = chunk.baseAddress, !chunk.isEmpty else { return }
        let count = chunk.count
        var lineStart = 0
        if swallowsLeadingLineFeed {
            swallowsLeadingLineFeed = false
            if base[0] == Self.lineFeed { lineStart = 1 }
        }
        // Streams almost never contain CR; when a chunk has none, memchr for LF alone is much faster
        // than a byte loop that checks both terminators.
        let hasCarriageReturn = memchr(base + lineStart, Int32(Self.carriageReturn), count - lineStart) != nil
        while lineStart < count {
            guard let lineEnd = Self.lineEnd(in: base, from: lineStart, to: count, hasCarriageReturn) else {
                break
            }
            completeLine(UnsafeBufferPointer(start: base + lineStart, count: lineEnd - lineStart), into: &sink)
            var next = lineEnd + 1
            if base[lineEnd] == Self.carriageReturn {
                if next == count {
                    swallowsLeadingLineFeed = true
                } else if base[next] == Self.lineFeed {
                    next += 1
                }
            }
            lineStart = next
        }
        if lineStart < count {
            appendToPartialLine(UnsafeBufferPointer(start: base + lineStart, count: count - lineStart))
        }
    }

    /// Ends the stream: a last line without its line break, and a last event without its blank line,
    /// are handled as if they had been terminated.
    public mutating func finish<Sink: ServerSentEventSink>(into sink: inout Sink) {
        if !partialLine.isEmpty || isDiscardingLine {
            completeLine(UnsafeBufferPointer(start: nil, count: 0), into: &sink)
        }
        dispatch(into: &sink)
    }

    private static func lineEnd(
        in base: UnsafePointer<UInt8>, from start: Int, to end: Int, _ hasCarriageReturn: Bool
    ) -> Int? {
        if !hasCarriageReturn {
            guard let found = memchr(base + start, Int32(lineFeed), end - start) else { return nil }
            return UnsafeRawPointer(found) - UnsafeRawPointer(base)
        }
        var index = start
        while index < end {
            let byte = base[index]
            if byte == lineFeed || byte == carriageReturn { return index }
            index += 1
        }
        return nil
    }

    /// `tail` is the end of a line: alone, or after the bytes already waiting in `partialLine`.
    private mutating func completeLine<Sink: ServerSentEventSink>(
        _ tail: UnsafeBufferPointer<UInt8>, into sink: inout Sink
    ) {
        if isDiscardingLine {
            isDiscardingLine = false
            spoilEvent()
        } else if partialLine.isEmpty {
            if tail.count > maximumLineBytes { spoilEvent() } else { handleLine(tail, into: &sink) }
        } else if partialLine.count + tail.count > maximumLineBytes {
            partialLine = []
            spoilEvent()
        } else {
            partialLine.append(contentsOf: tail)
            // Move the buffer out while it is read, so handling the line may mutate `self`.
            var line: [UInt8] = []
            swap(&line, &partialLine)
            line.withUnsafeBufferPointer { handleLine($0, into: &sink) }
            line.removeAll(keepingCapacity: true)
            swap(&line, &partialLine)
        }
    }

    private mutating func appendToPartialLine(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard !isDiscardingLine else { return }
        if partialLine.count + bytes.count > maximumLineBytes {
            // Give the memory back now; the rest of this line is dropped as it arrives.
            partialLine = []
            isDiscardingLine = true
        } else {
            partialLine.append(contentsOf: bytes)
        }
    }

    private mutating func handleLine<Sink: ServerSentEventSink>(
        _ line: UnsafeBufferPointer<UInt8>, into sink: inout Sink
    ) {
        guard let first = line.first else {
            dispatch(into: &sink)
            return
        }
        guard first != Self.colon else { return }
        let nameEnd = line.firstIndex(of: Self.colon) ?? line.count
        var valueStart = min(nameEnd + 1, line.count)
        if valueStart < line.count, line[valueStart] == Self.space { valueStart += 1 }
        let name = UnsafeBufferPointer(rebasing: line[0..<nameEnd])
        let value = UnsafeBufferPointer(rebasing: line[valueStart...])
        if name.elementsEqual(Self.dataField) {
            appendData(value)
        } else if name.elementsEqual(Self.eventField) {
            eventName.removeAll(keepingCapacity: true)
            eventName.append(contentsOf: value)
            eventIsUnwanted = !sink.wantsData(forEventNamed: eventName)
        } else if name.elementsEqual(Self.idField), !value.contains(0) {
            lastEventID = Array(value)
        }
    }

    private mutating func appendData(_ value: UnsafeBufferPointer<UInt8>) {
        guard !eventIsUnwanted, !eventIsSpoiled else { return }
        let separator = eventHasData ? 1 : 0
        guard eventData.count + separator + value.count <= maximumLineBytes else {
            spoilEvent()
            return
        }
        if eventHasData { eventData.append(Self.lineFeed) }
        eventData.append(contentsOf: value)
        eventHasData = true
    }

    private mutating func spoilEvent() {
        eventIsSpoiled = true
        eventData = []
    }

    private mutating func dispatch<Sink: ServerSentEventSink>(into sink: inout Sink) {
        if eventIsSpoiled {
            sink.skippedOversizedEvent()
        } else if eventHasData, !eventIsUnwanted {
            sink.receive(eventNamed: eventName, data: eventData, lastEventID: lastEventID)
        }
        eventName.removeAll(keepingCapacity: true)
        eventData.removeAll(keepingCapacity: true)
        eventHasData = false
        eventIsUnwanted = false
        eventIsSpoiled = false
    }
}
