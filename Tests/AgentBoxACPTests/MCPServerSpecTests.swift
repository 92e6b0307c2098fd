@testable import AgentBoxACP
import AgentBoxAPI
import Foundation
import Testing

/// ACP's `mcpServers` checked, and turned into Claude Code's `--mcp-config` and Codex's `mcp_servers`.
struct MCPServerSpecTests {
    let acp: [JSONValue] = [
        ["name": "fixture", "command": "/usr/bin/python3", "args": ["/workspace/server.py", "-v"], "env": [["name": "GREETING", "value": "hi"]]],
        ["type": "http", "name": "remote", "url": "http://host.agentbox.internal:8080/v1/mcp", "headers": [["name": "Authorization", "value": "Bearer t"]]],
        ["type": "sse", "name": "events", "url": "https://example.com/sse", "headers": []],
        ["type": "stdio", "name": "bare", "command": "tool"],
    ]

    @Test func parsesEachTransport() throws {
        let specs = try MCPServerSpec.parse(acp)
        #expect(specs == [
            MCPServerSpec(name: "fixture", transport: .stdio(command: "/usr/bin/python3", args: ["/workspace/server.py", "-v"], env: [.init(name: "GREETING", value: "hi")])),
            MCPServerSpec(name: "remote", transport: .http(url: "http://host.agentbox.internal:8080/v1/mcp", headers: [.init(name: "Authorization", value: "Bearer t")])),
            MCPServerSpec(name: "events", transport: .sse(url: "https://example.com/sse", headers: [])),
            MCPServerSpec(name: "bare", transport: .stdio(command: "tool", args: [], env: [])),
        ])
    }

    @Test func claudeConfig() throws {
        let config = ClaudeCodeAdapter.mcpConfig(try MCPServerSpec.parse(acp))
        #expect(config == [
            "mcpServers": [
                "fixture": ["type": "stdio", "command": "/usr/bin/python3", "args": ["/workspace/server.py", "-v"], "env": ["GREETING": "hi"]],
                "remote": ["type": "http", "url": "http://host.agentbox.internal:8080/v1/mcp", "headers": ["Authorization": "Bearer t"]],
                "events": ["type": "sse", "url": "https://example.com/sse", "headers": [:]],
                "bare": ["type": "stdio", "command": "tool", "args": [], "env": [:]],
            ],
        ])
    }

    @Test func codexConfig() throws {
        let config = try CodexAdapter.mcpServersConfig(try MCPServerSpec.parse(acp.filter { $0["type"] != "sse" }))
        #expect(config == [
            "fixture": ["command": "/usr/bin/python3", "args": ["/workspace/server.py", "-v"], "env": ["GREETING": "hi"], "startup_timeout_sec": 45],
            "remote": ["url": "http://host.agentbox.internal:8080/v1/mcp", "http_headers": ["Authorization": "Bearer t"], "startup_timeout_sec": 45],
            "bare": ["command": "tool", "args": [], "env": [:], "startup_timeout_sec": 45],
        ])
    }

    @Test func codexRefusesSSEByName() throws {
        let error = #expect(throws: JSONRPCError.self) { try CodexAdapter.mcpServersConfig(try MCPServerSpec.parse(acp)) }
        #expect(error?.code == -32602 && error?.message.contains("'events' is an sse server") == true, "\(String(describing: error))")
    }

    @Test(arguments: [
        (["not an object"] as [JSONValue], "mcpServers[0] is not an object"),
        ([["command": "/bin/x"]], "mcpServers[0] has no name"),
        ([["name": "", "command": "/bin/x"]], "mcpServers[0] has no name"),
        ([["name": "a"]], "mcpServers[0] ('a') has no command"),
        ([["name": "a", "command": 3]], "mcpServers[0] ('a') has no command"),
        ([["name": "a", "command": "/bin/x", "args": "-v"]], "args must be an array of strings"),
        ([["name": "a", "command": "/bin/x", "args": [1]]], "args must be strings"),
        ([["name": "a", "command": "/bin/x", "env": ["K": "V"]]], "env must be an array"),
        ([["name": "a", "command": "/bin/x", "env": [["name": "K"]]]], "each of env must be {\"name\": string, \"value\": string}"),
        ([["type": "http", "name": "h", "url": "http://x", "headers": [["Authorization", "t"]]]], "each of headers must be"),
        ([["type": "http", "name": "h", "url": "http://x", "headers": ["Authorization": "t"]]], "headers must be an array"),
        ([["type": "http", "name": "h"]], "mcpServers[0] ('h') has no url"),
        ([["type": "http", "name": "h", "url": "ftp://x"]], "has no url"),
        ([["type": "ws", "name": "w", "url": "ws://x"]], "unknown type \"ws\""),
        ([["name": "a", "command": "/bin/x"], ["name": "a", "command": "/bin/y"]], "two servers named 'a'"),
    ] as [([JSONValue], String)])
    func badEntriesAreInvalidParams(servers: [JSONValue], message: String) throws {
        let error = #expect(throws: JSONRPCError.self) { try MCPServerSpec.parse(servers) }
        #expect(error?.code == -32602, "\(String(describing: error))")
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }
}
