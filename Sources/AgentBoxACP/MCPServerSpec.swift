import AgentBoxAPI

/// One MCP server of an ACP `session/new` or `session/load` (its `mcpServers`), checked: what each agent's own
/// configuration is made from (``ClaudeCodeAdapter/mcpConfig(_:)``, ``CodexAdapter/mcpServersConfig(_:)``, the
/// mock agent's own client).
///
/// ACP's three shapes: stdio `{"name", "command", "args": [..], "env": [{"name", "value"}]}` (no `type`, or
/// `"stdio"`), and `{"type": "http" | "sse", "name", "url", "headers": [{"name", "value"}]}`.
public struct MCPServerSpec: Sendable, Equatable {
    /// An environment variable or an HTTP header.
    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public enum Transport: Sendable, Equatable {
        case stdio(command: String, args: [String], env: [Field])
        case http(url: String, headers: [Field])
        case sse(url: String, headers: [Field])
    }

    public var name: String
    public var transport: Transport

    public init(name: String, transport: Transport) {
        self.name = name
        self.transport = transport
    }

    /// Checks ACP's `mcpServers`; the error (invalid params) names the entry and what is wrong with it.
    public static func parse(_ servers: [JSONValue]) throws(JSONRPCError) -> [MCPServerSpec] {
        var seen: Set<String> = []
        var specs: [MCPServerSpec] = []
        for (index, server) in servers.enumerated() {
            let spec = try parse(server, at: index)
            guard seen.insert(spec.name).inserted else { throw JSONRPCError.invalidParams("mcpServers has two servers named '\(spec.name)'") }
            specs.append(spec)
        }
        return specs
    }

    private static func parse(_ server: JSONValue, at index: Int) throws(JSONRPCError) -> MCPServerSpec {
        guard case .object = server else { throw JSONRPCError.invalidParams("mcpServers[\(index)] is not an object") }
        guard let name = server["name"]?.stringValue, !name.isEmpty else {
            throw JSONRPCError.invalidParams("mcpServers[\(index)] has no name (a non-empty string)")
        }
        let at = "mcpServers[\(index)] ('\(name)')"
        switch server["type"] ?? .null {
        case .null, .string("stdio"):
            guard let command = server["command"]?.stringValue, !command.isEmpty else {
                throw JSONRPCError.invalidParams("\(at) has no command (a non-empty string)")
            }
            var args: [String] = []
            switch server["args"] {
            case nil, .null: break
            case .array(let items):
                for item in items {
                    guard let arg = item.stringValue else { throw JSONRPCError.invalidParams("\(at): args must be strings") }
                    args.append(arg)
                }
            default: throw JSONRPCError.invalidParams("\(at): args must be an array of strings")
            }
            return MCPServerSpec(name: name, transport: .stdio(command: command, args: args, env: try fields(server["env"], "env", at)))
        case .string("http"), .string("sse"):
            guard let url = server["url"]?.stringValue, url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw JSONRPCError.invalidParams("\(at) has no url (http:// or https://)")
            }
            let headers = try fields(server["headers"], "headers", at)
            return MCPServerSpec(name: name, transport: server["type"] == "http" ? .http(url: url, headers: headers) : .sse(url: url, headers: headers))
        default:
            throw JSONRPCError.invalidParams("\(at) has an unknown type \(server["type"]?.jsonText ?? "") (stdio, http or sse)")
        }
    }

    /// ACP's `[{"name", "value"}]` list of environment variables or headers.
    private static func fields(_ value: JSONValue?, _ key: String, _ at: String) throws(JSONRPCError) -> [Field] {
        switch value {
        case nil, .null: return []
        case .array(let items):
            var fields: [Field] = []
            for item in items {
                guard let name = item["name"]?.stringValue, !name.isEmpty, let value = item["value"]?.stringValue else {
                    throw JSONRPCError.invalidParams("\(at): each of \(key) must be {\"name\": string, \"value\": string}, not \(item.jsonText)")
                }
                fields.append(Field(name: name, value: value))
            }
            return fields
        default:
            throw JSONRPCError.invalidParams("\(at): \(key) must be an array of {\"name\", \"value\"}")
        }
    }
}

extension [MCPServerSpec.Field] {
    /// The fields as a JSON object (the last of a repeated name wins).
    var object: JSONValue {
        .object(Dictionary(map { ($0.name, JSONValue.string($0.value)) }, uniquingKeysWith: { $1 }))
    }
}
