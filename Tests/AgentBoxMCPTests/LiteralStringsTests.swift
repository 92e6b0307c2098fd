@testable import AgentBoxMCP
import AgentBoxAPI
import Foundation
import Logging
import MCP
import Synchronization
import Testing

@Suite("Tool arguments reach the tools as the client sent them")
struct LiteralArgumentsTests {
    /// Why ``LiteralStringsTransport`` exists: the SDK reads a string that looks like a `data:` URL as bytes. When a
    /// release stops doing so, this fails, and the transport can go.
    @Test func theSDKTurnsDataURLLikeStringsIntoBytes() throws {
        let value = try JSONDecoder().decode(Value.self, from: Data(#""data: [1,2]\n""#.utf8))
        #expect(value.stringValue == nil)
        #expect(String(data: try JSONEncoder().encode(value), encoding: .utf8) != #""data: [1,2]\n""#)
    }

    @Test func aYAMLFileThatStartsWithDataIsWrittenAsItIs() async throws {
        let workspace = FakeWorkspace()
        let (clientSide, serverSide) = await InMemoryTransport.createConnectedPair()
        let server = try await AgentBoxMCPServer.start(
            tools: AgentBoxTools(operations: workspace, scope: .all), transport: serverSide, logger: Logger(label: "test"))
        let client = Client(name: "test", version: "1")
        try await client.connect(transport: clientSide)
        let contents = ["data: [1,2]\n", "data:text/plain;base64,aGk=", "data:,x"]
        for (index, content) in contents.enumerated() {
            let (_, isError) = try await client.callTool(
                name: "write_file", arguments: ["workspace": "demo", "path": .string("/workspace/\(index).yaml"), "content": .string(content)])
            #expect(isError != true)
            #expect(workspace.files.withLock { $0["/workspace/\(index).yaml"] } == Data(content.utf8), "\(content)")
        }
        // Every other message passes through as it was.
        let (tools, _) = try await client.listTools()
        #expect(tools.count == AgentBoxTools.Name.allCases.count)
        await client.disconnect()
        await server.stop()
    }

    @Test func onlyToolCallsHoldingSuchStringsAreRewritten() throws {
        let plain = Data(#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"exec","arguments":{"command":"ls"}}}"#.utf8)
        #expect(LiteralStringsTransport.preservingArguments(plain) == plain)
        let other = Data(#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"x":"data:,y"}}"#.utf8)
        #expect(LiteralStringsTransport.preservingArguments(other) == other)
        let hugeID = Data(#"{"jsonrpc":"2.0","id":12345678901234567,"method":"tools/call","params":{"name":"x","arguments":{"a":"data:,y"}}}"#.utf8)
        #expect(LiteralStringsTransport.preservingArguments(hugeID) == hugeID)
        let rewritten = LiteralStringsTransport.preservingArguments(
            Data(#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x","arguments":{"a":["data:,y"]}}}"#.utf8))
        let arguments = try JSONValue.parse(rewritten)["params"]?["arguments"]
        #expect(arguments == .object([LiteralStringsTransport.rawArgumentsKey: .string(#"{"a":["data:,y"]}"#)]))
    }
}

@Suite("Tool results reach the client as the tools made them")
struct ExactResultsTests {
    /// Codex's `initialize` carries `experimental: {"codex/auth-change": {}}`, which the SDK cannot read (it takes
    /// strings only): those entries are dropped before it sees them, and the handshake succeeds.
    @Test func objectExperimentalCapabilitiesAreDroppedFromInitialize() throws {
        let codex = Data(#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"experimental":{"codex/auth-change":{}},"elicitation":{"form":{}}},"clientInfo":{"name":"codex-mcp-client","version":"0.163.0"}}}"#.utf8)
        let rewritten = try JSONValue.parse(LiteralStringsTransport.preservingArguments(codex))
        #expect(rewritten["params"]?["capabilities"]?["experimental"] == nil)
        #expect(rewritten["params"]?["capabilities"]?["elicitation"] == ["form": [:]])
        let decoded = try JSONDecoder().decode(Request<Initialize>.self, from: LiteralStringsTransport.preservingArguments(codex))
        #expect(decoded.params.clientInfo.name == "codex-mcp-client")
        let strings = Data(#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"experimental":{"a":"b"}},"clientInfo":{"name":"x","version":"1"}}}"#.utf8)
        #expect(LiteralStringsTransport.preservingArguments(strings) == strings)
    }

    @Test func aFileThatStartsWithDataIsReadAsItIs() async throws {
        let workspace = FakeWorkspace()
        workspace.files.withLock { $0["/workspace/a.yaml"] = Data("data: [1,2]\n".utf8) }
        let (clientSide, serverSide) = await InMemoryTransport.createConnectedPair()
        let server = try await AgentBoxMCPServer.start(
            tools: AgentBoxTools(operations: workspace, scope: .all), transport: serverSide, logger: Logger(label: "test"))
        // Read the raw replies: the SDK's own client would change the string again as it reads it.
        try await clientSide.connect()
        let replies = await clientSide.receive()
        var iterator = replies.makeAsyncIterator()
        try await clientSide.send(Data(initializeBody.utf8))
        _ = try await iterator.next()
        for id in [2, 12_345_678_901_234] {
            try await clientSide.send(
                Data(#"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"read_file","arguments":{"workspace":"demo","path":"/workspace/a.yaml"}}}"#.utf8))
            let reply = try JSONValue.parse(try #require(try await iterator.next()))
            #expect(reply["id"] == .number(Double(id)))
            #expect(reply["result"]?["structuredContent"]?["content"] == "data: [1,2]\n", "\(reply.jsonText)")
            #expect(reply["result"]?["_meta"] == nil)
            guard case .array(let content)? = reply["result"]?["content"], let text = content.first?["text"]?.stringValue else {
                Issue.record("no text content in \(reply.jsonText)")
                continue
            }
            #expect(try JSONValue.parse(text)["content"] == "data: [1,2]\n")
        }
        await server.stop()
    }

    @Test func resultsWithoutSuchStringsPassThroughAndKeptOnesAreBounded() throws {
        let exact = ExactResults()
        let plain = CallTool.Result(content: [.text(text: "{}", annotations: nil, _meta: nil)], structuredContent: ["a": "b"] as Value?)
        #expect(try exact.passable(plain) == plain)
        let tricky = CallTool.Result(content: [.text(text: "data:,x", annotations: nil, _meta: nil)])
        for _ in 0..<(ExactResults.capacity + 10) {
            let placeholder = try exact.passable(tricky)
            #expect(placeholder.content.isEmpty && placeholder._meta?[ExactResults.metaKey] != nil)
        }
        #expect(exact.restore(in: Data(#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#.utf8)) == nil)
    }
}
