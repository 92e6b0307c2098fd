import AgentBox
import AgentBoxAPI
import Foundation
import Testing

/// The tests' HTTP and WebSocket echo server (Tests/Support/echo_server.py), to be written into a workspace.
let echoServer = try! String(
    contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Support/echo_server.py"), encoding: .utf8)

@Suite("Workspace network", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct NetworkTests {
    @Test func fetchReachesAServerInsideTheWorkspaceOnly() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, portWaitLimit: .milliseconds(600))
            _ = try await manager.run("web", "true")
            let runtime = try await manager.runtime(for: key("web"))
            _ = try await runtime.exec(ExecRequest(command: "cat > /workspace/echo.py", stdin: echoServer))
            _ = try await runtime.spawn(SpawnRequest(command: "python3", args: ["/workspace/echo.py", "8123"]))
            // The server may not listen yet: the fetch waits for the port.
            let get = try await runtime.fetch(FetchRequest(port: 8123, path: "/a?b=c", headers: ["X-Test": "one"]))
            #expect(get.status == 200)
            #expect(String(decoding: get.bodyData, as: UTF8.self) == "GET /a?b=c one ")
            #expect(get.headers["x-answer"] == "yes" && get.headers["content-type"] == "text/plain")
            let post = try await runtime.fetch(
                FetchRequest(port: 8123, path: "/p", method: "POST", body: Data([0x00, 0xFF, 0x41]).base64EncodedString()))
            #expect(post.status == 201)
            #expect(Array(post.bodyData) == Array("POST /p - ".utf8) + [0x00, 0xFF, 0x41])

            // Nothing on the host listens there, and another workspace's loopback is its own.
            let hostSocket = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(hostSocket) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(8123).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(hostSocket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected != 0, "the workspace's port is not on the host's loopback")
            _ = try await manager.run("other", "true")
            await #expect(throws: AgentBoxError.self) {
                _ = try await manager.runtime(for: key("other")).fetch(FetchRequest(port: 8123, path: "/"))
            }
            let fromInside = try await manager.run("other", "python3 -c \"import socket; socket.create_connection(('127.0.0.1', 8123), 1)\" 2>&1; echo rc=$?")
            #expect(fromInside.stdout.contains("rc=1"), "the other workspace cannot reach it either: \(fromInside.stdout)")
            await manager.shutdown()
        }
    }

    @Test func nothingListeningIsABadGatewayAndBadInputIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, portWaitLimit: .milliseconds(300))
            _ = try await manager.run("quiet", "true")
            let runtime = try await manager.runtime(for: key("quiet"))
            do {
                _ = try await runtime.fetch(FetchRequest(port: 9, path: "/"))
                Issue.record("a fetch to a closed port succeeded")
            } catch let error as AgentBoxError {
                #expect(error.code == .badGateway, "\(error)")
            }
            let bad: [FetchRequest] = [
                FetchRequest(port: 0, path: "/"), FetchRequest(port: 70000, path: "/"), FetchRequest(port: 80, path: "no-slash"),
                FetchRequest(port: 80, path: "/a b"), FetchRequest(port: 80, path: "/", method: "GE T"),
                FetchRequest(port: 80, path: "/", headers: ["X": "a\r\nInjected: yes"]), FetchRequest(port: 80, path: "/", body: "not base64!"),
            ]
            for request in bad {
                do {
                    _ = try await runtime.fetch(request)
                    Issue.record("accepted \(request)")
                } catch let error as AgentBoxError {
                    #expect(error.code == .invalidArgument, "\(request): \(error)")
                }
            }
            await manager.shutdown()
        }
    }

    @Test func aFetchBootsASleepingWorkspaceAndSleepEndsTheNetwork() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, portWaitLimit: .seconds(5))
            _ = try await manager.run("wake", "true")
            let runtime = try await manager.runtime(for: key("wake"))
            _ = try await runtime.exec(ExecRequest(command: "cat > /workspace/echo.py", stdin: echoServer))
            _ = try await runtime.spawn(SpawnRequest(command: "python3", args: ["/workspace/echo.py", "8124"]))
            #expect(try await runtime.fetch(FetchRequest(port: 8124, path: "/")).status == 200)
            await runtime.sleep()
            #expect(runtime.snapshot.state == .sleeping)
            // Asleep, the server is gone; the fetch boots the workspace and then finds nothing on the port.
            await #expect(throws: AgentBoxError.self) { _ = try await runtime.fetch(FetchRequest(port: 8124, path: "/")) }
            #expect(runtime.snapshot.state == .running, "the fetch woke it")
            _ = try await runtime.spawn(SpawnRequest(command: "python3", args: ["/workspace/echo.py", "8124"]))
            #expect(try await runtime.fetch(FetchRequest(port: 8124, path: "/")).status == 200, "a new namespace after the wake")
            await manager.shutdown()
        }
    }
}

