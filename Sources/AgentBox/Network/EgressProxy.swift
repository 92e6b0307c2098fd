import AgentBoxAPI
import CAgentBoxSandbox
import CoreMetrics
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The only way out of a workspace: an HTTP proxy that listens on `127.0.0.1:3128` *inside* the workspace's network
/// namespace and connects out from the host's, for the targets the workspace's egress policy allows.
///
/// It speaks `CONNECT host:port` (HTTPS and any other TCP) and absolute-form HTTP (`GET http://host/path`, sent on
/// as one request with `Connection: close`, its answer marked `Connection: close` for the client too). The policy decides on the name; then every address the name resolves to
/// is judged by the server's ``EgressAddressGuard`` right before it is connected to, so no policy reaches the host or
/// a private network by a name, a numeric form or DNS that changes its answer. A refusal is a `403` to the client and
/// an `egressDenied` event. The listening socket is made by a short-lived thread that joins the namespace; after that
/// it is served by NIO's shared event loops like any other, so no thread or process per workspace is needed.
final class EgressProxy: Sendable {
    /// The port inside every workspace.
    static let port = 3128
    /// The name by which a workspace reaches the host's loopback through the proxy (with an allow-list entry naming
    /// it exactly): the one way to the host. It is never looked up: it means 127.0.0.1 of the host.
    public static let hostAlias = "host.agentbox.internal"

    /// The environment that points programs at the proxy (curl reads the lower-case names, most others either).
    static let environment: [String: String] = {
        let url = "http://127.0.0.1:\(port)"
        let noProxy = "localhost,127.0.0.1,::1"
        return [
            "HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url,
            "NO_PROXY": noProxy, "no_proxy": noProxy, "NODE_USE_ENV_PROXY": "1",
        ]
    }()

    private let channel: any Channel
    /// The listening socket's descriptor (the channel's).
    private let socket: Int32

    private init(channel: any Channel, socket: Int32) {
        self.channel = channel
        self.socket = socket
    }

    /// Starts the proxy in the network namespace `fd` (closed by the caller). Its decisions are counted in `metrics`
    /// and the bytes it relays through `door`.
    static func start(
        namespace fd: Int32, rules: EgressRuleSource, addresses: EgressAddressGuard, metrics: AgentBoxMetrics, gateway: LLMGateway? = nil,
        workspace: WorkspaceKey? = nil, door: TrafficDoor, onDenied: @escaping @Sendable (EgressDeniedEvent) -> Void
    ) async throws -> EgressProxy {
        let socket = ab_listen_in_network_namespace(fd, Int32(port))
        guard socket >= 0 else {
            throw AgentBoxError(.internalError, "cannot listen for the egress proxy in the workspace: \(String(cString: strerror(-socket)))")
        }
        return try await start(
            listening: socket, rules: rules, addresses: addresses, metrics: metrics, gateway: gateway, workspace: workspace, door: door,
            onDenied: onDenied)
    }

