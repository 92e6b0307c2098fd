import AgentBoxAPI
import Foundation
import HummingbirdWSClient
import NIOCore

/// A client attached to a shell's terminal (`GET .../shells/{id}/ws`): keystrokes and window sizes go in, the
/// terminal's output and the shell's exit come out.
///
/// Made by ``AgentBoxClient/withShellConnection(_:_:logger:_:)``; valid only inside its body.
public struct ShellConnection: Sendable {
    /// The largest WebSocket message either side accepts.
    static let maximumMessageSize = 1 << 20

    let inbound: WebSocketInboundStream
    let outbound: WebSocketOutboundWriter

    /// Sends bytes to the terminal, as if typed.
    public func write(_ bytes: ByteBuffer) async throws {
        try await outbound.write(.binary(bytes))
    }

    /// Tells the terminal its window's new size.
    public func resize(cols: Int, rows: Int) async throws {
        let frame = try AgentBoxJSON.makeEncoder().encode(ShellControlMessage(type: .resize, cols: cols, rows: rows))
        try await outbound.write(.text(String(decoding: frame, as: UTF8.self)))
    }

    /// What the shell sends, in order, until it closes. Iterate it once.
    public var messages: ShellMessageStream {
        ShellMessageStream(messages: inbound.messages(maxSize: Self.maximumMessageSize))
    }
}

/// One message from an attached shell.
public enum ShellMessage: Sendable, Equatable {
    /// Bytes the terminal wrote.
    case terminal(ByteBuffer)
    /// A control message: `exit` (with the shell's exit code) just before the server closes.
    case control(ShellControlMessage)
}

/// The messages of an attached shell as they arrive; text frames that are not control messages are skipped.
public struct ShellMessageStream: AsyncSequence, Sendable {
    public typealias Element = ShellMessage
    let messages: WebSocketInboundMessageStream

    /// Reads the shell's messages one at a time.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var frames: WebSocketInboundMessageStream.AsyncIterator
        let decoder = AgentBoxJSON.makeDecoder()

        /// The next message, or `nil` once the connection has closed.
        public mutating func next() async throws -> ShellMessage? {
            while let message = try await frames.next() {
                switch message {
                case .binary(let bytes): return .terminal(bytes)
                case .text(let text):
                    if let control = try? decoder.decode(ShellControlMessage.self, from: Data(text.utf8)) { return .control(control) }
                }
            }
            return nil
        }
    }

    /// Starts reading the messages (once: a connection has one reader).
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(frames: messages.makeAsyncIterator())
    }
}
