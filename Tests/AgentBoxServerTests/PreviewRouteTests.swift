import AgentBox
import AgentBoxAPI
@testable import AgentBoxServer
import AgentBoxStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import NIOWebSocket
import Testing

/// The tests' HTTP and WebSocket echo server (Tests/Support/echo_server.py).
let echoServerScript = try! String(
    contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Support/echo_server.py"), encoding: .utf8)

@Suite("Preview routes", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct PreviewRouteTests {
    /// Creates `key`, starts the echo server on `port` inside it and makes a preview of that port.
    func serve(_ client: some TestClientProtocol, _ key: String, port: Int, body: String? = nil) async throws -> Preview {
        _ = try await client.execute(uri: "/v1/workspaces/\(key)", method: .put)
        try await startEcho(client, key, port: port)
        let response = try await client.execute(
            uri: "/v1/workspaces/\(key)/previews", method: .post, headers: json, body: ByteBuffer(string: body ?? #"{"port":\#(port)}"#))
        #expect(response.status == .created)
        return try decode(Preview.self, response)
    }

    func startEcho(_ client: some TestClientProtocol, _ key: String, port: Int) async throws {
        let write = try await client.execute(
            uri: "/v1/workspaces/\(key)/fs/file?path=/workspace/echo.py", method: .put, body: ByteBuffer(string: echoServerScript))
        #expect(write.status == .ok)
        let spawn = try await client.execute(
            uri: "/v1/workspaces/\(key)/processes", method: .post, headers: json,
            body: ByteBuffer(string: #"{"command":"python3","args":["/workspace/echo.py","\#(port)"]}"#))
        #expect(spawn.status == .created)
    }

    @Test func aPreviewProxiesHTTPAndWebSockets() async throws {
        try await withLiveServer { client, _ in
            let preview = try await serve(client, "site", port: 8300)
            #expect(preview.token.count == 32 && preview.token.allSatisfy { $0.isLowercase || $0.isNumber })
            #expect(preview.path == "/preview/\(preview.token)/" && preview.url?.hasSuffix(preview.path) == true)
            let base = "/preview/\(preview.token)"

            // Any method, the target and its query as sent, headers and body both ways, CORS opened.
            let get = try await client.execute(uri: "\(base)/a/b%20c?d=e", method: .get, headers: [HTTPField.Name("X-Test")!: "one"])
            #expect(get.status == .ok)
            #expect(String(buffer: get.body) == "GET /a/b%20c?d=e one ")
            #expect(get.headers[HTTPField.Name("X-Answer")!] == "yes")
            #expect(get.headers[.accessControlAllowOrigin] == "*")
            let payload = String(repeating: "x", count: 300_000)
            let post = try await client.execute(uri: "\(base)/upload", method: .post, body: ByteBuffer(string: payload))
            #expect(post.status == .created && String(buffer: post.body) == "POST /upload - " + payload)
            let head = try await client.execute(uri: "\(base)/", method: .head)
            #expect(head.status == .ok && head.body.readableBytes == 0)

            // A preflight is answered without the workspace; the preview's root is a directory; redirects stay inside.
            let preflight = try await client.execute(
                uri: "\(base)/api", method: .options,
                headers: [.origin: "http://elsewhere.example", .accessControlRequestMethod: "PUT", .accessControlRequestHeaders: "x-test"])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowMethods] == "PUT" && preflight.headers[.accessControlAllowHeaders] == "x-test")
            let bare = try await client.execute(uri: base + "?q=1", method: .get)
            #expect(bare.status == .permanentRedirect && bare.headers[.location] == base + "/?q=1")
            let redirect = try await client.execute(uri: "\(base)/redirect", method: .get)
            #expect(redirect.status == .found && redirect.headers[.location] == base + "/there")

            // A WebSocket upgrade reaches the server inside, with the offered subprotocol.
            let transcript = Transcript()
            var configuration = WebSocketClientConfiguration()
            configuration.additionalHeaders[.secWebSocketProtocol] = "vite-hmr"
            try await client.ws("\(base)/hmr?x=1", configuration: configuration) { inbound, outbound, _ in
                var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                if case .text(let greeting) = try await messages.next() { transcript.append(greeting + "|") }
                try await outbound.write(.text("hi"))
                if case .text(let echo) = try await messages.next() { transcript.append(echo + "|") }
                try await outbound.write(.binary(ByteBuffer(bytes: [0, 255, 7])))
                if case .binary(let bytes) = try await messages.next() { transcript.append("\(Array(bytes.readableBytesView))|") }
                try await outbound.close(.normalClosure, reason: nil)
            }
            #expect(transcript.text == "path /hmr?x=1 proto vite-hmr|echo:hi|[0, 255, 7]|", "\(transcript.text)")
        }
    }

    /// WebSockets are relayed as bytes after the `101` (PreviewByteRelay): at the preview's root too (the route's
    /// `/preview/:token/**` did not match it), what the server inside sent with its `101`, bursts in order, and a
    /// message larger than a socket buffer, intact.
    @Test func webSocketsAreRelayedAsBytesAtTheRootTooInOrderAndWhole() async throws {
        try await withLiveServer { client, _ in
            let preview = try await serve(client, "wsrelay", port: 8310)
            let transcript = Transcript()
            try await client.ws("/preview/\(preview.token)/", configuration: WebSocketClientConfiguration(maxFrameSize: 1 << 21)) { inbound, outbound, _ in
                var messages = inbound.messages(maxSize: 1 << 21).makeAsyncIterator()
                if case .text(let greeting) = try await messages.next() { transcript.append(greeting + "|") }
                for index in 0..<200 { try await outbound.write(.text("m\(index)")) }
                var inOrder = 0
                for index in 0..<200 {
                    if case .text(let text) = try await messages.next(), text == "echo:m\(index)" { inOrder += 1 }
                }
                transcript.append("\(inOrder)|")
                let large = ByteBuffer(repeating: 7, count: 1 << 20)
                try await outbound.write(.binary(large))
                if case .binary(let bytes) = try await messages.next() { transcript.append("\(bytes.readableBytes) \(bytes == large)|") }
                try await outbound.close(.normalClosure, reason: nil)
            }
            #expect(transcript.text == "path / proto None|200|1048576 true|", "\(transcript.text)")
        }
    }

    /// Sends `bytes` in one write on a new connection, then reads until `done` holds for what came, the server closes
    /// the connection or 10 s pass; off the cooperative pool.
    static func sendAndRead(_ port: Int, _ bytes: [UInt8], until done: @escaping @Sendable (String) -> Bool) async throws -> String {
        let raw = try RawConnection(port: port)
        defer { raw.close() }
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                _ = bytes.withUnsafeBufferPointer { send(raw.fd, $0.baseAddress, $0.count, 0) }
                var received: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                while !done(String(decoding: received, as: UTF8.self)) {
                    let count = recv(raw.fd, &buffer, buffer.count, 0)
                    guard count > 0 else { break }
                    received += buffer[..<count]
                }
                continuation.resume(returning: String(decoding: received, as: UTF8.self))
            }
        }
    }

    /// A client may send its first frame in the same write as its upgrade, before the `101`: the frame reaches the
    /// workspace's server once it has answered. (The frame went through the workspace connection's HTTP response
    /// parser, which took it for a request part: a fatal error that ended the whole server.)
    @Test func aFrameSentWithTheUpgradeIsRelayedAndTheServerLives() async throws {
        try await withLiveServer { client, _ in
            let port = try #require(client.port)
            let preview = try await serve(client, "early", port: 8311)
            let handshake = "Host: x\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            // A masked text frame "hello" (a zero mask leaves the payload as it is).
            let frame: [UInt8] = [0x81, 0x85, 0, 0, 0, 0] + Array("hello".utf8)
            let upgrade = "GET /preview/\(preview.token)/ws HTTP/1.1\r\n\(handshake)Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            let answer = try await Self.sendAndRead(port, Array(upgrade.utf8) + frame) { $0.contains("echo:hello") }
            #expect(answer.hasPrefix("HTTP/1.1 101") && answer.contains("path /ws") && answer.contains("echo:hello"), "\(answer.prefix(300))")
            // The internal marker, sent by a client with bytes behind it, is not the client's to send: the request is a
            // plain GET, and the bytes after it a malformed request, answered 400 after it.
            let marked = "GET /preview/\(preview.token)/ws HTTP/1.1\r\n\(handshake)\(PreviewRequestHead.webSocketMarker): websocket\r\n\r\n"
            let plain = try await Self.sendAndRead(port, Array(marked.utf8) + frame) { $0.contains("not valid HTTP") }
            #expect(plain.hasPrefix("HTTP/1.1 200") && plain.contains("GET /ws - ") && plain.contains("HTTP/1.1 400"), "\(plain.prefix(600))")
            // A preview request's chunked body that does not parse: a 400 from the proxy, and the connection closes.
            let broken = "POST /preview/\(preview.token)/up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
            let refused = try await Self.sendAndRead(port, Array(broken.utf8)) { _ in false }
            #expect(refused.hasPrefix("HTTP/1.1 400") && refused.contains("body is not valid HTTP"), "\(refused)")
            #expect(try await client.execute(uri: "/v1/health", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/preview/\(preview.token)/after", method: .get).status == .ok)
        }
    }

    /// A `101` the request did not ask for is a 502, and what the workspace's server sent after it is never taken for
    /// the next request's answer (it was, and the request before it had none).
    @Test func aSwitchOfProtocolsNobodyAskedForIs502AndDesyncsNothing() async throws {
        try await withLiveServer { client, _ in
            let port = try #require(client.port)
            let preview = try await serve(client, "switch", port: 8312)
            let base = "/preview/\(preview.token)"
            let pipelined = "GET \(base)/switch HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET \(base)/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let answer = try await Self.sendAndRead(port, Array(pipelined.utf8)) { $0.contains("GET /after - ") }
            // The status lines in order (a body ends without a line break, right before the next answer's).
            let statuses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
            #expect(statuses == ["502", "200", "200"], "\(answer)")
            #expect(answer.contains("switched protocols") && answer.contains("GET /after - ") && !answer.contains("SMUGGLED"), "\(answer)")
        }
    }

    /// `Expect: 100-continue`: a token that leads to a preview gets `100 Continue`, then the body goes and is answered;
    /// an unknown one gets its 404 at once, before any body.
    @Test func continueIsGivenOnlyForATokenThatLeadsSomewhere() async throws {
        try await withLiveServer { client, _ in
            let port = try #require(client.port)
            let preview = try await serve(client, "expect", port: 8314)
            let raw = try RawConnection(port: port)
            defer { raw.close() }
            let head = "POST /preview/\(preview.token)/up HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
            let answer = await raw.exchangeOffThePool(head, then: .milliseconds(300), "hi")
            #expect(answer.hasPrefix("HTTP/1.1 100 Continue") && answer.contains("HTTP/1.1 201") && answer.contains("POST /up - hi"), "\(answer)")
            let unknown = try RawConnection(port: port)
            defer { unknown.close() }
            let refused = await unknown.exchangeOffThePool(
                "POST /preview/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/up HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
            // Without a `100`, the client may or may not send its body: the connection closes after the answer.
            #expect(refused.hasPrefix("HTTP/1.1 404") && !refused.contains("100 Continue") && refused.lowercased().contains("connection: close"), "\(refused)")
        }
    }

    /// A request the parser refuses, pipelined behind a preview request, is answered after that request's answer (the
    /// routes' 400 went out first, and a client took it for its first request's answer).
    @Test func aMalformedRequestBehindAPreviewIsAnsweredAfterIt() async throws {
        try await withLiveServer { client, _ in
            let port = try #require(client.port)
            let preview = try await serve(client, "malformed", port: 8315)
            let pipelined = "GET /preview/\(preview.token)/slow/0.5 HTTP/1.1\r\nHost: x\r\n\r\nNOT-HTTP\r\n\r\n"
            let answer = try await Self.sendAndRead(port, Array(pipelined.utf8)) { $0.contains("not valid HTTP") }
            let statuses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(4)) }.filter { $0.hasSuffix(" ") }
            #expect(statuses == ["200 ", "400 "] && answer.contains("GET /slow/0.5 - "), "\(answer)")
            #expect(try await client.execute(uri: "/v1/health", method: .get).status == .ok)
        }
    }

    /// Cookies a workspace sets stay under its preview's path, and the client's AgentBox token is not sent in.
    @Test func cookiesStayWithTheirPreviewAndTokensStayOut() async throws {
        try await withLiveServer { client, _ in
            let preview = try await serve(client, "cookies", port: 8313)
            let base = "/preview/\(preview.token)"
            let cookies = try await client.execute(uri: "\(base)/cookie", method: .get)
            #expect(cookies.headers[values: .setCookie] == ["a=1; Path=\(base)/; HttpOnly", "b=2; Path=\(base)/v1", "c=3"])
            let headers = try await client.execute(
                uri: "\(base)/headers", method: .get, headers: [.authorization: "Bearer abx_0123456789abcdef", .cookie: "k=v"])
            let seen = String(buffer: headers.body)
            #expect(!seen.lowercased().contains("authorization") && !seen.contains("abx_") && seen.contains("k=v"), "\(seen)")
            let own = try await client.execute(uri: "\(base)/headers", method: .get, headers: [.authorization: "Basic dXNlcjpwdw=="])
            #expect(String(buffer: own.body).contains("Basic dXNlcjpwdw=="))
        }
    }

    @Test func unknownExpiredAndRevokedTokensAre404AndBadInputIs400() async throws {
        try await withLiveServer { client, manager in
            let preview = try await serve(client, "tok", port: 8301)
            #expect(try await client.execute(uri: "/preview/\(preview.token)/", method: .get).status == .ok)
            for unknown in ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "short", "UPPERCASEUPPERCASEUPPERCASEUPPER", "..%2F..%2Fv1"] {
                let response = try await client.execute(uri: "/preview/\(unknown)/", method: .get)
                #expect(response.status == .notFound, "\(unknown)")
                #expect(response.headers[.contentType] == "application/problem+json")
            }
            let list = try decode(PreviewList.self, try await client.execute(uri: "/v1/workspaces/tok/previews", method: .get))
            #expect(list.items.map(\.id) == [preview.id] && list.items[0].port == 8301)
            #expect(!String(buffer: try await client.execute(uri: "/v1/workspaces/tok/previews", method: .get).body).contains(preview.token), "listed by id only")
            // The store holds the token's hash, never the token.
            let databasePath = SQLiteStore.databasePath(in: manager.configuration.dataDirectory)
            let database = try Data(contentsOf: URL(fileURLWithPath: databasePath))
                + ((try? Data(contentsOf: URL(fileURLWithPath: databasePath + "-wal"))) ?? Data())
            #expect(database.range(of: Data(preview.token.utf8)) == nil, "the token is not in the store")
            #expect(database.range(of: Data(PreviewRecord.hash(token: preview.token).utf8)) != nil, "its hash is")
            // A second preview revoked by its id.
            let second = try decode(
                Preview.self,
                try await client.execute(uri: "/v1/workspaces/tok/previews", method: .post, headers: json, body: ByteBuffer(string: #"{"port":8301}"#)))
            #expect(try await client.execute(uri: "/v1/workspaces/tok/previews/\(second.id)", method: .delete).status == .noContent)
            #expect(try await client.execute(uri: "/preview/\(second.token)/", method: .get).status == .notFound)

            // Another workspace cannot revoke it; its own can, and then it is gone.
            _ = try await client.execute(uri: "/v1/workspaces/other", method: .put)
            #expect(try await client.execute(uri: "/v1/workspaces/other/previews/\(preview.token)", method: .delete).status == .notFound)
            #expect(try await client.execute(uri: "/v1/workspaces/tok/previews/\(preview.token)", method: .delete).status == .noContent)
            #expect(try await client.execute(uri: "/preview/\(preview.token)/", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/v1/workspaces/tok/previews/\(preview.token)", method: .delete).status == .notFound)

            // Expiry: a three-second preview works (its first request boots nothing but may wait on a loaded machine), then answers 404.
            let short = try decode(
                Preview.self,
                try await client.execute(
                    uri: "/v1/workspaces/tok/previews", method: .post, headers: json, body: ByteBuffer(string: #"{"port":8301,"expiresInSeconds":3}"#)))
            #expect(try await client.execute(uri: "/preview/\(short.token)/", method: .get).status == .ok)
            try await Task.sleep(for: .milliseconds(3100))
            #expect(try await client.execute(uri: "/preview/\(short.token)/", method: .get).status == .notFound)
            #expect(try decode(PreviewList.self, try await client.execute(uri: "/v1/workspaces/tok/previews", method: .get)).items.isEmpty)

            for (body, status) in [
                (#"{"port":0}"#, 400), (#"{"port":65536}"#, 400), (#"{"port":80,"expiresInSeconds":0}"#, 400),
                (#"{"port":80,"expiresInSeconds":86401}"#, 400), (#"{"port":"x"}"#, 400), ("{}", 400),
            ] {
                let response = try await client.execute(uri: "/v1/workspaces/tok/previews", method: .post, headers: json, body: ByteBuffer(string: body))
                #expect(response.status.code == status, "\(body): \(String(buffer: response.body))")
            }
            // A preview reaches its own workspace's port only: "empty" has nothing on 8301, whatever "tok" runs there.
            _ = try await client.execute(uri: "/v1/workspaces/empty", method: .put)
            let empty = try decode(
                Preview.self,
                try await client.execute(uri: "/v1/workspaces/empty/previews", method: .post, headers: json, body: ByteBuffer(string: #"{"port":8301}"#)))
            let other = try await client.execute(uri: "/preview/\(empty.token)/", method: .get)
            #expect(other.status == .badGateway, "\(String(buffer: other.body))")
            #expect(try await client.execute(uri: "/v1/workspaces/absent/previews", method: .post, headers: json, body: ByteBuffer(string: #"{"port":80}"#)).status == .notFound)
            #expect(try await client.execute(uri: "/v1/workspaces/tok/previews/nottoken", method: .delete).status == .notFound)
        }
    }

    /// The proxy's connection into the workspace closes once unused for `previewConnectionIdle` (it holds the workspace
    /// awake), while the client's keep-alive connection stays open; the next request on it connects again.
    @Test func anUnusedConnectionIntoTheWorkspaceCloses() async throws {
        try await withLiveServer(configure: { $0.previewConnectionIdle = .seconds(1) }) { client, _ in
            let preview = try await serve(client, "idle", port: 8303)
            #expect(try await client.execute(uri: "/preview/\(preview.token)/", method: .get).status == .ok)
            // The echo server's accepted connections (local port 8303 = 0x206F, established).
            func accepted() async throws -> Int {
                let exec = try await client.execute(
                    uri: "/v1/workspaces/idle/exec", method: .post, headers: json,
                    body: ByteBuffer(string: #"{"command":"awk '$2 ~ /:206F$/ && $4 == \"01\"' /proc/net/tcp | wc -l"}"#))
                return Int(try decode(ExecResult.self, exec).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            }
            func waitFor(_ count: Int) async throws -> Int {
                var seen = try await accepted()
                let began = ContinuousClock.now
                while seen != count, ContinuousClock.now - began < .seconds(10) {
                    try await Task.sleep(for: .milliseconds(100))
                    seen = try await accepted()
                }
                return seen
            }
            let raw = try RawConnection(port: try #require(client.port))
            defer { raw.close() }
            #expect(await raw.exchangeOffThePool("GET /preview/\(preview.token)/one HTTP/1.1\r\nHost: x\r\n\r\n").contains("GET /one - "))
            // Still used: the connection into the workspace is open right after the answer, then closes unused.
            #expect(try await accepted() >= 1)
            #expect(try await waitFor(0) == 0, "closed once unused")
            // The client's connection was kept: its next request is answered, on a new connection inside.
            #expect(await raw.exchangeOffThePool("GET /preview/\(preview.token)/two HTTP/1.1\r\nHost: x\r\n\r\n").contains("GET /two - "))
        }
    }

    /// The idle check never cuts an exchange under way, however many periods it takes: a slow answer, and an upload
    /// whose body comes long after its head.
    @Test func aSlowAnswerOrUploadIsNotCutByTheIdleCheck() async throws {
        try await withLiveServer(configure: { $0.previewConnectionIdle = .milliseconds(500) }) { client, _ in
            let preview = try await serve(client, "slow", port: 8304)
            #expect(try await client.execute(uri: "/preview/\(preview.token)/", method: .get).status == .ok)
            let raw = try RawConnection(port: try #require(client.port))
            defer { raw.close() }
            let answer = await raw.exchangeOffThePool("GET /preview/\(preview.token)/slow/2.5 HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 200") && answer.contains("GET /slow/2.5 - "), "\(answer)")
            let upload = await raw.exchangeOffThePool(
                "POST /preview/\(preview.token)/up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                then: .milliseconds(2500), "5\r\nhello\r\n0\r\n\r\n")
            #expect(upload.hasPrefix("HTTP/1.1 201") && upload.contains("POST /up - hello"), "\(upload)")
        }
    }

    @Test func aPreviewWakesASleepingWorkspaceAndWaitsForItsPort() async throws {
        try await withLiveServer { client, manager in
            let preview = try await serve(client, "nap", port: 8302)
            #expect(try await client.execute(uri: "/preview/\(preview.token)/", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/v1/workspaces/nap/sleep", method: .post).status == .ok)
            #expect(try await manager.workspace(key: WorkspaceKey(rawValue: "nap")!).state == .sleeping)
            // The request boots the workspace and waits for the port, while the server is started again.
            async let answer = client.execute(uri: "/preview/\(preview.token)/again", method: .get)
            while try await manager.workspace(key: WorkspaceKey(rawValue: "nap")!).state != .running {
                try await Task.sleep(for: .milliseconds(20))
            }
            // (Through the library: the test client sends one request at a time, and the preview's is under way.)
            let runtime = try await manager.runtime(for: WorkspaceKey(rawValue: "nap")!)
            _ = try await runtime.spawn(SpawnRequest(command: "python3", args: ["/workspace/echo.py", "8302"]))
            let response = try await answer
            #expect(response.status == .ok && String(buffer: response.body) == "GET /again - ")
            // Nothing listening, long after: a 502 problem, not a hang.
            _ = try await client.execute(uri: "/v1/workspaces/quiet", method: .put)
            let quiet = try decode(
                Preview.self,
                try await client.execute(uri: "/v1/workspaces/quiet/previews", method: .post, headers: json, body: ByteBuffer(string: #"{"port":8399}"#)))
            let refused = try await client.execute(uri: "/preview/\(quiet.token)/", method: .get)
            #expect(refused.status == .badGateway && refused.headers[.contentType] == "application/problem+json")
        }
    }
}

/// A keep-alive client connection of its own (the test client may open a new one per request): blocking, bounded.
final class RawConnection: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard fd >= 0, connected == 0 else {
            if fd >= 0 { Glibc.close(fd) }
            throw POSIXError(.ECONNREFUSED)
        }
    }

    /// ``exchange(_:then:_:)`` on a thread of its own: a blocking read must not hold one of the few threads of Swift's
    /// cooperative pool, which the server needs to answer it.
    func exchangeOffThePool(_ request: String, then delay: Duration? = nil, _ rest: String = "") async -> String {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: (try? self.exchange(request, then: delay, rest)) ?? "") }
        }
    }

    private func send(_ text: String) {
        _ = text.utf8CString.withUnsafeBufferPointer { Glibc.send(fd, $0.baseAddress, $0.count - 1, 0) }
    }

    /// Sends `request` (and `rest` after `delay`, on this thread) and reads until a whole answer with a
    /// `Content-Length` body has come (or 10 s pass).
    func exchange(_ request: String, then delay: Duration? = nil, _ rest: String = "") throws -> String {
        send(request)
        if let delay {
            Thread.sleep(forTimeInterval: Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
            send(rest)
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let text = String(decoding: received, as: UTF8.self)
            if let end = text.range(of: "\r\n\r\n"),
                let line = text[..<end.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
                let length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)),
                text.utf8.count - text.utf8.distance(from: text.startIndex, to: end.upperBound) >= length
            {
                return text
            }
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { return text }
            received += buffer[..<count]
        }
    }

    func close() { Glibc.close(fd) }
}