    /// Starts the proxy on `socket`, already listening on ``port`` in the workspace's network namespace (owned from
    /// here on: closed when it fails): the socket the workspace's last boot kept with its parked sandbox, whose queued
    /// connections the caller dropped (``dropQueuedConnections(_:)``).
    static func start(
        listening socket: Int32, rules: EgressRuleSource, addresses: EgressAddressGuard, metrics: AgentBoxMetrics, gateway: LLMGateway? = nil,
        workspace: WorkspaceKey? = nil, door: TrafficDoor, onDenied: @escaping @Sendable (EgressDeniedEvent) -> Void
    ) async throws -> EgressProxy {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.backlog, value: 128)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // The workspace is this connection's peer: its reads are bytes out of the workspace, its writes bytes in.
                    try channel.pipeline.syncOperations.addHandler(TrafficCountingHandler(door: door))
                    let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
                    try channel.pipeline.syncOperations.addHandler(decoder)
                    try channel.pipeline.syncOperations.addHandler(
                        EgressRequestHandler(
                            rules: rules, addresses: addresses, metrics: metrics, gateway: gateway, workspace: workspace, decoder: decoder,
                            onDenied: onDenied))
                }
            }
        do {
            return EgressProxy(channel: try await bootstrap.withBoundSocket(socket).get(), socket: socket)
        } catch {
            close(socket)
            throw error
        }
    }

    /// Stops listening. The socket is shut down before it is closed: a process the server is forking at that moment
    /// holds a copy of the descriptor until its exec, which would keep the port listening, and a parked sandbox's next
    /// boot (the same network namespace) could not listen on it again. Shut down, the port stays bound but not
    /// listening, which a new socket with SO_REUSEADDR may bind.
    func stop() async {
        let (channel, socket) = (self.channel, self.socket)
        try? await channel.eventLoop.submit {
            // On the loop that closes the channel: while it is active, the descriptor is still the channel's.
            if channel.isActive { _ = Glibc.shutdown(socket, Int32(SHUT_RDWR)) }
        }.get()
        try? await channel.close()
    }

    /// Closes (resets) every connection queued on the listening `socket` and not accepted yet, without reading it. A
    /// socket kept across a sleep is still listening between the proxy's stop and the park, which kills the
    /// workspace's processes: a connection made then is queued, with what it sent, and must not be served by the next
    /// boot. Returns how many were dropped (0 when it failed).
    @discardableResult
    static func dropQueuedConnections(_ socket: Int32) -> Int {
        max(0, Int(ab_drop_queued_connections(socket)))
    }

    /// Stops accepting and returns a new descriptor of the listening socket, still listening (the caller owns it), for
    /// the next boot of the same sandbox (parked meanwhile: nothing in its namespace connects); `nil` when it cannot
    /// be had (then the proxy is stopped as ``stop()`` does).
    func stopKeepingSocket() async -> Int32? {
        let (channel, socket) = (self.channel, self.socket)
        let copy = try? await channel.eventLoop.submit { () -> Int32 in
            // On the loop that closes the channel: while it is active, the descriptor is still the channel's.
            channel.isActive ? fcntl(socket, F_DUPFD_CLOEXEC, 0) : -1
        }.get()
        guard let copy, copy >= 0 else {
            await stop()
            return nil
        }
        try? await channel.close()
        return copy
    }
}

