import NIOCore
import NIOHTTP1

/// Closes an HTTP/1 connection whose client keeps the server waiting: a request head not complete within
/// `headTimeout` of the connection's start or of the last answer's end (this is also how long an idle keep-alive
/// connection stays open), or a request body with no bytes for `bodyTimeout`. A slow client (slowloris: a head sent
/// a byte at a time, a `Content-Length` never reached) otherwise held its connection, and a request's task, forever.
///
/// It never cuts what the server owes: while an answer is being made (a long exec, an event stream) no clock runs.
/// It sits right after NIO's HTTP/1 parser, so it sees every request part and every answer part of the connection,
/// API and preview alike. From an answer that is a `101` on, the connection is no longer HTTP (WebSocket frames, a
/// preview's relayed bytes): it lets everything through untouched, with no clock (it does not leave the pipeline
/// then, which would disturb NIO's upgrade under way).
final class ClientTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let headTimeout: TimeAmount
    let bodyTimeout: TimeAmount

    /// Requests whose head has come and whose answer has not ended.
    private var unanswered = 0
    /// A request's body is still coming.
    private var receivingBody = false
    private var timer: Scheduled<Void>?
    /// Counts arms, so that a timer due in the same tick as its replacement does nothing.
    private var generation: UInt64 = 0
    /// A `101` was sent: nothing here is HTTP any more.
    private var upgraded = false

    init(headTimeout: Duration, bodyTimeout: Duration) {
        self.headTimeout = TimeAmount(headTimeout)
        self.bodyTimeout = TimeAmount(bodyTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(headTimeout, context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelActive(context: ChannelHandlerContext) {
        arm(headTimeout, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if upgraded { return context.fireChannelRead(data) }
        switch unwrapInboundIn(data) {
        case .head:
            unanswered += 1
            receivingBody = true
            arm(bodyTimeout, context: context)
        case .body:
            if receivingBody { arm(bodyTimeout, context: context) }
        case .end:
            receivingBody = false
            // The server owes an answer now (or has given it already, ahead of the body's end).
            if unanswered > 0 { disarm() } else { arm(headTimeout, context: context) }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if upgraded { return context.write(data, promise: promise) }
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status == .switchingProtocols:
            upgraded = true
            disarm()
            context.write(data, promise: promise)
        case .end:
            unanswered = max(0, unanswered - 1)
            if unanswered == 0 {
                // The client's turn: the next head, or more of a body the answer came ahead of.
                arm(receivingBody ? bodyTimeout : headTimeout, context: context)
            }
            context.write(data, promise: promise)
        case .head, .body:
            context.write(data, promise: promise)
        }
    }

    private func arm(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        timer?.cancel()
        generation &+= 1
        let armed = generation
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, self.generation == armed, self.timer != nil else { return }
            self.timer = nil
            context.close(promise: nil)
        }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
        generation &+= 1
    }
}
