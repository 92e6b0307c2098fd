import NIOCore
import NIOHTTP1

/// One side of a preview WebSocket once the workspace's server has answered `101 Switching Protocols`: the bytes
/// that arrive on this channel are written to the other side's, as they come, with no parsing of frames (as nginx
/// relays an upgraded connection). Both channels are on the same event loop (the upstream is made on the client's),
/// so the two halves call each other directly.
///
/// Backpressure: while the other side's channel holds more than its high-water mark of unsent bytes, this side's
/// reads are held (the pipeline's `read` is not passed on) until it drains. Whichever side closes, or fails, closes
/// the other. The upstream side owns the ``PreviewUpstream`` and ends its activity (which holds the workspace awake)
/// when it closes.
final class PreviewByteRelay: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?
    private var peer: PreviewByteRelay?
    /// The connection into the workspace, on the upstream side only: its activity ends when the relay does.
    private let upstream: PreviewUpstream?
    private var readHeld = false
    private var unflushed = false

    init(upstream: PreviewUpstream?) {
        self.upstream = upstream
    }

    /// Links the two halves (each must be in its pipeline already).
    static func link(_ a: PreviewByteRelay, _ b: PreviewByteRelay) {
        a.peer = b
        b.peer = a
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        finish()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let peer, let target = peer.context else { return }
        target.write(data, promise: nil)
        peer.unflushed = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        peer?.flushIfNeeded()
    }

    func read(context: ChannelHandlerContext) {
        if let peerContext = peer?.context, !peerContext.channel.isWritable {
            readHeld = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // This side drained: the other may read again.
        if context.channel.isWritable, let peer, peer.readHeld, let peerContext = peer.context {
            peer.readHeld = false
            peerContext.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The peer half-closed (with half-closure allowed): nothing more comes from it, so the relay ends.
        if let event = event as? ChannelEvent, event == .inputClosed { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    /// Flushes what was relayed to this side since its last flush.
    func flushIfNeeded() {
        guard unflushed, let context else { return }
        unflushed = false
        context.flush()
    }

    /// This side is gone: what was relayed to the other goes out, then the other closes; the activity ends.
    private func finish() {
        upstream?.end()
        guard let peer else { return }
        self.peer = nil
        peer.peer = nil
        if let peerContext = peer.context {
            let channel = peerContext.channel
            peerContext.writeAndFlush(NIOAny(ByteBuffer()), promise: nil)
            channel.close(promise: nil)
        }
    }
}
