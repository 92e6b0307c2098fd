import AgentBoxAPI
import AgentBoxClient
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@Suite("Fetch and previews through the real binary", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(3)))
struct NetworkEndToEndTests {
    /// The tests' HTTP and WebSocket echo server (Tests/Support/echo_server.py).
    static let echoServer = try! Data(
        contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/echo_server.py"))

    /// Writes the echo server into `key`, starts it on `port` and waits until it answers (through the server's own
    /// fetch, which already retries while nothing listens for `--port-wait`): under CI's load a Python start has
    /// been seen to take longer than that.
    static func startEchoServer(_ client: AgentBoxClient, _ key: String, port: Int, write: Bool = true) async throws {
        if write { _ = try await client.writeFile(key, path: "/workspace/echo.py", data: echoServer) }
        _ = try await client.spawn(key, SpawnRequest(command: "python3", args: ["/workspace/echo.py", String(port)]))
        let giveUp = ContinuousClock.now + .seconds(90)
        while true {
            do {
                _ = try await client.fetch(key, FetchRequest(port: port, path: "/ready"))
                return
            } catch let error as AgentBoxClientError where error.status == 502 && ContinuousClock.now < giveUp {
                continue
            }
        }
    }

    @Test func aPreviewMadeWithTheCLIWorksAfterARestart() async throws {
        try await withTemporaryDirectory { data in
            var server = try await ServerProcess.start(dataDirectory: data)
            var environment = ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!]
            var client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("site")
            try await Self.startEchoServer(client, "site", port: 8400)

            let fetched = try await AgentBoxBinary.run(["fetch", "site", "8400", "/hello", "-H", "X-Test: cli"], environment: environment)
            #expect(fetched.status == 0 && fetched.stdout == "GET /hello cli ", "\(fetched.stderr)")
            let made = try await AgentBoxBinary.run(["preview", "site", "8400", "--expires", "2h"], environment: environment)
            #expect(made.status == 0, "\(made.stderr)")
            let url = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(url.hasPrefix(server.endpoint.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/preview/"), "\(url)")
            // A preview needs no bearer token: the preview token is the credential.
            #expect(try await Self.get(url + "page") == (200, "GET /page - "))
            let listed = try await AgentBoxBinary.run(["preview", "list", "site"], environment: environment)
            #expect(listed.stdout.contains("8400"))

            // After a restart (kill -9 included) the URL still works once something listens again.
            await server.stop(signal: SIGKILL)
            server = try await ServerProcess.start(dataDirectory: data)
            environment["AGENTBOX_ENDPOINT"] = server.endpoint.absoluteString
            client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let token = url.split(separator: "/").last.map(String.init) ?? ""
            let moved = url.replacingOccurrences(of: url.components(separatedBy: "/preview/")[0], with: server.endpoint.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")))
            try await Self.startEchoServer(client, "site", port: 8400, write: false)
            #expect(try await Self.get(moved + "again") == (200, "GET /again - "))

            let revoked = try await AgentBoxBinary.run(["preview", "revoke", "site", token], environment: environment)
            #expect(revoked.status == 0, "\(revoked.stderr)")
            #expect(try await Self.get(moved + "again").status == 404)
            let bad = try await AgentBoxBinary.run(["preview", "site", "8400", "--expires", "soon"], environment: environment)
            #expect(bad.status != 0 && bad.stderr.contains("--expires"))

            // The egress policy from the CLI.
            let locked = try await AgentBoxBinary.run(
                ["workspaces", "create", "locked", "--egress", "*.example.com", "--egress", "pypi.org:443"], environment: environment)
            #expect(locked.status == 0, "\(locked.stderr)")
            #expect(try await client.workspace("locked").network.egress == .allowList(["*.example.com", "pypi.org:443"]))
            let refused = try await AgentBoxBinary.run(["workspaces", "create", "odd", "--egress", "not a host"], environment: environment)
            #expect(refused.status != 0 && refused.stderr.contains("egress pattern"), "\(refused.stderr)")
            await server.stop()
        }
    }

    /// `serve --preview-domain`: `{token}.{domain}` serves the preview at the root of its own host, WebSockets too,
    /// without the API's bearer token, and never the API itself.
    @Test func hostBasedPreviews() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--preview-domain", "preview.test"])
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("host")
            try await Self.startEchoServer(client, "host", port: 8401)
            let preview = try await client.createPreview("host", port: 8401)
            let port = server.endpoint.port!
            #expect(preview.url == "http://\(preview.token).preview.test:\(port)/")
            let host = "\(preview.token).preview.test:\(port)"
            let root = server.endpoint.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            #expect(try await Self.get(root + "/assets/app.js?v=2", host: host) == (200, "GET /assets/app.js?v=2 - "))
            #expect(try await Self.get(root + "/v1/workspaces", host: host) == (200, "GET /v1/workspaces - "), "the API is not reachable from a preview host")
            #expect(try await Self.get(root + "/", host: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.preview.test").status == 404)
            #expect(try await Self.get(root + "/v1/workspaces").status == 401, "other hosts still need the token")

            let socket = try RawSocket(port: port)
            try socket.send(
                "GET /live HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            let answer = try socket.receive(until: "proto")
            #expect(answer.hasPrefix("HTTP/1.1 101"), "\(answer)")
            #expect(answer.contains("path /live proto"), "the server inside greets through the relay: \(answer)")
            await server.stop()
        }
    }

    /// Preview and API requests pipelined on one connection are answered in the order they were sent, each by its
    /// own side; a preview request with `Connection: close` is the last one answered, and the connection then closes.
    @Test func pipelinedPreviewAndAPIRequestsAreAnsweredInOrder() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("pipe")
            try await Self.startEchoServer(client, "pipe", port: 8402)
            let preview = try await client.createPreview("pipe", port: 8402)
            #expect(try await Self.get((preview.url ?? "") + "ready").status == 200)
            let base = "/preview/\(preview.token)"
            let auth = "Authorization: Bearer \(server.token ?? "")\r\n"

            let socket = try RawSocket(port: server.endpoint.port!)
            try socket.send(
                "GET \(base)/one HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "POST \(base)/two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                    + "GET /v1/workspaces/pipe HTTP/1.1\r\nHost: x\r\n\(auth)\r\n"
                    + "GET \(base)/three HTTP/1.1\r\nHost: x\r\nX-Test: last\r\nConnection: close\r\n\r\n")
            let (received, closed) = socket.receiveUntilClosed()
            #expect(closed, "the connection closes after the answer to `Connection: close`")
            let answers = RawHTTPResponse.parseAll(received)
            #expect(answers.map(\.status) == [200, 200, 201, 200, 200], "\(String(decoding: received, as: UTF8.self))")
            guard answers.count == 5 else { return }
            #expect(answers[0].body == "GET /one - ")
            #expect(answers[1].body.contains("\"status\""), "\(answers[1].body)")
            #expect(answers[2].body == "POST /two - abc")
            #expect(answers[3].body.contains("\"pipe\""), "\(answers[3].body)")
            #expect(answers[4].body == "GET /three last ")
            #expect(answers[4].headers["connection"] == "close")
            #expect(answers[0].headers["connection"] == nil && answers[0].headers["access-control-allow-origin"] == "*")

            // A large answer to `Connection: close` arrives whole before the connection closes.
            let large = try RawSocket(port: server.endpoint.port!)
            let body = String(repeating: "y", count: 3 << 20)
            try large.send("POST \(base)/large HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body)
            let (bytes, ended) = large.receiveUntilClosed()
            let whole = RawHTTPResponse.parseAll(bytes)
            #expect(ended && whole.count == 1 && whole.first?.body == "POST /large - " + body, "\(bytes.count) bytes")

            // `Expect: 100-continue` is answered before the body is sent, and the body then goes through.
            let expecting = try RawSocket(port: server.endpoint.port!)
            try expecting.send("POST \(base)/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            let interim = try expecting.receive(until: "\r\n\r\n")
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue"), "\(interim)")
            try expecting.send("hello")
            let final = try expecting.receive(until: "POST /expect - hello")
            #expect(final.contains("HTTP/1.1 201") && final.hasSuffix("POST /expect - hello"), "\(final)")

            // HTTP/1.0 without keep-alive: the connection closes after the answer.
            let old = try RawSocket(port: server.endpoint.port!)
            try old.send("GET \(base)/old HTTP/1.0\r\nHost: x\r\n\r\n")
            let (oldBytes, oldClosed) = old.receiveUntilClosed()
            #expect(oldClosed && RawHTTPResponse.parseAll(oldBytes).map(\.body) == ["GET /old - "])
            await server.stop()
        }
    }

    /// A client that keeps its proxy connection for the next request (Python's http.client, as Bun's and Rust's do)
    /// reads `Connection: close` in each answer to a plain-HTTP request through the egress proxy, and so sends the
    /// next one on a new connection: fifty requests in a row all get their answer. (Before, the target's answer
    /// carried no such header; a client that reused the connection saw it closed under its request.)
    @Test func plainHTTPThroughTheEgressProxyIsMarkedClose() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("out", config: WorkspaceConfig(network: NetworkPolicy(egress: .allowList(["host.agentbox.internal:\(server.port)"]))))
            let script = """
                import http.client
                conn = http.client.HTTPConnection("127.0.0.1", 3128, timeout=20)
                answers = []
                for i in range(50):
                    conn.request("GET", "http://host.agentbox.internal:\(server.port)/v1/health")
                    r = conn.getresponse()
                    r.read()
                    answers.append("%d %s" % (r.status, r.getheader("Connection")))
                print(len(answers), sorted(set(answers)))
                """
            let result = try await client.exec("out", command: "python3 -c '\(script)'")
            #expect(result.exitCode == 0, "\(result.stderr)")
            #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "50 ['200 close']", "\(result.stdout) \(result.stderr)")
            await server.stop()
        }
    }

    static func get(_ url: String, host: String? = nil) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: url)
        if let host { request.headers.replaceOrAdd(name: "host", value: host) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: body))
    }
}
