import AgentBoxAPI
import AsyncAlgorithms
import Foundation
import HTTPTypes
import Hummingbird

/// Writes an AsyncSequence of events as a `text/event-stream` response, with a comment heartbeat.
///
/// Hummingbird has no SSE type, so frames are written by hand: `id:`, `event:`, `data:` (one JSON object on one
/// line), and a blank line. A `: heartbeat` comment goes out whenever `heartbeat` passes without an event, so
/// proxies keep the connection and clients notice a dead one. Memory is bounded: a client that cannot keep up for
/// `bufferCapacity` frames is disconnected and resumes with `Last-Event-ID`.
/// What the SSE writer sends next: an event, or a heartbeat comment.
enum SSEItem<Event: Sendable>: Sendable {
    case event(Event)
    case heartbeat
}

enum ServerSentEvents {
    /// `until`: the stream ends when it does (the request's token was revoked; see ``AgentBoxRequestContext/revocation``).
    static func response<Events: AsyncSequence & Sendable>(
        _ events: Events, heartbeat: Duration = .seconds(15), bufferCapacity: Int = 512, until revocation: AsyncStream<Never>? = nil,
        frame: @escaping @Sendable (Events.Element) throws -> ByteBuffer
    ) -> Response where Events.Element: Sendable, Events.Failure == Never {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                let (items, continuation) = AsyncStream<SSEItem<Events.Element>>.makeStream(bufferingPolicy: .bufferingOldest(bufferCapacity))
                try await writer.write(ByteBuffer(string: ": connected\n\n"))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await event in events {
                            if case .dropped = continuation.yield(.event(event)) { break }
                        }
                        continuation.finish()
                    }
                    group.addTask {
                        while true {
                            try await Task.sleep(for: heartbeat)
                            continuation.yield(.heartbeat)
                        }
                    }
                    if let revocation {
                        group.addTask {
                            for await _ in revocation {}
                            continuation.finish()
                        }
                    }
                    for await item in items {
                        switch item {
                        case .event(let event): try await writer.write(try frame(event))
                        case .heartbeat: try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                        }
                    }
                    group.cancelAll()
                }
                try await writer.finish(nil)
            })
    }

    /// Like ``response(_:heartbeat:bufferCapacity:frame:)`` for a sequence that is pulled (a transcript read from
    /// the store, then live): the next event is asked for only when the last one was written, so a slow client
    /// slows its own reading and nobody's memory grows. An error of the sequence ends the stream.
    static func pulledResponse<Events: AsyncSequence & Sendable>(
        _ events: Events, heartbeat: Duration = .seconds(15), until revocation: AsyncStream<Never>? = nil,
        frame: @escaping @Sendable (Events.Element) throws -> ByteBuffer
    ) -> Response where Events.Element: Sendable {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                // AsyncChannel hands each item over only when the writer takes it: backpressure to the sequence.
                let items = AsyncChannel<SSEItem<Events.Element>>()
                try await writer.write(ByteBuffer(string: ": connected\n\n"))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            for try await event in events { await items.send(.event(event)) }
                        } catch {}
                        items.finish()
                    }
                    group.addTask {
                        while true {
                            try await Task.sleep(for: heartbeat)
                            await items.send(.heartbeat)
                        }
                    }
                    if let revocation {
                        group.addTask {
                            for await _ in revocation {}
                            items.finish()
                        }
                    }
                    for await item in items {
                        switch item {
                        case .event(let event): try await writer.write(try frame(event))
                        case .heartbeat: try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                        }
                    }
                    group.cancelAll()
                }
                try await writer.finish(nil)
            })
    }

    /// One SSE frame. `data` must not contain a newline (JSON from AgentBoxJSON never does). Without an id, the
    /// client's Last-Event-ID stays where it was.
    static func frame(id: Int64?, event: String, data: Data) -> ByteBuffer {
        var buffer = ByteBuffer()
        write(id: id, event: event, json: data, into: &buffer)
        return buffer
    }

    /// Appends one frame to `buffer`. An event name with a line break (it may come from an agent) is cut there, so
    /// that it cannot forge fields.
    static func write(id: Int64?, event: String, json: some Collection<UInt8>, into buffer: inout ByteBuffer) {
        if let id {
            buffer.writeStaticString("id: ")
            buffer.writeString(String(id))
            buffer.writeStaticString("\n")
        }
        buffer.writeStaticString("event: ")
        if let cut = event.utf8.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
            buffer.writeBytes(event.utf8[..<cut])
        } else {
            buffer.writeString(event)
        }
        buffer.writeStaticString("\ndata: ")
        buffer.writeBytes(json)
        buffer.writeStaticString("\n\n")
    }

    /// The sequence number after which a stream resumes: the `Last-Event-ID` header, else `?after=`.
    static func resumePoint(_ request: Request) throws -> Int64? {
        if let header = request.headers[HTTPField.Name("Last-Event-ID")!] {
            guard let value = Int64(header.trimmingCharacters(in: .whitespaces)), value >= 0 else {
                throw ProblemError(.badRequest, "Last-Event-ID must be an event sequence number, not '\(header)'")
            }
            return value
        }
        if let after = request.uri.queryParameters.get("after") {
            guard let value = Int64(after), value >= 0 else {
                throw ProblemError(.badRequest, "after must be an event sequence number, not '\(after)'")
            }
            return value
        }
        return nil
    }
}
