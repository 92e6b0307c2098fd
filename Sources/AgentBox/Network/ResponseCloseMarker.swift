import NIOCore

/// Marks the answer to a plain-HTTP proxy request as the connection's last: adds `Connection: close` to the final
/// response's head as it passes, and leaves every other byte as it came.
///
/// The egress proxy sends each absolute-form request on a connection of its own with `Connection: close`, and the
/// target closes once it has answered; but a target need not say so in its answer. A client that read no
/// `Connection: close` keeps the proxy connection for its next request and, if the close comes first, sees
/// `ECONNRESET` (Claude Code and Codex lost their MCP connection that way under load). With the header, the client
/// opens a new connection instead.
///
/// It reads status lines only: an interim `1xx` head is passed through to its blank line and the next status line is
/// looked at; after a `101` (the connection is no longer HTTP) or something that is not a status line, bytes pass
/// untouched. A status line longer than ``maxStatusLine`` without its end closes the connection.
final class ResponseCloseMarker: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The longest status line it waits for.
    static let maxStatusLine = 8 << 10

    private enum State {
        /// Gathering a status line.
        case statusLine(ByteBuffer)
        /// Inside an interim response's head; `lineIsEmpty` while the current line has had nothing but `\r`.
        case interimHead(lineIsEmpty: Bool)
        /// The final head is marked (or nothing is to be): bytes pass as they come.
        case passing
    }

    private var state = State.statusLine(ByteBuffer())

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        var output = context.channel.allocator.buffer(capacity: input.readableBytes + 19)
        while input.readableBytes > 0 {
            switch state {
            case .passing:
                output.writeBuffer(&input)
            case .statusLine(var line):
                let view = input.readableBytesView
                guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
                    line.writeBuffer(&input)
                    guard line.readableBytes <= Self.maxStatusLine else {
                        context.fireErrorCaught(ResponseCloseMarkerError.statusLineTooLong)
                        return context.close(promise: nil)
                    }
                    state = .statusLine(line)
                    continue
                }
                var rest = input.readSlice(length: newline - view.startIndex + 1)!
                line.writeBuffer(&rest)
                state = mark(line, into: &output)
            case .interimHead(var lineIsEmpty):
                // Pass the interim head on byte by byte until its blank line, then look for the next status line.
                var ended = false
                while let byte = input.readInteger(as: UInt8.self) {
                    output.writeInteger(byte)
                    if byte == UInt8(ascii: "\n") {
                        if lineIsEmpty {
                            ended = true
                            break
                        }
                        lineIsEmpty = true
                    } else if byte != UInt8(ascii: "\r") {
                        lineIsEmpty = false
                    }
                }
                state = ended ? .statusLine(ByteBuffer()) : .interimHead(lineIsEmpty: lineIsEmpty)
            }
        }
        if output.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(output)) }
    }

    /// Writes `line` (a whole status line, `\n` included) to `output`, with `Connection: close` after it when it
    /// starts the final response; returns what comes next.
    private func mark(_ line: ByteBuffer, into output: inout ByteBuffer) -> State {
        var line = line
        let bytes = line.readableBytesView
        // "HTTP/1.x NNN ...": the code's first digit says interim (1) or final.
        let isStatusLine = bytes.count >= 12 && bytes.starts(with: "HTTP/1.".utf8) && bytes[bytes.startIndex + 8] == UInt8(ascii: " ")
        let code = isStatusLine ? Array(bytes[(bytes.startIndex + 9)..<(bytes.startIndex + 12)]) : []
        output.writeBuffer(&line)
        guard isStatusLine, code.allSatisfy({ (0x30...0x39).contains($0) }) else { return .passing }
        if code == Array("101".utf8) { return .passing }
        if code[0] == UInt8(ascii: "1") { return .interimHead(lineIsEmpty: true) }
        output.writeString("Connection: close\r\n")
        return .passing
    }
}

enum ResponseCloseMarkerError: Error {
    case statusLineTooLong
}
