import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// A child channel as `Inner` sets it up, plus a ``MalformedRequestHandler`` at the end of its pipeline.
struct GuardedChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            try channel.pipeline.syncOperations.addHandler(MalformedRequestHandler(logger: logger))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Answers a malformed *first* request of a connection with a 400 problem and closes the connection.
///
/// Until the first request head has been read, the connection's pipeline holds only NIO's HTTP/1 parser and the
/// WebSocket upgrade check, which decides what comes next; Hummingbird answers a malformed request only once its
/// HTTP handlers are there, so a connection whose first request did not parse was left open with no answer. Once a
/// request head has been read, this handler leaves the pipeline and Hummingbird's own handling applies.
final class MalformedRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundOut = HTTPServerResponsePart

    let logger: Logger
    private var answered = false

    init(logger: Logger) { self.logger = logger }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError, !answered else {
            context.fireErrorCaught(error)
            return
        }
        answered = true
        logger.debug("malformed first request", metadata: ["error": "\(error)"])
        let (head, body) = ProblemError(.badRequest, "the request is not valid HTTP/1.1 (\(error))").http1Answer(adding: ["connection": "close"])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
