import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTPTypes

/// Answers `Expect: 100-continue` with an interim `100 Continue`, so that clients that ask before sending a large
/// body (curl does for bodies over 1 MiB) send it at once instead of waiting a second for a reply that neither
/// Hummingbird nor NIO sends by themselves.
///
/// The answer goes out as soon as the request's head arrives; authorization and validation happen, as for every
/// request, when the route runs.
final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    func handlerAdded(context: ChannelHandlerContext) {
        // Reads of up to 1 MiB instead of NIO's default 64 KiB, so that a large body arrives in fewer, larger
        // chunks (the allocator still starts small and grows only for connections that fill their buffers).
        context.channel.setOption(
            ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 1 << 20)
        ).whenComplete { _ in }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data),
            let expectation = head.headerFields[.expect], expectation.lowercased() == "100-continue"
        {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }
}
