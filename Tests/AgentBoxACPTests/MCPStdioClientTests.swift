@testable import AgentBoxACP
import AgentBoxAPI
import Foundation
import Synchronization
import Testing

/// The mock agent's MCP client against the tests' stdio server, one that never answers and one whose line is too long.
@Suite("MCP stdio client", .timeLimit(.minutes(1)))
struct MCPStdioClientTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Support/mcp_stdio_server.py").path

    static func fixtureEntry(marker: String) -> JSONValue {
        ["name": "fixture", "command": "/usr/bin/python3", "args": [.string(fixture)],
         "env": [["name": "FIXTURE_GREETING", "value": "hi-env"], ["name": "FIXTURE_MARKER", "value": .string(marker)]]]
    }

    @Test func callsAToolWithTheServersEnvironment() async throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("stamp-\(UUID()).txt").path
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let server = try MCPServerSpec.parse([Self.fixtureEntry(marker: marker)])[0]
        let result = try await MCPStdioClient.callTool(server, tool: "stamp", arguments: ["text": "one"])
        #expect(result.text == "stamped one, greeting hi-env" && !result.isError)
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "one hi-env\n")
        // An unknown tool is the server's JSON-RPC error.
        await #expect(throws: JSONRPCError.self) { _ = try await MCPStdioClient.callTool(server, tool: "absent", arguments: [:]) }
    }

    @Test func aServerThatNeverAnswersTimesOutAndIsKilled() async throws {
        let server = MCPServerSpec(name: "mute", transport: .stdio(command: "sleep", args: ["60"], env: []))
        let start = ContinuousClock.now
        let error = await #expect(throws: JSONRPCError.self) {
            _ = try await MCPStdioClient.callTool(server, tool: "any", arguments: [:], timeout: .milliseconds(500))
        }
        #expect(error?.message.contains("'mute' did not answer within") == true, "\(String(describing: error))")
        #expect(ContinuousClock.now - start < .seconds(40), "well before the server's own 60 s end")
    }

    @Test func aLineOverTheCapEndsTheExchange() async throws {
        let server = MCPServerSpec(name: "loud", transport: .stdio(command: "/usr/bin/python3", args: ["-c", "print('x' * 100000)"], env: []))
        let error = await #expect(throws: JSONRPCError.self) {
            _ = try await MCPStdioClient.callTool(server, tool: "any", arguments: [:], timeout: .seconds(20), maximumLine: 1024)
        }
        #expect(error == .connectionClosed, "\(String(describing: error))")
    }

    /// Writing to a server that is gone fails the call (the broken pipe does not end the test process).
    @Test func aServerThatExitsAtOnceFailsTheCall() async throws {
        let server = MCPServerSpec(name: "gone", transport: .stdio(command: "true", args: [], env: []))
        for _ in 0..<20 {
            await #expect(throws: (any Error).self) { _ = try await MCPStdioClient.callTool(server, tool: "any", arguments: [:], timeout: .seconds(10)) }
        }
    }

    @Test func theMockAgentCallsItsSessionsServer() async throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("stamp-\(UUID()).txt").path
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let harness = await Harness()
        let session = try await harness.session(mcpServers: [Self.fixtureEntry(marker: marker)])
        #expect(try await harness.prompt(session, #"mcp fixture stamp {"text": "mocked"}"#) == "end_turn")
        let updates = harness.updates.withLock { $0 }.filter { $0.kind == "tool_call" || $0.kind == "tool_call_update" }
        #expect(updates.map(\.kind) == ["tool_call", "tool_call_update"])
        #expect(updates.first?.update["title"] == "fixture/stamp" && updates.first?.update["kind"] == "other")
        #expect(updates.last?.update["status"] == "completed", "\(updates.last?.update.jsonText ?? "")")
        #expect(updates.last?.update.jsonText.contains("stamped mocked, greeting hi-env") == true)
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "mocked hi-env\n")
        // A server the session does not have is the prompt's error; bad mcpServers are session/new's.
        await #expect(throws: JSONRPCError.self) { _ = try await harness.prompt(session, "mcp absent stamp") }
        let refused = await #expect(throws: JSONRPCError.self) { _ = try await harness.session(mcpServers: [["name": "x"]]) }
        #expect(refused?.code == -32602 && refused?.message.contains("has no command") == true)
    }
}
