import Foundation

/// Who answers a tool's calls.
public enum ToolHandler: Codable, Sendable, Equatable {
    /// A webhook: the server POSTs `{tool, input, workspace, sessionId?, callId}` to `url`; a 2xx JSON body is the output.
    case http(HTTPToolHandler)
    /// A connected client: calls go out on `GET /v1/toolkits/{name}/calls` (SSE) and come back by POST.
    case client(ClientToolHandler)

    private enum CodingKeys: String, CodingKey { case type }

    public init(from decoder: any Decoder) throws {
        let type = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .type)
        switch type {
        case "http": self = .http(try HTTPToolHandler(from: decoder))
        case "client": self = .client(try ClientToolHandler(from: decoder))
        default:
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath + [CodingKeys.type], debugDescription: "handler.type must be http or client, not '\(type)'"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .http(let handler):
            try container.encode("http", forKey: .type)
            try handler.encode(to: encoder)
        case .client(let handler):
            try container.encode("client", forKey: .type)
            try handler.encode(to: encoder)
        }
    }

    /// How long a call may take before it ends as `timeout`.
    public var timeoutMs: Int? {
        switch self {
        case .http(let handler): handler.timeoutMs
        case .client(let handler): handler.timeoutMs
        }
    }
}

/// `{type:"http", url, headers?, timeoutMs?}`.
public struct HTTPToolHandler: Codable, Sendable, Equatable {
    public var url: String
    /// Sent with every call (for example the webhook's own credential). Stored by the server; never shown to workspaces.
    public var headers: [String: String]?
    public var timeoutMs: Int?

    public init(url: String, headers: [String: String]? = nil, timeoutMs: Int? = nil) {
        self.url = url
        self.headers = headers
        self.timeoutMs = timeoutMs
    }
}

/// `{type:"client", timeoutMs?}`.
public struct ClientToolHandler: Codable, Sendable, Equatable {
    public var timeoutMs: Int?
    public init(timeoutMs: Int? = nil) { self.timeoutMs = timeoutMs }
}

/// One tool of a toolkit.
public struct ToolDefinition: Codable, Sendable, Equatable {
    /// `[a-z][a-z0-9_-]{0,63}`: the command's first argument inside the workspace.
    public var name: String
    public var description: String
    /// A JSON Schema (an object schema) that every call's input is checked against before the handler sees it.
    public var inputSchema: JSONValue
    public var handler: ToolHandler

    public init(name: String, description: String, inputSchema: JSONValue, handler: ToolHandler) {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
        self.handler = handler
    }
}

/// The body of `PUT /v1/toolkits/{name}`.
public struct ToolkitRequest: Codable, Sendable, Equatable {
    public var description: String
    public var tools: [ToolDefinition]

    public init(description: String, tools: [ToolDefinition]) {
        self.description = description
        self.tools = tools
    }
}

/// A set of tools that run on the host side and that the workspaces it is attached to may call.
public struct Toolkit: Codable, Sendable, Equatable {
    /// `[a-z][a-z0-9-]{0,31}`; inside a workspace the command is `agentbox-{name}`.
    public var name: String
    public var description: String
    /// The tools, with handlers' headers left out.
    public var tools: [ToolDefinition]
    public var createdAt: Date
    public var updatedAt: Date

    public init(name: String, description: String, tools: [ToolDefinition], createdAt: Date, updatedAt: Date) {
        self.name = name
        self.description = description
        self.tools = tools
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// Whether `name` is a valid toolkit name.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 32, first >= 0x61, first <= 0x7A else { return false }
        return name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
    }

    /// Whether `name` is a valid tool name.
    public static func isValidToolName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 64, first >= 0x61, first <= 0x7A else { return false }
        return name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }
    }
}

/// `{items}` of `GET /v1/toolkits`.
public struct ToolkitList: Codable, Sendable, Equatable {
    public var items: [Toolkit]
    public init(items: [Toolkit]) { self.items = items }
}

/// How a tool call ended.
public enum ToolCallStatus: String, Codable, Sendable {
    case ok, error, timeout
}

/// One recorded call of a workspace to a tool.
public struct ToolCall: Codable, Sendable, Equatable {
    public var callId: String
    public var toolkit: String
    public var tool: String
    public var input: JSONValue
    public var status: ToolCallStatus
    public var durationMs: Int
    public var at: Date
    public var sessionId: String?
    /// What went wrong, for `error` and `timeout`.
    public var error: String?

    public init(
        callId: String, toolkit: String, tool: String, input: JSONValue, status: ToolCallStatus, durationMs: Int, at: Date,
        sessionId: String? = nil, error: String? = nil
    ) {
        self.callId = callId
        self.toolkit = toolkit
        self.tool = tool
        self.input = input
        self.status = status
        self.durationMs = durationMs
        self.at = at
        self.sessionId = sessionId
        self.error = error
    }
}

/// A page of `GET /v1/workspaces/{key}/tool-calls`, oldest first.
public struct ToolCallPage: Codable, Sendable, Equatable {
    public var items: [ToolCall]
    /// The `after` of the next page; absent on the last.
    public var nextCursor: String?
    public init(items: [ToolCall], nextCursor: String? = nil) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// `toolCall` on `GET /v1/toolkits/{name}/calls`: a call for a `client` tool, to be answered by POST.
public struct ToolCallRequest: Codable, Sendable, Equatable {
    public var callId: String
    public var tool: String
    public var input: JSONValue
    public var workspace: WorkspaceKey
    public var sessionId: String?

    public init(callId: String, tool: String, input: JSONValue, workspace: WorkspaceKey, sessionId: String? = nil) {
        self.callId = callId
        self.tool = tool
        self.input = input
        self.workspace = workspace
        self.sessionId = sessionId
    }
}

/// The body of `POST /v1/toolkits/{name}/calls/{callId}`: the output, or an error.
public struct ToolCallReply: Codable, Sendable, Equatable {
    public struct Failure: Codable, Sendable, Equatable {
        public var message: String
        public init(message: String) { self.message = message }
    }

    public var output: JSONValue?
    public var error: Failure?

    public init(output: JSONValue? = nil, error: Failure? = nil) {
        self.output = output
        self.error = error
    }
}
