import AgentBoxAPI
import AgentBoxClient
import Foundation
import Testing

/// The Python interpreter of the official MCP client's environment (`scripts/setup-mcp-client.sh`, which
/// `scripts/test.sh` runs), when it is installed.
let mcpClientPython: String? = {
    let environment = ProcessInfo.processInfo.environment["AGENTBOX_MCP_CLIENT"].flatMap { $0.isEmpty ? nil : $0 }
    let directory = environment
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/mcp-client").path
    let python = directory + "/venv/bin/python"
    return FileManager.default.isExecutableFile(atPath: python) ? python : nil
}()

let mcpClientScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Support/mcp_client.py").path

/// AgentBox's MCP server driven by a client no one here wrote: the `mcp` package from PyPI, over streamable HTTP
/// (`POST /v1/mcp`) and over stdio (`agentbox mcp --workspace KEY`, which reaches the server through the client).
@Suite(
    "MCP with the official Python client", .enabled(if: canSandbox, "needs bubblewrap and root"),
    .enabled(if: mcpClientPython != nil, "the Python MCP client is not installed: run scripts/setup-mcp-client.sh (it needs PyPI)"),
    .timeLimit(.minutes(3)))
struct MCPEndToEndTests {
    /// Runs the driver script with `arguments`; returns what it printed, decoded.
    func drive(_ arguments: [String]) async throws -> JSONValue {
        let run = try await runProgram(mcpClientPython!, [mcpClientScript] + arguments)
        #expect(run.status == 0, "\(run.stderr)")
        return try JSONValue.parse(run.stdout)
    }

    func expectAWorkingSession(_ seen: JSONValue, elsewhere: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(seen["server"] == "agentbox", sourceLocation: sourceLocation)
        #expect(
            seen["tools"] == ["exec", "kill_process", "list_files", "list_processes", "process_output", "read_file", "spawn_process", "write_file"],
            sourceLocation: sourceLocation)
        #expect(seen["exec"]?["isError"] == false && seen["exec"]?["stdout"] == "hi\n" && seen["exec"]?["exitCode"] == 0, sourceLocation: sourceLocation)
        #expect(seen["write"]?["bytesWritten"] == 45, sourceLocation: sourceLocation)
        #expect(seen["roundTrip"] == true, "\(seen["read"]?.jsonText ?? "")", sourceLocation: sourceLocation)
        #expect(seen["elsewhere"]?["isError"] == true, sourceLocation: sourceLocation)
        #expect(seen["elsewhere"]?["text"]?.stringValue?.contains(elsewhere) == true, "\(seen["elsewhere"]?.jsonText ?? "")", sourceLocation: sourceLocation)
    }

    @Test func streamableHTTPAndStdio() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("mcp")

            let overHTTP = try await drive(["http", server.endpoint.absoluteString + "/v1/mcp", server.token!, "mcp"])
            // Over HTTP every workspace the token may use is reachable: one that does not exist is a tool error.
            expectAWorkingSession(overHTTP, elsewhere: "no workspace 'elsewhere'")
            #expect(try await client.readFileData("mcp", path: "/workspace/mcp/hello.txt") == Data("hello from the python mcp client\ndata: [1,2]\n".utf8))

            _ = try await client.deleteWorkspace("mcp")
            _ = try await client.putWorkspace("mcp")
            let overStdio = try await drive(["stdio", AgentBoxBinary.path, server.endpoint.absoluteString, server.token!, "mcp"])
            // Over stdio the tools are scoped to the one workspace.
            expectAWorkingSession(overStdio, elsewhere: "is not one this caller may use")
            await server.stop()
        }
    }
}

@Suite("agentbox mcp", .timeLimit(.minutes(1)))
struct MCPCommandTests {
    @Test func agentboxMCPRefusesAWorkspaceThatDoesNotExist() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let refused = try await AgentBoxBinary.run(
                ["mcp", "--workspace", "absent"], environment: ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("no workspace 'absent'"), "\(refused.stderr)")
            #expect(refused.stdout.isEmpty)
            await server.stop()
        }
    }

    /// A client that writes its requests and closes stdin (`… | agentbox mcp`) gets every answer: requests still
    /// running when stdin ends are answered before it exits (they were dropped). A line that is not JSON gets a parse
    /// error with id null, as JSON-RPC asks (the SDK answered with an id it made up), and JSON that is no request
    /// (`{}`, `42`, `[]`, an id of 7.5, a message without method) an invalid-request error.
    @Test func answersEveryRequestBeforeItEndsAndAParseErrorHasANullId() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("piped")
            let lines = [
                #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
                #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                "this is not json",
                "{}", "42", "[]", #"{"jsonrpc":"2.0","id":7.5,"method":"tools/list"}"#, #"{"jsonrpc":"2.0","id":9}"#,
                #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"exec","arguments":{"command":"sleep 1; echo slow-done"}}}"#,
                #"{"jsonrpc":"2.0","id":"three","method":"tools/call","params":{"name":"exec","arguments":{"command":"echo quick-done"}}}"#,
            ]
            let result = try await AgentBoxBinary.run(
                ["mcp", "--workspace", "piped"], environment: ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!],
                stdin: Data((lines.joined(separator: "\n") + "\n").utf8))
            #expect(result.status == 0, "\(result.stderr)")
            let replies = result.stdout.split(separator: "\n").compactMap { try? JSONValue.parse(Data($0.utf8)) }
            let ids = replies.compactMap { $0["id"] }
            #expect(ids.map(\.jsonText).sorted() == ["\"three\"", "1", "2", "9", "null", "null", "null", "null", "null"], "\(result.stdout)")
            let codes = replies.filter { $0["id"] == .null || $0["id"] == .number(9) }.compactMap { $0["error"]?["code"]?.jsonText }.sorted()
            #expect(codes == ["-32600", "-32600", "-32600", "-32600", "-32600", "-32700"], "\(result.stdout)")
            #expect(result.stdout.contains("slow-done") && result.stdout.contains("quick-done"), "\(result.stdout)")
            await server.stop()
        }
    }
}
