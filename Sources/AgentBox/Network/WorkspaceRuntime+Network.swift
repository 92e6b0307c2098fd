import AgentBoxAPI
import AgentBoxSandbox
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

extension WorkspaceRuntime {
    /// The largest response body a fetch returns (it is buffered and base64-encoded); larger ones fail with 502.
    public static let maxFetchBodyBytes = 16 << 20

    /// The workspace's network foothold; the workspace must be running (the caller holds an activity).
    func network() async throws -> WorkspaceNetwork {
        if let foothold = networkState.foothold { return try await foothold.value }
        guard let sandbox else { throw AgentBoxError(.conflict, "workspace '\(key)' is not running") }
        let namespace = try sandbox.openNetworkNamespace()
        let task = Task { try await WorkspaceNetwork.make(namespace: namespace) }
        networkState.foothold = task
        do {
            return try await task.value
        } catch {
            if networkState.foothold == task { networkState.foothold = nil }
            throw error
        }
    }

    /// The event loops whose sockets live in the workspace's network (for clients other than HTTP, such as a
    /// WebSocket). The workspace must be awake: the caller holds an activity.
    public func networkEventLoopGroup() async throws -> any EventLoopGroup {
        try await network().group
    }

    /// Starts the workspace's egress proxy in its network namespace, enforcing `network.egress`.
    func startEgressProxy(_ sandbox: any Sandbox) async throws {
        // The socket its last boot kept with the sandbox (parked since), else a new one in its namespace.
        let kept = sandbox.takeKeptListener()
        var namespace: Int32?
        if kept == nil {
            guard let opened = try sandbox.openNetworkNamespace() else { return }
            namespace = opened
        }
        defer { namespace.map { _ = close($0) } }
        do { try refreshEgressRules() } catch {
            kept.map { _ = close($0) }
            throw error
        }
        let rules = egressRules
        // Refusals are published by one task owned by the network state, through a bounded queue.
        let onDenied = networkState.openDeniedChannel { [weak self] denied in await self?.publish(.egressDenied(denied)) }
        let door = traffic.door(in: metrics.egressBytesIn, out: metrics.egressBytesOut)
        do {
            if let kept {
                // What a process of the last boot sent between the proxy's stop and the park is not served now.
                let dropped = EgressProxy.dropQueuedConnections(kept)
                if dropped > 0 { logger.debug("dropped connections queued on the egress proxy while asleep", metadata: ["count": "\(dropped)"]) }
                networkState.proxyStarted(
                    try await EgressProxy.start(
                        listening: kept, rules: rules, addresses: egressAddresses, metrics: metrics, gateway: configuration.llmGateway,
                        workspace: key, door: door, onDenied: onDenied))
            } else if let namespace {
                networkState.proxyStarted(
                    try await EgressProxy.start(
                        namespace: namespace, rules: rules, addresses: egressAddresses, metrics: metrics, gateway: configuration.llmGateway,
                        workspace: key, door: door, onDenied: onDenied))
            }
        } catch {
            await networkState.closeDeniedChannel()?.value
            throw error
        }
    }

    /// Shuts the awake workspace's network down: the foothold, then the egress proxy (its listening socket kept with
    /// `sandbox` when given), then the publisher of its refusals once it has published what is queued.
    func shutDownNetwork(keepingListenerIn sandbox: (any Sandbox)? = nil) async {
        if let task = networkState.foothold {
            networkState.foothold = nil
            if let network = try? await task.value { await network.shutdown() }
        }
        if let proxy = networkState.takeProxy() {
            // A sleep keeps the listening socket with a sandbox that may park, for its next boot.
            if let sandbox {
                if let socket = await proxy.stopKeepingSocket() { sandbox.keepListener(socket) }
            } else {
                await proxy.stop()
            }
        }
        await networkState.closeDeniedChannel()?.value
    }

    /// Whether the egress proxy runs (its variables go into every process's environment).
    var hasEgressProxy: Bool { networkState.egressProxy != nil }

