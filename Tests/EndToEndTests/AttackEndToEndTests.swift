import AgentBoxAPI
import AgentBoxClient
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The real binary, tried as an unauthenticated client and as a hostile workspace would (security issue #17).
/// Each test here failed on the main branch before the fix it names.
@Suite("Attacks on the real binary")
struct AttackEndToEndTests {
    /// Hole 1: a fetch to a port on which nothing listens inside the workspace must not reach the host's loopback,
    /// where the AgentBox API itself listens on that very port.
    @Test func fetchNeverReachesTheHostsLoopback() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--port-wait", "300ms"])
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("fetcher")
            let apiPort = server.endpoint.port!
            await #expect(throws: AgentBoxClientError.self, "the API on the host's loopback must not answer a workspace's fetch") {
                let answer = try await client.fetch("fetcher", FetchRequest(port: apiPort, path: "/v1/health"))
                Issue.record("fetch reached the host: \(answer.status) \(String(decoding: Data(base64Encoded: answer.body) ?? Data(), as: UTF8.self))")
            }
            let (status, body) = try await Self.post(server, "/v1/workspaces/fetcher/fetch", json: #"{"port":\#(apiPort),"path":"/v1/health"}"#)
            #expect(status == 502, "\(body)")
            #expect(!body.contains("\"ok\""), "\(body)")
            // Hole 10: a port that answers something that is not HTTP is a bad gateway, not a 500 or a hang.
            _ = try await client.spawn(
                "fetcher",
                SpawnRequest(
                    command: "python3",
                    args: [
                        "-c",
                        "import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('127.0.0.1',9022));s.listen()\nwhile True:\n c,_=s.accept();c.recv(100);c.sendall(b'SSH-2.0-OpenSSH_9.2\\r\\n');c.close()",
                    ]))
            var answer = (status: 0, body: "")
            for _ in 0..<50 {
                answer = try await Self.post(server, "/v1/workspaces/fetcher/fetch", json: #"{"port":9022,"path":"/"}"#)
                if !answer.body.contains("nothing listens") { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(answer.status == 502, "\(answer.body)")
            await server.stop()
        }
    }

    /// Hole 2: with `--preview-domain`, a request whose Host is a preview host is a preview (by its token) and
    /// nothing else: it never reaches an API route, and never lifts the bearer token, WebSocket upgrades included.
    @Test func aPreviewHostNeverLiftsAuthentication() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--preview-domain", "preview.test"])
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("victim")
            let shell = try await client.openShell("victim")
            let port = server.endpoint.port!
            let host = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.preview.test"
            let listing = try RawSocket(port: port)
            try listing.send("GET /v1/workspaces HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
            let listed = String(decoding: listing.receiveUntilClosed().bytes, as: UTF8.self)
            #expect(listed.hasPrefix("HTTP/1.1 404"), "\(listed)")
            #expect(!listed.contains("victim"), "\(listed)")
            // The shell's WebSocket, asked for on a preview host without the token: never attached.
            for hostName in [host, "evil.preview.test", "x.y.preview.test"] {
                let socket = try RawSocket(port: port)
                try socket.send(
                    "GET /v1/workspaces/victim/shells/\(shell.id)/ws HTTP/1.1\r\nHost: \(hostName)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                let answer = try socket.receive(until: "\r\n\r\n")
                #expect(!answer.hasPrefix("HTTP/1.1 101"), "a preview host attached a shell: \(answer)")
            }
            await server.stop()
        }
    }

    /// Hole 6: `?access_token=` stands in for the header on streams only (SSE and WebSocket routes, by their
    /// declared access), not on ordinary routes.
    @Test func theQueryTokenWorksOnStreamsOnly() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("q")
            let token = server.token!
            // The transcript's JSON pages end in `/events` like a stream; a path-suffix rule accepted the query token there.
            for path in [
                "/v1/workspaces?access_token=\(token)", "/v1/workspaces/q?access_token=\(token)",
                "/v1/workspaces/q/sessions/s/events?access_token=\(token)",
            ] {
                #expect(try await Self.get(server, path, authorized: false).status == 401, "\(path)")
            }
            let events = try RawSocket(port: server.endpoint.port!)
            try events.send("GET /v1/workspaces/q/events?access_token=\(token) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try events.receive(until: "\r\n\r\n").hasPrefix("HTTP/1.1 200"))
            await server.stop()
        }
    }

    /// Hole 10: a request with `Upgrade` to something other than WebSocket is answered as a plain request, as the
    /// first request of a connection and after one; it held its connection unanswered before.
    @Test func aForeignUpgradeIsAnswered() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            for upgrade in ["Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n", "Upgrade: tls/1.3\r\n"] {
                let socket = try RawSocket(port: server.endpoint.port!)
                // As the first request of a connection and after another; after one that said `Connection: Upgrade`,
                // the connection closes once it is answered (nothing after such a request is read as HTTP).
                let request = "GET /v1/health HTTP/1.1\r\nHost: x\r\n\(upgrade)\r\n"
                let closing = "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                let closesItself = upgrade.contains("Connection: Upgrade")
                try socket.send(request + (closesItself ? "" : closing))
                let first = socket.receiveUntilClosed()
                let text = String(decoding: first.bytes, as: UTF8.self)
                #expect(first.closed && text.hasPrefix("HTTP/1.1 200"), "\(text)")
                #expect(text.components(separatedBy: "HTTP/1.1 200").count == (closesItself ? 2 : 3), "\(text)")
                let later = try RawSocket(port: server.endpoint.port!)
                try later.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n" + request + (closesItself ? "" : closing))
                let answers = String(decoding: later.receiveUntilClosed().bytes, as: UTF8.self)
                #expect(answers.components(separatedBy: "HTTP/1.1 200").count == (closesItself ? 3 : 4), "\(answers)")
            }
            await server.stop()
        }
    }

    /// The auth matrix: every operation in /v1/openapi.json, without a token and with a wrong one, is refused with
    /// 401, except those the document itself declares open (`security: []`).
    @Test func everyDocumentedRouteRefusesAMissingOrWrongToken() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let (status, body) = try await Self.get(server, "/v1/openapi.json", authorized: true)
            #expect(status == 200)
            let document = try JSONDecoder().decode(JSONValue.self, from: Data(body.utf8))
            guard case .object(let paths)? = document["paths"] else {
                Issue.record("no paths")
                return
            }
            var checked = 0
            for (template, item) in paths.sorted(by: { $0.key < $1.key }) {
                guard case .object(let methods) = item else { continue }
                let path = template.replacingOccurrences(of: "{key}", with: "k").replacingOccurrences(of: #"\{[^}]+\}"#, with: "x", options: .regularExpression)
                for (method, operation) in methods {
                    if case .array(let security)? = operation["security"], security.isEmpty { continue }
                    for authorization in [nil, "Bearer wrong-token", "Basic ZTJlOmUyZS10b2tlbg==", "Bearer "] {
                        var request = HTTPClientRequest(url: server.endpoint.absoluteString + path + "?access_token=wrong")
                        request.method = .init(rawValue: method.uppercased())
                        if let authorization { request.headers.add(name: "authorization", value: authorization) }
                        request.headers.add(name: "content-type", value: "application/json")
                        request.body = .bytes(ByteBuffer(string: "{}"))
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                        let answer = String(buffer: try await response.body.collect(upTo: 1 << 20))
                        #expect(response.status.code == 401, "\(method.uppercased()) \(path) with \(authorization ?? "no token"): \(response.status.code) \(answer)")
                        checked += 1
                    }
                }
            }
            #expect(checked > 100, "the document lists the routes (\(checked) checks)")
            // A route that does not exist says no more than one that does.
            #expect(try await Self.get(server, "/v1/nothing-here", authorized: false).status == 401)
            await server.stop()
        }
    }

    /// Hole 7: what the server writes is its own (and each workspace's own): the store with its preview hashes,
    /// environments and transcripts is 0600, -wal and -shm included; a workspace's files are 0700 to its own uid.
    @Test func theServersFilesAreOwnerOnly() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("modes", config: WorkspaceConfig(env: ["SECRET": "s3cret"]))
            _ = try await client.exec("modes", command: "echo hi > /workspace/file")
            _ = try await client.createPreview("modes", port: 8000)
            func mode(_ path: String) -> mode_t {
                var info = stat()
                return stat(path, &info) == 0 ? info.st_mode & 0o7777 : 0o7777
            }
            for file in ["agentbox.sqlite", "agentbox.sqlite-wal", "agentbox.sqlite-shm"] {
                #expect(mode(data.appendingPathComponent(file).path) == 0o600, "\(file)")
            }
            #expect(mode(data.path) == 0o711)
            #expect(mode(data.appendingPathComponent("snapshots").path) == 0o700)
            // A workspace's directories: in the disk pool when there is one, else under workspaces/; the blank workspaces
            // made ahead of creates (--blank-workspaces) are there too, owner only as well once made (the create took
            // one, whose replacement is made once creates pause).
            try await Self.waitForBlankWorkspaces(server, ServerProcess.blankWorkspaces)
            let roots = ["pool/workspaces", "workspaces"].flatMap { parent in
                ((try? FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent(parent).path)) ?? []).map { "\(parent)/\($0)" }
            }
            #expect(roots.count >= 1, "\(roots)")
            for workspace in roots {
                let root = data.appendingPathComponent(workspace).path
                for path in [root, root + "/workspace", root + "/home"] { #expect(mode(path) == 0o700, "\(path)") }
            }
            await server.stop()
        }
    }

    /// Waits (by deadline) until the server has `count` blank workspaces ready.
    static func waitForBlankWorkspaces(_ server: ServerProcess, _ count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let (_, metrics) = try await get(server, "/metrics", authorized: true)
            // Prometheus' text format writes gauges as floating point ("4.0").
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("agentbox_blank_workspaces ") }
            if let line, Double(line.dropFirst("agentbox_blank_workspaces ".count)) == Double(count) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the server has not \(count) blank workspaces ready after 20 s")
    }

    static func get(_ server: ServerProcess, _ path: String, authorized: Bool) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: server.endpoint.absoluteString + path)
        if authorized, let token = server.token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 4 << 20)))
    }

    static func post(_ server: ServerProcess, _ path: String, json: String) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: server.endpoint.absoluteString + path)
        request.method = .POST
        if let token = server.token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: json))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(90))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 4 << 20)))
    }
}
