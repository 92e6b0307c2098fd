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
            // Long enough for python3 to start listening on a loaded CI machine.
            let manager = try makeManager(directory, portWaitLimit: .seconds(5))
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
            "curl -s -m 20 -o /dev/null -w '%{http_code}' \(through) http://\(target)/; echo; "
                + "curl -s -m 20 -o /dev/null -w '%{http_connect}' -p \(through) http://\(target)/; echo")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        return (lines.first ?? "", lines.count > 1 ? lines[1] : "")
    }

    @Test func thePolicyDecidesAndNothingBypassesTheProxy() async throws {
        let server = try HostHTTPServer()
        defer { server.stop() }
        let loopback = "127.0.0.1:\(server.port)"
        let alias = "host.agentbox.internal:\(server.port)"
        let external = HostHTTPServer.externalAddress
        try await withTemporaryDirectory { directory in
            // The host's own address is reachable only because the admin allows it (see addressesThatNoPolicyOpens).
            let manager = try makeManager(directory) { configuration in
                configuration.egressAllowedPrivateRanges = external.flatMap { IPNetwork($0) }.map { [$0] } ?? []
            }
            _ = try await manager.create(key: key("deny"), config: WorkspaceConfig())
            _ = try await manager.create(key: key("list"), config: WorkspaceConfig(network: NetworkPolicy(egress: .allowList([alias]))))
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

            // Another policy and env given for the existing, running workspace hold at once (they were ignored).
            let (changed, created) = try await manager.create(
                key: key("deny"), config: WorkspaceConfig(env: ["EGRESS_CHANGED": "yes"], network: NetworkPolicy(egress: .allowList([alias]))))
            #expect(!created && changed.network.egress == .allowList([alias]) && changed.env == ["EGRESS_CHANGED": "yes"])
            let opened = try await Self.probe(manager, "deny", alias)
            #expect(opened.plain == "200" && opened.tunnel == "200", "\(opened)")
            #expect(try await manager.run("deny", "echo $EGRESS_CHANGED").stdout == "yes\n")
            _ = try await manager.create(key: key("deny"), config: WorkspaceConfig(network: NetworkPolicy(egress: .deny)))
            #expect(try await Self.probe(manager, "deny", alias).plain == "403")

            // The host alias with an entry naming it reaches a host service; "allow" alone reaches neither the alias nor
            // the host's loopback.
            let listed = try await Self.probe(manager, "list", alias)
            #expect(listed.plain == "200" && listed.tunnel == "200", "\(listed)")
            for target in [alias, loopback] {
                let everything = try await Self.probe(manager, "all", target)
                #expect(everything.plain == "403" && everything.tunnel == "403", "\(target) needs the alias and an exact entry: \(everything)")
            }

            // The proxy's variables are set, so tools use it by themselves.
            let environment = try await manager.run("all", "echo $HTTPS_PROXY $http_proxy $NO_PROXY")
            #expect(environment.stdout == "http://127.0.0.1:3128 http://127.0.0.1:3128 localhost,127.0.0.1,::1\n")

            if let external {
                let target = "\(external):\(server.port)"
                let allowed = try await Self.probe(manager, "all", target)
                #expect(allowed.plain == "200" && allowed.tunnel == "200", "\(allowed)")
                #expect(try await Self.probe(manager, "list", target).plain == "403")
                let viaEnvironment = try await manager.run("all", "curl -s -m 20 http://\(target)/; python3 -c \"import urllib.request; print(urllib.request.urlopen('http://\(target)/').read().decode())\"")
                #expect(viaEnvironment.stdout == "host-okhost-ok\n", "\(viaEnvironment)")
                // A process that ignores the proxy has no route out at all.
                let bypass = try await manager.run(
                    "all", "curl -s -m 3 --noproxy '*' http://\(target)/ || echo curl-failed; python3 -c \"import socket; socket.create_connection(('\(external)', \(server.port)), 2)\" 2>&1 | tail -1")
                #expect(bypass.stdout.contains("curl-failed") && bypass.stdout.contains("unreachable"), "\(bypass)")
            }
            await manager.shutdown()
        }
    }

    /// Sends a CONNECT and an absolute-form GET for each target (the authority exactly as written, so that no client
    /// tidies `0x7f.1` or `[::ffff:10.0.0.1]` up first) to the workspace's proxy, all at once; the status of each.
    static func rawProbe(_ manager: WorkspaceManager, _ workspace: String, _ targets: [String]) async throws -> [String: String] {
        let script = """
            import socket, sys
            from concurrent.futures import ThreadPoolExecutor
            def status(request):
                try:
                    s = socket.create_connection(("127.0.0.1", 3128), 5)
                    s.settimeout(15)
                    s.sendall(request.encode())
                    data = b""
                    while b"\\r\\n" not in data:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    parts = data.split(b"\\r\\n")[0].split(b" ")
                    return parts[1].decode() if len(parts) > 1 else "none"
                except Exception as error:
                    return type(error).__name__
            def probe(target):
                plain = status(f"GET http://{target}/ HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n")
                tunnel = status(f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n")
                return f"{target} {plain} {tunnel}"
            with ThreadPoolExecutor(len(sys.argv) - 1) as pool:
                for line in pool.map(probe, sys.argv[1:]):
                    print(line)
            """
        let runtime = try await manager.runtime(for: key(workspace))
        _ = try await runtime.exec(ExecRequest(command: "cat > /tmp/probe.py", stdin: script))
        let quoted = targets.map { "'\($0)'" }.joined(separator: " ")
        let result = try await runtime.exec(ExecRequest(command: "python3 /tmp/probe.py \(quoted)", timeoutMs: 60_000))
        var statuses: [String: String] = [:]
        for line in result.stdout.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 1).map(String.init)
            if fields.count == 2 { statuses[fields[0]] = fields[1] }
        }
        return statuses
    }

    /// No workspace policy, "allow" or an allow-list naming each target exactly, reaches the host's own addresses,
    /// private, carrier-grade NAT, link-local or unique-local networks, or IPv6 and numeric forms of them; a name that
    /// resolves to one is refused like the address.
    @Test func addressesThatNoPolicyOpens() async throws {
        let server = try HostHTTPServer()
        defer { server.stop() }
        let port = server.port
        // The host gets a private address and one of no special block, both reachable (the server listens on all):
        // only the address check stands between a workspace and them.
        let third = Int.random(in: 1...250)
        let added = try TestHostAddresses(["10.213.\(third).1", "11.213.\(third).1"])
        defer { added.remove() }
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            var names = [
                "10.0.0.1", "172.16.0.1", "192.168.0.1", "100.64.0.1", "169.254.169.254", "127.0.0.1", "0.0.0.0",
                "0x7f000001", "2130706433", "0x7f.1", "0177.0.0.1", "127.1", "localhost",
            ] + added.addresses
            let hostAddresses = HostHTTPServer.interfaceAddresses
            names += hostAddresses.filter(\.ipv4).map(\.address)
            let bracketed = ["fe80::1", "fc00::1", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:10.213.\(third).1", "64:ff9b::a9fe:a9fe"]
                + hostAddresses.filter { !$0.ipv4 }.map(\.address)
            let targets = Set(names.map { "\($0):\(port)" } + bracketed.map { "[\($0)]:\(port)" }).sorted()
            _ = try await manager.create(key: key("all"), config: WorkspaceConfig(network: NetworkPolicy(egress: .allow)))
            _ = try await manager.create(
                key: key("list"), config: WorkspaceConfig(network: NetworkPolicy(egress: .allowList(["*"] + names.map { "\($0):\(port)" }))))

            let events = try await manager.runtime(for: key("all")).events()
            for workspace in ["all", "list"] {
                let statuses = try await Self.rawProbe(manager, workspace, targets)
                for target in targets {
                    #expect(statuses[target] == "403 403", "\(workspace) → \(target): \(statuses[target] ?? "no answer")")
                }
            }
            // Tools that follow the proxy variables meet the same refusal.
            let viaCurl = try await manager.run(
                "all", "for url in http://10.213.\(third).1:\(port)/ http://169.254.169.254:\(port)/ http://[fc00::1]:\(port)/; do curl -s -o /dev/null -w '%{http_code} ' -m 20 $url; done")
            #expect(viaCurl.stdout == "403 403 403 ", "\(viaCurl)")

            var denied: EgressDeniedEvent?
            for await envelope in events {
                if case .egressDenied(let event) = envelope.event, event.host == "10.0.0.1" { denied = event; break }
            }
            #expect(denied?.reason == "address" && denied?.detail == "10.0.0.1 is in a private network (RFC 1918)", "\(String(describing: denied))")
            await manager.shutdown()
        }
    }

    /// `serve --egress-allow-private`: a range the admin allows is reachable for workspaces whose policy allows the
    /// target, in its IPv4-mapped form too; everything else stays refused.
    @Test func aRangeTheAdminAllowsIsReachable() async throws {
        let server = try HostHTTPServer()
        defer { server.stop() }
        let port = server.port
        let third = Int.random(in: 1...250)
        let added = try TestHostAddresses(["10.214.\(third).1"])
        defer { added.remove() }
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory) { $0.egressAllowedPrivateRanges = [IPNetwork("10.214.\(third).0/24")!] }
            let allowed = "10.214.\(third).1:\(port)"
            _ = try await manager.create(key: key("all"), config: WorkspaceConfig(network: NetworkPolicy(egress: .allow)))
            _ = try await manager.create(key: key("list"), config: WorkspaceConfig(network: NetworkPolicy(egress: .allowList([allowed]))))
            let all = try await Self.rawProbe(
                manager, "all", [allowed, "[::ffff:10.214.\(third).1]:\(port)", "10.0.0.1:\(port)", "localhost:\(port)", "169.254.169.254:\(port)"])
            #expect(all[allowed] == "200 200" && all["[::ffff:10.214.\(third).1]:\(port)"] == "200 200", "\(all)")
            #expect(all["10.0.0.1:\(port)"] == "403 403" && all["localhost:\(port)"] == "403 403" && all["169.254.169.254:\(port)"] == "403 403", "\(all)")
            let list = try await Self.rawProbe(manager, "list", [allowed, "10.214.\(third).2:\(port)"])
            #expect(list[allowed] == "200 200" && list["10.214.\(third).2:\(port)"] == "403 403", "the policy still decides: \(list)")
            let viaCurl = try await manager.run("list", "curl -s -m 20 http://\(allowed)/")
            #expect(viaCurl.stdout == "host-ok", "\(viaCurl)")
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
