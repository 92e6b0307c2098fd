import NIOCore

/// Marks the answer to a plain-HTTP proxy request as the connection's last: the final response's head passes with its
/// own `Connection`, `Keep-Alive` and `Proxy-Connection` fields taken out and `Connection: close` put in, and every
/// other byte as it came.
///
/// The egress proxy sends each absolute-form request on a connection of its own with `Connection: close`, and the
/// target closes once it has answered; but a target need not say so in its answer. A client that read no
/// `Connection: close` (or, from an HTTP/1.0 target, read `Keep-Alive`) keeps the proxy connection for its next
/// request and, if the close comes first, sees `ECONNRESET` (Claude Code and Codex lost their MCP connection that way
/// under load). With the header, the client opens a new connection instead.
///
/// It reads heads line by line, each line bounded by ``maxLine``: an interim `1xx` head is passed through to its blank
/// line and the next status line is looked at; after a `101` (the connection is no longer HTTP) or a first line that
/// is not a status line, bytes pass untouched, and so does the body after the final head. A longer line closes the
/// connection. What it holds when the target's side ends (a cut answer) is passed on first.
final class ResponseCloseMarker: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The longest status or header line it reads.
    static let maxLine = 16 << 10

    private enum Phase {
        /// Before a status line.
        case status
        /// In an interim (1xx) head: its lines pass as they are.
        case interim
        /// In the final head: its connection fields are dropped; `dropping` while the field being read (with its
        /// obs-fold continuation lines) is one of them.
        case final(dropping: Bool)
        /// Past the final head, or nothing to mark: bytes pass as they come.
        case passing
    }

    private var phase = Phase.status
    /// The start of a line whose end has not arrived.
    private var line = ByteBuffer()

    private static let dropped: [[UInt8]] = ["connection", "keep-alive", "proxy-connection"].map { Array($0.utf8) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .passing = phase { return context.fireChannelRead(data) }
        var input = unwrapInboundIn(data)
        var output = context.channel.allocator.buffer(capacity: input.readableBytes + 19)
        while input.readableBytes > 0 {
            if case .passing = phase {
                output.writeBuffer(&input)
                break
            }
            let view = input.readableBytesView
            guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
                line.writeBuffer(&input)
                guard line.readableBytes <= Self.maxLine else { return fail(context, output) }
                break
            }
            var rest = input.readSlice(length: newline - view.startIndex + 1)!
            line.writeBuffer(&rest)
            guard line.readableBytes <= Self.maxLine else { return fail(context, output) }
            handleLine(into: &output)
            line.clear()
        }
        if output.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(output)) }
    }

    /// Handles the whole line in ``line`` (its `\n` included), writing what passes to `output`.
    private func handleLine(into output: inout ByteBuffer) {
        let bytes = line.readableBytesView
        switch phase {
        case .status:
            // "HTTP/1.x NNN ...": the code's first digit says interim (1) or final.
            let isStatusLine = bytes.count >= 12 && bytes.starts(with: "HTTP/1.".utf8) && bytes[bytes.startIndex + 8] == UInt8(ascii: " ")
            let code = isStatusLine ? Array(bytes[(bytes.startIndex + 9)..<(bytes.startIndex + 12)]) : []
            output.writeBytes(bytes)
            if !isStatusLine || !code.allSatisfy({ (0x30...0x39).contains($0) }) || code == Array("101".utf8) {
                phase = .passing
            } else if code[0] == UInt8(ascii: "1") {
                phase = .interim
            } else {
                output.writeString("Connection: close\r\n")
                phase = .final(dropping: false)
            }
        case .interim:
            output.writeBytes(bytes)
            if Self.isBlank(bytes) { phase = .status }
        case .final(let dropping):
            if Self.isBlank(bytes) {
                output.writeBytes(bytes)
                phase = .passing
            } else if bytes.first == UInt8(ascii: " ") || bytes.first == UInt8(ascii: "\t") {
                // A continuation of the field before (obs-fold): it goes where that field went.
                if !dropping { output.writeBytes(bytes) }
            } else {
                let name = bytes.prefix { $0 != UInt8(ascii: ":") }
                let drop = Self.dropped.contains { $0.count == name.count && zip($0, name).allSatisfy { $0 == ($1 | 0x20) } }
                if !drop { output.writeBytes(bytes) }
                phase = .final(dropping: drop)
            }
        case .passing:
            output.writeBytes(bytes)
        }
    }

    private static func isBlank(_ bytes: ByteBufferView) -> Bool {
        bytes.count == 1 || (bytes.count == 2 && bytes.first == UInt8(ascii: "\r"))
    }

    /// A line past the bound: what passed so far goes on, then the connection closes.
    private func fail(_ context: ChannelHandlerContext, _ output: ByteBuffer) {
        line = ByteBuffer()
        phase = .passing
        if output.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(output)) }
        context.fireErrorCaught(ResponseCloseMarkerError.lineTooLong)
        context.close(promise: nil)
    }

    /// The target's side ended: a line held without its end goes on as it came.
    private func flushHeld(_ context: ChannelHandlerContext) {
        guard line.readableBytes > 0 else { return }
        let held = line
        line = ByteBuffer()
        phase = .passing
        context.fireChannelRead(wrapInboundOut(held))
    }

    func channelInactive(context: ChannelHandlerContext) {
        flushHeld(context)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { flushHeld(context) }
        context.fireUserInboundEventTriggered(event)
    }
}

enum ResponseCloseMarkerError: Error {
    case lineTooLong
}