    /// Sends one HTTP request to `127.0.0.1:{port}` inside the workspace and returns the whole answer. Boots the
    /// workspace; waits (bounded by ``portWaitLimit``) for the port to accept.
    public func fetch(_ request: FetchRequest) async throws -> FetchResponse {
        try Self.validate(port: request.port)
        guard request.path.hasPrefix("/"), !request.path.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F }) else {
            throw AgentBoxError(.invalidArgument, "path must start with '/' and hold no spaces or control characters")
        }
        let method = request.method ?? "GET"
        guard !method.isEmpty, method.utf8.allSatisfy({ Self.isTokenCharacter($0) }) else {
            throw AgentBoxError(.invalidArgument, "method '\(method)' is not an HTTP method")
        }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: request.path)
        for (name, value) in request.headers ?? [:] {
            guard !name.isEmpty, name.utf8.allSatisfy({ Self.isTokenCharacter($0) }),
                !value.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D || $0 == 0 })
            else { throw AgentBoxError(.invalidArgument, "header '\(name)' is not a valid HTTP header") }
            // Framing is this server's to decide: the body below is sent with its own Content-Length.
            if ["content-length", "transfer-encoding", "connection"].contains(name.lowercased()) { continue }
            head.headers.add(name: name, value: value)
        }
        if !head.headers.contains(name: "host") { head.headers.add(name: "host", value: "127.0.0.1:\(request.port)") }
        head.headers.add(name: "connection", value: "close")
        var body: ByteBuffer?
        if let encoded = request.body {
            guard let data = Data(base64Encoded: encoded) else { throw AgentBoxError(.invalidArgument, "body must be base64") }
            body = ByteBuffer(bytes: data)
        }
        head.headers.add(name: "content-length", value: String(body?.readableBytes ?? 0))
        let prepared = head, payload = body
        return try await withActivity {
            let network = try await self.network()
            let socket = try await self.connectedSocket(port: request.port, door: self.traffic.door(in: nil, out: nil))
            let answer = try await WorkspaceHTTPExchange.send(
                prepared, body: payload, socket: socket, group: network.group, timeout: .seconds(60), maxBodyBytes: Self.maxFetchBodyBytes,
                describing: request.port)
            var headers: [String: String] = [:]
            for header in answer.head.headers {
                let name = header.name.lowercased()
                headers[name] = headers[name].map { "\($0), \(header.value)" } ?? header.value
            }
            return FetchResponse(
                status: Int(answer.head.status.code), headers: headers, body: Data(answer.body.readableBytesView).base64EncodedString())
        }
    }

    /// Runs `attempt` again while it fails because nothing accepts on `port` yet (a server still starting, or a
    /// workspace just booted), backing off from 5 ms to 200 ms, until the configuration's `portWaitLimit`: then 502.
    nonisolated func retryingWhileRefused<T>(port: Int, _ attempt: () async throws -> T) async throws -> T {
        let giveUp = ContinuousClock.now + configuration.portWaitLimit
        var pause: Duration = .milliseconds(5)
        while true {
            do {
                return try await attempt()
            } catch let error where WorkspaceNetwork.isRefused(error) {
                guard ContinuousClock.now + pause < giveUp else {
                    throw AgentBoxError(.badGateway, "nothing listens on port \(port) in workspace '\(key)'", underlyingError: error)
                }
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .milliseconds(200))
            }
        }
    }

    /// Whether `error` means that nothing listens on the port (yet).
    public static func isConnectionRefused(_ error: any Error) -> Bool { WorkspaceNetwork.isRefused(error) }

    static func validate(port: Int) throws {
        guard (1...65535).contains(port) else { throw AgentBoxError(.invalidArgument, "port must be 1...65535, not \(port)") }
    }

    /// RFC 9110 `tchar`.
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

extension WorkspaceRuntime {
    /// A TCP socket connected to `127.0.0.1:{port}` on the workspace's own loopback, for a proxy that drives it on an
    /// event loop of its own (the socket stays in the workspace's network whichever thread uses it). The caller owns
    /// the connection. The workspace must be awake (the caller holds an activity). While nothing accepts on the
    /// port, retries until the configuration's `portWaitLimit`, then throws `badGateway`.
    ///
    /// The bytes it carries are counted as the workspace's preview traffic (``previewDoor``).
    public nonisolated func connectedSocket(port: Int) async throws -> WorkspaceSocket {
        try await connectedSocket(port: port, door: previewDoor)
    }

    /// Where previews cross into the workspace: its ``traffic`` and the server's preview byte counters. A relay that
    /// does not go through ``connectedSocket(port:)`` (a WebSocket's messages) counts here itself.
    public nonisolated var previewDoor: TrafficDoor { traffic.door(in: metrics.previewBytesIn, out: metrics.previewBytesOut) }

    /// ``connectedSocket(port:)``, its bytes counted through `door`.
    nonisolated func connectedSocket(port: Int, door: TrafficDoor) async throws -> WorkspaceSocket {
        try Self.validate(port: port)
        let network = try await network()
        return try await retryingWhileRefused(port: port) {
            // Made on the loop whose thread joined the namespace; connecting on loopback does not block.
            let result = try await network.group.next().submit { () -> (fd: CInt, error: CInt) in
                let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
                guard fd >= 0 else { return (-1, errno) }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
                let status = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                if status == 0 { return (fd, 0) }
                let error = errno
                close(fd)
                return (-1, error)
            }.get()
            if result.fd >= 0 { return WorkspaceSocket(descriptor: result.fd, door: door) }
            if result.error == ECONNREFUSED { throw IOError(errnoCode: ECONNREFUSED, reason: "connect") }
            throw AgentBoxError(.badGateway, "cannot connect to port \(port) in workspace '\(key)': \(String(cString: strerror(result.error)))")
        }
    }
}
