import AgentBoxAPI
import AsyncHTTPClient
import Foundation
import NIOCore

/// Server-Sent Events as they arrive, each decoded, as an `AsyncSequence`. Ends when the server ends the stream.
///
/// The body is read one chunk at a time as the sequence is iterated, so a slow reader holds the server back
/// instead of buffering without bound.
public struct ServerSentEventStream<Element: Sendable>: AsyncSequence, Sendable {
    let body: HTTPClientResponse.Body
    let decode: @Sendable (ServerSentEvent, JSONDecoder) throws -> Element

    /// Reads the body chunk by chunk and hands out its events one at a time.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var chunks: HTTPClientResponse.Body.AsyncIterator
        var parser = ServerSentEventParser()
        var pending: [ServerSentEvent] = []
        var nextPending = 0
        let decoder = AgentBoxJSON.makeDecoder()
        let decode: @Sendable (ServerSentEvent, JSONDecoder) throws -> Element

        /// The next event, or `nil` once the server has ended the stream.
        public mutating func next() async throws -> Element? {
            while true {
                if nextPending < pending.count {
                    defer { nextPending += 1 }
                    return try decode(pending[nextPending], decoder)
                }
                guard let chunk = try await chunks.next() else { return nil }
                pending = try parser.consume(chunk.readableBytesView)
                nextPending = 0
            }
        }
    }

    /// Starts reading the stream (once: the body cannot be read twice).
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(chunks: body.makeAsyncIterator(), decode: decode)
    }
}