/// Reads the first request head of a proxy connection, decides, and either refuses it or turns the connection
/// into a byte relay to the target.
private final class EgressRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    let rules: EgressRuleSource
    let addresses: EgressAddressGuard
    let metrics: AgentBoxMetrics
    let gateway: LLMGateway?
    /// The workspace this proxy serves: a gateway call with another workspace's key is refused here.
    let workspace: WorkspaceKey?
    let decoder: ByteToMessageHandler<HTTPRequestDecoder>
    let onDenied: @Sendable (EgressDeniedEvent) -> Void
    /// The request being handled, once its head allowed it; its body (absolute-form only) gathers until its end.
    private var target: EgressTarget?
    private var body = ByteBuffer()
    private var done = false
    /// The most body an absolute-form request may carry (it is held until the request ends; HTTPS goes by CONNECT).
    static let maxForwardedBody = 8 << 20

    init(
        rules: EgressRuleSource, addresses: EgressAddressGuard, metrics: AgentBoxMetrics, gateway: LLMGateway?, workspace: WorkspaceKey?,
        decoder: ByteToMessageHandler<HTTPRequestDecoder>, onDenied: @escaping @Sendable (EgressDeniedEvent) -> Void
    ) {
        self.gateway = gateway
        self.workspace = workspace
        self.rules = rules
        self.addresses = addresses
        self.metrics = metrics
        self.decoder = decoder
        self.onDenied = onDenied
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }  // one request per connection; what follows it is ignored
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard let target = EgressTarget(head) else {
                return refuse(context, status: "400 Bad Request", message: "the egress proxy takes CONNECT host:port or absolute http:// URLs")
            }
            // The host alias is the host's loopback: only an entry naming it exactly opens it, never `allow` or `*`.
            let alias = target.host == EgressProxy.hostAlias
            // The LLM gateway on the server's own port is open to every workspace, for its /llm/ paths only (plain
            // HTTP, so that the path is seen; the gateway checks the workspace's key).
            let gatewayCall = alias && gateway?.port == target.port && target.path.map(EgressTarget.isGatewayPath) == true
            let rules = rules.rules
            let allowed = gatewayCall || (alias ? rules.namesExactly(host: target.host, port: target.port) : rules.allows(host: target.host, port: target.port))
            guard allowed else {
                let detail = alias ? "\(EgressProxy.hostAlias) needs an allow-list entry naming it exactly" : nil
                metrics.egressDeniedByPolicy.increment()
                onDenied(EgressDeniedEvent(host: target.host, port: target.port, reason: "policy", detail: detail))
                return refuse(
                    context, status: "403 Forbidden",
                    message: "the workspace's egress policy does not allow \(target.host):\(target.port)" + (detail.map { " (\($0))" } ?? ""))
            }
            // A gateway key names its workspace: one that came to this workspace from another (a log, a shared file)
            // does not spend the other's budget from here.
            if gatewayCall, let workspace, LLMGateway.claimedWorkspaces(in: head.headers).contains(where: { $0 != workspace }) {
                return refuse(context, status: "403 Forbidden", message: "this LLM gateway key belongs to another workspace")
            }
            self.target = target
        case .body(var part):
            guard target != nil else { return }
            guard body.readableBytes + part.readableBytes <= Self.maxForwardedBody else {
                return refuse(context, status: "413 Content Too Large", message: "a plain-HTTP request body through the proxy is limited to 8 MiB")
            }
            body.writeBuffer(&part)
        case .end:
            guard let target else { return }
            done = true
            connect(context, target)
        }
    }

    /// The request is complete: connect to the target and turn the connection into a relay.
    private func connect(_ context: ChannelHandlerContext, _ target: EgressTarget) {
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        let (clientSide, targetSide) = GlueHandler.pair()
        var first: ByteBuffer?
        do {
            switch target.kind {
            case .tunnel:
                // The parser stops after a CONNECT: what the client sent after it (a TLS hello, say) is forwarded
                // as bytes to the glue, which holds it until the target is connected.
                try context.pipeline.syncOperations.addHandler(clientSide, position: .after(self))
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                context.pipeline.syncOperations.removeHandler(decoder, promise: nil)
            case .forward(let head):
                // The request goes out whole; from then on only the answer flows, through the glue in front.
                clientSide.relaysInbound = false
                try context.pipeline.syncOperations.addHandler(clientSide, position: .first)
                var request = ByteBuffer(string: head + "Content-Length: \(body.readableBytes)\r\n\r\n")
                request.writeBuffer(&body)
                first = request
            }
        } catch {
            return refuse(context, status: "500 Internal Server Error", message: "\(error)")
        }
        let channel = context.channel
        let loop = context.eventLoop
        let addresses = addresses
        let onDenied = onDenied
        let metrics = metrics
        let firstBytes = first
        NIOThreadPool.singleton.runIfActive(eventLoop: loop) { () throws -> [SocketAddress] in
            // The alias means the host's loopback, with no lookup; the policy allowed it by its exact entry.
            if target.host == EgressProxy.hostAlias { return [try SocketAddress(ipAddress: "127.0.0.1", port: target.port)] }
            return try EgressProxy.resolve(host: target.host, port: target.port)
        }.flatMapThrowing { resolved -> [SocketAddress] in
            if target.host == EgressProxy.hostAlias {
                metrics.egressAllowed.increment()
                return resolved
            }
            // Each address the connection may go to is judged, not the name: these very values are connected to.
            var permitted: [SocketAddress] = []
            var refusals: [String] = []
            for address in resolved {
                guard let ip = IPAddress(address) else { continue }
                if let why = addresses.refusal(for: ip) { refusals.append("\(ip) is \(why)") } else { permitted.append(address) }
            }
            guard permitted.isEmpty else {
                metrics.egressAllowed.increment()
                return permitted
            }
            let detail = refusals.first ?? "\(target.host) resolves to no IP address"
            metrics.egressDeniedByAddress.increment()
            onDenied(EgressDeniedEvent(host: target.host, port: target.port, reason: "address", detail: detail))
            throw EgressRefusal.address(detail)
        }.flatMap { candidates in
            EgressProxy.connect(to: candidates.prefix(EgressProxy.maxAddressesTried), on: loop)
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let outbound):
                do {
                    // Reading starts only now, with the relay in place (the bootstrap leaves auto-read off). A
                    // forwarded request's answer tells the client that the connection ends with it.
                    if firstBytes != nil { try outbound.pipeline.syncOperations.addHandler(ResponseCloseMarker()) }
                    try outbound.pipeline.syncOperations.addHandler(targetSide)
                } catch {
                    outbound.close(promise: nil)
                    channel.close(promise: nil)
                    return
                }
                if let firstBytes {
                    outbound.writeAndFlush(firstBytes, promise: nil)
                } else {
                    channel.writeAndFlush(ByteBuffer(string: "HTTP/1.1 200 Connection established\r\n\r\n"), promise: nil)
                }
                clientSide.start()
                outbound.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
                channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
            case .failure(let error):
                let (status, message): (String, String) =
                    if case EgressRefusal.address(let detail) = error {
                        ("403 Forbidden", "\(target.host):\(target.port) is refused: \(detail); the server's admin may allow a range with serve --egress-allow-private")
                    } else {
                        ("502 Bad Gateway", "cannot reach \(target.host):\(target.port): \(error)")
                    }
                let body = message + "\n"
                channel.writeAndFlush(
                    ByteBuffer(string: "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
                ).assumeIsolated().whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }

    private func refuse(_ context: ChannelHandlerContext, status: String, message: String) {
        done = true
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        let body = message + "\n"
        let text = "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text))).assumeIsolated().whenComplete { _ in channel.close(promise: nil) }
    }
}

