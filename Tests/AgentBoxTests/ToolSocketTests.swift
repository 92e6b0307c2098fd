import AgentBoxAPI
import Foundation
import NIOCore
import Testing

@testable import AgentBox

/// The tools socket's request reader (both modes) and the pieces of the toolkit MCP server that need no sandbox.
struct ToolSocketTests {
    func feed(_ text: String, in pieces: Int = 1) throws(ToolSocketRequest.Malformed) -> (ToolSocketRequest?, ToolSocketRequest.Parser) {
        var parser = ToolSocketRequest.Parser()
        let bytes = Array(text.utf8)
        let size = max(1, (bytes.count + pieces - 1) / pieces)
        var request: ToolSocketRequest?
        for start in stride(from: 0, to: bytes.count, by: size) where request == nil {
            request = try parser.feed(ByteBuffer(bytes: bytes[start..<min(bytes.count, start + size)]))
        }
        return (request, parser)
    }

    @Test func aCommandInAnyNumberOfPieces() throws {
        for pieces in [1, 3, 17, 64] {
            let (request, _) = try feed("AGENTBOX-TOOL 1\nT3\nwebS7\nses_abcA6\nsearchA3\n--q.\n", in: pieces)
            #expect(request == ToolSocketRequest(toolkit: "web", sessionId: "ses_abc", arguments: ["search", "--q"]))
        }
    }

    @Test func anMCPConnectionKeepsWhatFollowsItsHeader() throws {
        let (request, parser) = try feed("AGENTBOX-MCP 1\nS7\nses_abc.\n{\"jsonrpc\":\"2.0\"}\n")
        #expect(request == ToolSocketRequest(kind: .mcp, toolkit: "", sessionId: "ses_abc", arguments: []))
        #expect(String(decoding: parser.leftover, as: UTF8.self) == "{\"jsonrpc\":\"2.0\"}\n")
        let (bare, _) = try feed("AGENTBOX-MCP 1\n.\n")
        #expect(bare?.kind == .mcp && bare?.sessionId == nil)
    }

    @Test func malformedRequestsAreRefused() {
        for text in ["HELLO\n", "AGENTBOX-TOOL 1\n.\n", "AGENTBOX-TOOL 1\nQ1\nx.\n", "AGENTBOX-MCP 1\nT3\nweb.\n", "AGENTBOX-MCP 1\nA1\nx.\n",
                     "AGENTBOX-TOOL 1\nT99999999999999\n", "AGENTBOX-TOOL 1\n" + String(repeating: "9", count: 40)]
        {
            #expect(throws: ToolSocketRequest.Malformed.self, "\(text.prefix(40))") { _ = try feed(text) }
        }
    }

    @Test func mcpToolNamesSplitAtTheFirstUnderscore() {
        #expect(ToolkitMCPName.split("github_create_issue")! == ("github", "create_issue"))
        #expect(ToolkitMCPName.split("web-tools_search")! == ("web-tools", "search"))
        for name in ["search", "_search", "github_", "Github_x", "github_Create", "a b_c", ""] {
            #expect(ToolkitMCPName.split(name) == nil, "\(name)")
        }
    }

    @Test func theBriefingNamesEveryToolkitWithinItsBudget() throws {
        let schema: JSONValue = ["type": "object"]
        let handler = ToolHandler.client(ClientToolHandler())
        func toolkit(_ name: String, _ description: String, tools: Int = 1) -> Toolkit {
            Toolkit(
                name: name, description: description,
                tools: (0..<tools).map { ToolDefinition(name: "t\($0)", description: "Tool \($0)\nsecond line", inputSchema: schema, handler: handler) },
                createdAt: Date(), updatedAt: Date())
        }
        #expect(WorkspaceManager.toolkitBriefing([], mcp: true) == nil)
        let one = try #require(WorkspaceManager.toolkitBriefing([toolkit("web", "Web tools.")], mcp: true))
        #expect(one.contains("agentbox-toolkits") && one.contains("\n- web: Web tools. Tools: t0 (Tool 0).") && !one.contains("second line"))
        let commandsOnly = try #require(WorkspaceManager.toolkitBriefing([toolkit("web", "Web tools.")], mcp: false))
        #expect(!commandsOnly.contains("MCP") && commandsOnly.contains("agentbox-TOOLKIT"))
        // Forty toolkits of 64 tools each: the text stays near 4 KiB and names every toolkit.
        let many = (0..<40).map { toolkit("kit\($0)", String(repeating: "long description ", count: 30), tools: 64) }
        let text = try #require(WorkspaceManager.toolkitBriefing(many, mcp: true))
        #expect(text.utf8.count < 4096 + 40 * 8, "\(text.utf8.count) bytes")
        #expect((0..<40).allSatisfy { text.contains("kit\($0)") })
    }
}
