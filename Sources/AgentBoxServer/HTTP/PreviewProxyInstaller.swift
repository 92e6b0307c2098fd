import Logging
import NIOCore
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Puts a ``PreviewProxyHandler`` just before Hummingbird's conversion of NIO's HTTP/1 parts into HTTPTypes, then
/// leaves the pipeline. Hummingbird adds its extra handlers after that conversion; the proxy works on the parts as
/// NIO parsed them, so that a proxied request is not converted to HTTPTypes and back on either side.
final class PreviewProxyInstaller: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart

    let proxy: PreviewProxyHandler

    init(_ proxy: PreviewProxyHandler) { self.proxy = proxy }

    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        do {
            let codec = try pipeline.context(handlerType: HTTP1ToHTTPServerCodec.self)
            try pipeline.addHandler(proxy, position: .before(codec.handler))
        } catch {
            proxy.logger.error("cannot install the preview proxy", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
        pipeline.removeHandler(context: context, promise: nil)
    }
}