private enum EgressRefusal: Error {
    /// Every address of the target is one the ``EgressAddressGuard`` refuses; why, for the first.
    case address(String)
}

extension EgressProxy {
    /// Every address `host` resolves to in the host's network, in the resolver's order: one `getaddrinfo`, which also
    /// turns numeric forms such as `2130706433` or `0x7f.1` into the address they mean. The proxy judges and connects
    /// to exactly these, so there is no second lookup that could answer differently.
    static func resolve(host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw AgentBoxError(.badGateway, "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            entry = current.pointee.ai_next
            guard let raw = current.pointee.ai_addr else { continue }
            switch current.pointee.ai_family {
            case AF_INET: addresses.append(raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: host) })
            case AF_INET6: addresses.append(raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: host) })
            default: continue
            }
        }
        return addresses
    }

    /// The most permitted addresses of one name that the proxy tries, each for up to 10 s.
    static let maxAddressesTried = 8

    /// Connects to the first of `candidates` (already judged) that accepts, in order. The channel does not read until
    /// the caller turns auto-read on.
    static func connect(to candidates: ArraySlice<SocketAddress>, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        guard let first = candidates.first else {
            return loop.makeFailedFuture(AgentBoxError(.badGateway, "no address to connect to"))
        }
        return ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelOption(ChannelOptions.autoRead, value: false)
            .connect(to: first)
            .flatMapError { error in
                let rest = candidates.dropFirst()
                return rest.isEmpty ? loop.makeFailedFuture(error) : connect(to: rest, on: loop)
            }
    }
}

/// Where a proxy request goes, and what to send first.
struct EgressTarget: Sendable {
    enum Kind: Sendable {
        /// CONNECT: answer 200, then relay bytes.
        case tunnel
        /// Absolute-form HTTP: send this head (origin-form, `Connection: close`, its length and blank line still to
        /// come) and the body to the target, then relay the answer.
        case forward(String)
    }

    var host: String
    var port: Int
    var kind: Kind
    /// The path of an absolute-form request (with its query).
    var path: String?

