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