@Suite("Egress", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct EgressTests {
    /// `curl` through the workspace's proxy: the status of a plain request and of a CONNECT tunnel.
    static func probe(_ manager: WorkspaceManager, _ workspace: String, _ target: String) async throws -> (plain: String, tunnel: String) {
        let through = "-x http://127.0.0.1:3128 --noproxy ''"
        let result = try await manager.run(
            workspace,
            "curl -s -m 5 -o /dev/null -w '%{http_code}' \(through) http://\(target)/; echo; "
                + "curl -s -m 5 -o /dev/null -w '%{http_connect}' -p \(through) http://\(target)/; echo")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        return (lines.first ?? "", lines.count > 1 ? lines[1] : "")
    }

    @Test func thePolicyDecidesAndNothingBypassesTheProxy() async throws {
        let server = try HostHTTPServer()
        defer { server.stop() }
        let loopback = "127.0.0.1:\(server.port)"
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("deny"), config: WorkspaceConfig())
            _ = try await manager.create(key: key("list"), config: WorkspaceConfig(network: NetworkPolicy(egress: .allowList([loopback]))))
            _ = try await manager.create(key: key("all"), config: WorkspaceConfig(network: NetworkPolicy(egress: .allow)))

            // Deny (the default): 403 to both forms, and an event on the workspace's stream.
            let events = try await manager.runtime(for: key("deny")).events()
            let denied = try await Self.probe(manager, "deny", loopback)
            #expect(denied.plain == "403" && denied.tunnel == "403", "\(denied)")
            var seen: EgressDeniedEvent?
            for await envelope in events {
                if case .egressDenied(let event) = envelope.event { seen = event; break }
            }
            #expect(seen == EgressDeniedEvent(host: "127.0.0.1", port: server.port, reason: "policy"))

            // An allow-list entry naming a host service reaches it; "allow" alone does not reach the host's loopback.
            let listed = try await Self.probe(manager, "list", loopback)
            #expect(listed.plain == "200" && listed.tunnel == "200", "\(listed)")
            let everything = try await Self.probe(manager, "all", loopback)
            #expect(everything.plain == "403" && everything.tunnel == "403", "loopback needs an exact entry: \(everything)")

            // The proxy's variables are set, so tools use it by themselves.
            let environment = try await manager.run("all", "echo $HTTPS_PROXY $http_proxy $NO_PROXY")
            #expect(environment.stdout == "http://127.0.0.1:3128 http://127.0.0.1:3128 localhost,127.0.0.1,::1\n")

            if let external = HostHTTPServer.externalAddress {
                let target = "\(external):\(server.port)"
                let allowed = try await Self.probe(manager, "all", target)
                #expect(allowed.plain == "200" && allowed.tunnel == "200", "\(allowed)")
                #expect(try await Self.probe(manager, "list", target).plain == "403")
                let viaEnvironment = try await manager.run("all", "curl -s -m 5 http://\(target)/; python3 -c \"import urllib.request; print(urllib.request.urlopen('http://\(target)/').read().decode())\"")
                #expect(viaEnvironment.stdout == "host-okhost-ok\n", "\(viaEnvironment)")
                // A process that ignores the proxy has no route out at all.
                let bypass = try await manager.run(
                    "all", "curl -s -m 3 --noproxy '*' http://\(target)/ || echo curl-failed; python3 -c \"import socket; socket.create_connection(('\(external)', \(server.port)), 2)\" 2>&1 | tail -1")
                #expect(bypass.stdout.contains("curl-failed") && bypass.stdout.contains("unreachable"), "\(bypass)")
            }
            await manager.shutdown()
        }
    }

    @Test func badPatternsAreRefused() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            for pattern in ["bad host", "example.com:0", "example.com:70000", "*.", "a..b", "-x.com", "http://x.com", ""] {
                do {
                    _ = try await manager.create(key: key("bad"), config: WorkspaceConfig(network: NetworkPolicy(egress: .allowList([pattern]))))
                    Issue.record("accepted '\(pattern)'")
                } catch let error as AgentBoxError {
                    #expect(error.code == .invalidArgument, "\(pattern): \(error)")
                }
            }
            _ = try await manager.create(
                key: key("good"),
                config: WorkspaceConfig(network: NetworkPolicy(egress: .allowList(["*.github.com", "api.anthropic.com:443", "*:8080", "10.0.0.1"]))))
            await manager.shutdown()
        }
    }
}