    /// Whether `path` is one of the LLM gateway's: `/llm/`, then plain segments (no dot segments, no escapes), so
    /// that the server cannot read it as any other route.
    static func isGatewayPath(_ path: String) -> Bool {
        let bare = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? path
        guard bare.hasPrefix("/llm/"), bare.utf8.count <= 256 else { return false }
        return bare.dropFirst().split(separator: "/", omittingEmptySubsequences: false).allSatisfy { segment in
            !segment.isEmpty && segment != "." && segment != ".."
                && segment.utf8.allSatisfy { $0.isASCIIAlphanumeric || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
        }
    }

    init?(_ head: HTTPRequestHead) {
        if head.method == .CONNECT {
            guard let (host, port) = Self.split(authority: head.uri, defaultPort: nil) else { return nil }
            (self.host, self.port, self.kind) = (host, port, .tunnel)
            return
        }
        guard head.uri.lowercased().hasPrefix("http://") else { return nil }
        let afterScheme = head.uri.dropFirst("http://".count)
        let slash = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let authority = String(afterScheme[..<slash])
        guard !authority.contains("@"), let (host, port) = Self.split(authority: authority, defaultPort: 80) else { return nil }
        var target = String(afterScheme[slash...])
        if target.isEmpty { target = "/" } else if target.hasPrefix("?") { target = "/" + target }
        var lines = "\(head.method.rawValue) \(target) HTTP/1.1\r\n"
        let dropped: Set<String> = [
            "proxy-connection", "proxy-authorization", "connection", "keep-alive", "content-length", "transfer-encoding", "te", "trailer",
        ]
        var hasHost = false
        for (name, value) in head.headers where !dropped.contains(name.lowercased()) {
            guard !value.contains("\r"), !value.contains("\n") else { return nil }
            if name.lowercased() == "host" { hasHost = true }
            lines += "\(name): \(value)\r\n"
        }
        if !hasHost { lines += "Host: \(authority)\r\n" }
        lines += "Connection: close\r\n"  // the body's length and the blank line follow, once the body is in
        (self.host, self.port, self.kind, self.path) = (host, port, .forward(lines), target)
    }

    /// `host:port`, `[v6]:port`, or a bare host when there is a default port.
    static func split(authority: String, defaultPort: Int?) -> (String, Int)? {
        var host = Substring(authority)
        var port = defaultPort
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if rest.hasPrefix(":") { port = Int(rest.dropFirst()) } else if !rest.isEmpty { return nil }
        } else if let colon = host.lastIndex(of: ":") {
            port = Int(host[host.index(after: colon)...])
            host = host[..<colon]
        }
        guard let port, (1...65535).contains(port), !host.isEmpty, host.count <= 253,
            host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" || $0 == "_" })
        else { return nil }
        return (host.lowercased(), port)
    }
}

/// One half of a byte relay between two channels on one event loop, with backpressure: a side reads only while its
/// partner can write. The client's half holds what arrives before its partner is connected (reads are off then, so
/// that is bounded by one read).
final class GlueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var held: [ByteBuffer] = []
    private var started = false
    /// `false` for a client whose one request has gone out whole: its later bytes are passed on (and ignored by the
    /// request handler behind), not relayed.
    var relaysInbound = true

    static func pair() -> (GlueHandler, GlueHandler) {
        let first = GlueHandler(), second = GlueHandler()
        first.partner = second
        second.partner = first
        second.started = true
        return (first, second)
    }

    /// Starts relaying what this side holds and receives.
    func start() {
        started = true
        for buffer in held { partner?.partnerWrite(buffer) }
        held.removeAll()
        partner?.partnerFlush()
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    private func partnerWrite(_ buffer: ByteBuffer) { context?.write(wrapOutboundOut(buffer), promise: nil) }
    private func partnerFlush() { context?.flush() }
    private func partnerWriteEOF() { context?.close(mode: .output, promise: nil) }
    private func partnerCloseFully() { context?.close(promise: nil) }
    private var partnerIsWritable: Bool { context?.channel.isWritable ?? false }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard relaysInbound else { return context.fireChannelRead(data) }
        let buffer = unwrapInboundIn(data)
        if started { partner?.partnerWrite(buffer) } else { held.append(buffer) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if started, relaysInbound { partner?.partnerFlush() }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerCloseFully()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.partnerWriteEOF()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if partner?.partnerIsWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

extension UInt8 {
    fileprivate var isASCIIAlphanumeric: Bool { (0x30...0x39).contains(self) || (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self) }
}
