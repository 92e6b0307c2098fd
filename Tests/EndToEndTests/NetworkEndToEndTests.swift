import AgentBoxAPI
import AgentBoxClient
import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

@Suite("Fetch and previews through the real binary", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(3)))
struct NetworkEndToEndTests {
    /// The tests' HTTP and WebSocket echo server (Tests/Support/echo_server.py).
    static let echoServer = try! Data(
        contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/echo_server.py"))

    @Test func aPreviewMadeWithTheCLIWorksAfterARestart() async throws {
        try await withTemporaryDirectory { data in
            var server = try await ServerProcess.start(dataDirectory: data)
            var environment = ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!]
            var client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("site")
            _ = try await client.writeFile("site", path: "/workspace/echo.py", data: Self.echoServer)
            _ = try await client.spawn("site", SpawnRequest(command: "python3", args: ["/workspace/echo.py", "8400"]))

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
            _ = try await client.spawn("site", SpawnRequest(command: "python3", args: ["/workspace/echo.py", "8400"]))
            #expect(try await Self.get(moved + "again") == (200, "GET /again - "))

            let revoked = try await AgentBoxBinary.run(["preview", "revoke", "site", token], environment: environment)
            #expect(revoked.status == 0, "\(revoked.stderr)")
            #expect(try await Self.get(moved + "again").status == 404)
            let bad = try await AgentBoxBinary.run(["preview", "site", "8400", "--expires", "soon"], environment: environment)
            #expect(bad.status != 0 && bad.stderr.contains("--expires"))
            await server.stop()
        }
    }

    static func get(_ url: String) async throws -> (status: Int, body: String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: body))
    }
}
