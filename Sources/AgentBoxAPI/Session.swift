import Foundation

/// What a permission rule does with an agent's request to use a tool.
public enum PermissionDecision: String, Codable, Sendable, CaseIterable {
    /// Answer "allow once" at once.
    case allow
    /// Answer "reject once" at once.
    case reject
    /// Ask the API (a `permissionRequest` event) and wait for a reply or the timeout.
    case ask
}

/// How a session's permission requests are answered: a decision per ACP tool kind (`read`, `edit`, `delete`,
/// `move`, `search`, `execute`, `think`, `fetch`, `switch_mode`, `other`), a default for the rest, and how long an
/// `ask` waits before it rejects. A session's policy is laid over the server's: unset fields come from it.
public struct PermissionPolicy: Codable, Sendable, Equatable {
    public var rules: [String: PermissionDecision]?
    /// For kinds without a rule.
    public var `default`: PermissionDecision?
    /// How long an `ask` waits for a reply, in milliseconds; then the request is rejected.
    public var timeoutMs: Int?

    public init(rules: [String: PermissionDecision]? = nil, default: PermissionDecision? = nil, timeoutMs: Int? = nil) {
        self.rules = rules
        self.default = `default`
        self.timeoutMs = timeoutMs
    }

    /// The tool kinds of ACP v1.
    public static let toolKinds = ["read", "edit", "delete", "move", "search", "execute", "think", "fetch", "switch_mode", "other"]

    /// `self` with what it leaves unset taken from `base`; rules of `self` win per kind.
    public func laid(over base: PermissionPolicy) -> PermissionPolicy {
        PermissionPolicy(
            rules: (base.rules ?? [:]).merging(rules ?? [:]) { $1 }, default: self.default ?? base.default,
            timeoutMs: timeoutMs ?? base.timeoutMs)
    }

    /// The decision for a tool of `kind` (`nil`: unknown kind).
    public func decision(for kind: String?) -> PermissionDecision {
        if let kind, let rule = rules?[kind] { return rule }
        return self.default ?? .ask
    }

    /// What is wrong with the policy, or `nil`.
    public func validationProblem() -> String? {
        for kind in (rules ?? [:]).keys where !(Self.toolKinds.contains(kind) || kind == "*") {
            return "permission rule for unknown tool kind '\(kind)' (known: \(Self.toolKinds.joined(separator: ", ")))"
        }
        if let timeoutMs, timeoutMs <= 0 || timeoutMs > 86_400_000 { return "permissions.timeoutMs must be 1...86400000, not \(timeoutMs)" }
        return nil
    }

    /// Parses the compact form of `serve --permissions`: `read=allow,search=allow,execute=ask,*=ask`.
    public init(compact: String) throws {
        var rules: [String: PermissionDecision] = [:]
        var fallback: PermissionDecision?
        for part in compact.split(separator: ",") {
            let pieces = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pieces.count == 2, let decision = PermissionDecision(rawValue: pieces[1]) else {
                throw PolicySyntaxError(text: String(part))
            }
            if pieces[0] == "*" { fallback = decision } else { rules[pieces[0]] = decision }
        }
        self.init(rules: rules, default: fallback)
        if let problem = validationProblem() { throw PolicySyntaxError(text: problem) }
    }

    public struct PolicySyntaxError: Error, CustomStringConvertible {
        public let text: String
        public var description: String { "'\(text)' is not KIND=allow|reject|ask" }
    }
}

/// The body of `POST /v1/workspaces/{key}/sessions`.
public struct SessionCreateRequest: Codable, Sendable, Equatable {
    /// The agent's id (`mock`, `claude`, ...).
    public var agent: String
    /// The session's working directory inside the workspace; default `/workspace`.
    public var cwd: String?
    /// Variables for the agent process only (API keys, base URLs). Never stored: after a server restart, pass
    /// them again to `resume`.
    public var env: [String: String]?
    /// MCP servers for the agent, in ACP's form: stdio `{name, command, args, env:[{name, value}]}`, or
    /// `{type:"http"|"sse", name, url, headers:[{name, value}]}`; each agent gets them in its own configuration's
    /// form. The workspace's toolkits come as one more, `agentbox-toolkits` (a reserved name).
    public var mcpServers: [JSONValue]?
    public var model: String?
    public var mode: String?
    /// Text given to the agent before the first prompt, as context.
    public var instructions: String?
    /// `false`: the instructions do not describe the workspace's toolkits (by default they do, briefly).
    public var toolkitsInInstructions: Bool?
    /// This session's permission rules, over the server's.
    public var permissions: PermissionPolicy?

    public init(
        agent: String, cwd: String? = nil, env: [String: String]? = nil, mcpServers: [JSONValue]? = nil, model: String? = nil,
        mode: String? = nil, instructions: String? = nil, toolkitsInInstructions: Bool? = nil, permissions: PermissionPolicy? = nil
    ) {
        self.toolkitsInInstructions = toolkitsInInstructions
        self.agent = agent
        self.cwd = cwd
        self.env = env
        self.mcpServers = mcpServers
        self.model = model
        self.mode = mode
        self.instructions = instructions
        self.permissions = permissions
    }
}

/// What a session does now.
public enum SessionStatus: String, Codable, Sendable {
    /// No turn runs; a prompt may start one.
    case idle
    /// A turn runs.
    case running
    /// Closed: the agent is stopped, the transcript kept. `resume` opens it again.
    case closed
}

/// An agent session in a workspace.
public struct Session: Codable, Sendable, Equatable {
    /// `ses_` and 16 letters or digits.
    public var id: String
    public var workspace: WorkspaceKey
    public var agent: String
    public var status: SessionStatus
    public var createdAt: Date
    /// The agent's own id of the session (ACP `sessionId`), once the agent has started.
    public var agentSessionId: String?
    /// Why the last turn ended: ACP's `end_turn`, `max_tokens`, `max_turn_requests`, `refusal`, `cancelled`, or
    /// AgentBox's `error`.
    public var stopReason: String?
    public var cwd: String
    /// Whether the agent's process runs now (it stops when the workspace sleeps; the next prompt resumes it).
    public var agentRunning: Bool
    /// The permission rules in force (the session's over the server's).
    public var permissions: PermissionPolicy?
    /// The seq of the transcript's latest event (0 when it has none): follow the events after it to see what
    /// comes next.
    /// The session's tokens: its model calls through the LLM gateway when it made any (what the provider counted),
    /// else what the agent reported (``agentUsage``); absent when neither is known.
    public var usage: LLMUsageFigures?
    /// The tokens the agent itself reported for its turns (ACP's `usage` of a prompt's answer), summed.
    public var agentUsage: LLMUsageFigures?
    public var lastEventSeq: Int64
    /// The model and mode asked for (on create, or later with `/model` and `/mode`), else the agent's current ones
    /// as it reported them; absent when neither is known.
    public var model: String?
    public var mode: String?
    /// The models and modes the running agent offers (absent when it has not said).
    public var availableModels: [AgentOption]?
    public var availableModes: [AgentOption]?

    public init(
        id: String, workspace: WorkspaceKey, agent: String, status: SessionStatus, createdAt: Date, agentSessionId: String? = nil,
        stopReason: String? = nil, cwd: String, agentRunning: Bool, permissions: PermissionPolicy? = nil, lastEventSeq: Int64 = 0
    ) {
        self.lastEventSeq = lastEventSeq
        self.id = id
        self.workspace = workspace
        self.agent = agent
        self.status = status
        self.createdAt = createdAt
        self.agentSessionId = agentSessionId
        self.stopReason = stopReason
        self.cwd = cwd
        self.agentRunning = agentRunning
        self.permissions = permissions
    }
}

/// The body of `POST /v1/workspaces/{key}/sessions/{id}/questions/{questionId}`: the reply to an agent's `question`
/// event. `accept` (the default) with `answer`: an object of the question's fields (its `requestedSchema`), or a bare
/// value when the question has one field; `decline` or `cancel` without one.
public struct QuestionReplyRequest: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable, CaseIterable {
        case accept, decline, cancel
    }
    public var answer: JSONValue?
    public var action: Action?
    public init(answer: JSONValue? = nil, action: Action? = nil) {
        self.answer = answer
        self.action = action
    }
}

/// The body of `POST /v1/workspaces/{key}/sessions/{id}/model`.
public struct SessionModelRequest: Codable, Sendable, Equatable {
    public var model: String
    public init(model: String) { self.model = model }
}

/// The body of `POST /v1/workspaces/{key}/sessions/{id}/mode`.
public struct SessionModeRequest: Codable, Sendable, Equatable {
    public var mode: String
    public init(mode: String) { self.mode = mode }
}

/// `GET /v1/workspaces/{key}/sessions`.
public struct SessionList: Codable, Sendable, Equatable {
    public var items: [Session]
    public init(items: [Session]) { self.items = items }
}

/// A piece of a prompt: ACP's content block (`{type:"text", text}`; other types are passed through).
public struct PromptContent: Codable, Sendable, Equatable {
    /// `text`, `image` (`mimeType` and base64 `data`), or `file` (`path`, a file of the workspace).
    public var type: String
    public var text: String?
    public var mimeType: String?
    public var data: String?
    public var path: String?
    public init(type: String = "text", text: String? = nil, mimeType: String? = nil, data: String? = nil, path: String? = nil) {
        self.type = type
        self.text = text
        self.mimeType = mimeType
        self.data = data
        self.path = path
    }
    public static func text(_ text: String) -> PromptContent { PromptContent(text: text) }
    /// An image: its bytes, sent base64.
    public static func image(_ bytes: Data, mimeType: String) -> PromptContent {
        PromptContent(type: "image", mimeType: mimeType, data: bytes.base64EncodedString())
    }
    /// A file of the workspace, by path (`/workspace/...`, or relative to `/workspace`).
    public static func file(_ path: String) -> PromptContent { PromptContent(type: "file", path: path) }
}

/// The body of `POST .../sessions/{id}/prompt`.
public struct PromptRequest: Codable, Sendable, Equatable {
    public var content: [PromptContent]
    public init(content: [PromptContent]) { self.content = content }
    public init(text: String) { self.content = [.text(text)] }
}

/// The answer of a prompt: how the turn ended.
public struct PromptResult: Codable, Sendable, Equatable {
    public var stopReason: String
    /// Set when `stopReason` is `error`: what failed.
    public var error: String?
    public init(stopReason: String, error: String? = nil) {
        self.stopReason = stopReason
        self.error = error
    }
}

/// A reply to a permission request.
public enum PermissionReply: String, Codable, Sendable {
    case once, always, reject
}

/// The body of `POST .../sessions/{id}/permissions/{permissionId}`.
public struct PermissionReplyRequest: Codable, Sendable, Equatable {
    public var reply: PermissionReply
    public init(reply: PermissionReply) { self.reply = reply }
}

/// The optional body of `POST .../sessions/{id}/resume`.
public struct SessionResumeRequest: Codable, Sendable, Equatable {
    /// Variables for the agent process (they are not stored, so a resume after a restart needs them again).
    public var env: [String: String]?
    public init(env: [String: String]? = nil) { self.env = env }
}

/// Who an event of a session's transcript comes from.
public enum SessionEventSender: String, Codable, Sendable {
    case client, agent, server
}

/// One event of a session's transcript.
public struct SessionEvent: Codable, Sendable, Equatable {
    /// 1, 2, 3, ... within the session; the SSE `id:`.
    public var seq: Int64
    public var at: Date
    public var sender: SessionEventSender
    /// `prompt`, `agent_message_chunk`, `tool_call`, `tool_call_update`, `plan`, `permission_request`,
    /// `permission_reply`, `turn_end`, `error`, ... (see docs/AGENTS.md).
    public var type: String
    /// The ACP message as sent or received, or AgentBox's own object for server events.
    public var payload: JSONValue

    public init(seq: Int64, at: Date, sender: SessionEventSender, type: String, payload: JSONValue) {
        self.seq = seq
        self.at = at
        self.sender = sender
        self.type = type
        self.payload = payload
    }
}

/// `GET .../sessions/{id}/events`.
public struct SessionEventPage: Codable, Sendable, Equatable {
    public var items: [SessionEvent]
    /// The `after` of the next page, when there may be more.
    public var nextCursor: String?
    public init(items: [SessionEvent], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// `sessionEvent` on the workspace stream: an event of one of its sessions, once it is stored.
public struct SessionEventNotice: Codable, Sendable, Equatable {
    public var sessionId: String
    public var seq: Int64
    public var event: SessionEvent
    public init(sessionId: String, seq: Int64, event: SessionEvent) {
        self.sessionId = sessionId
        self.seq = seq
        self.event = event
    }
}

/// `permissionRequest` on the workspace stream: an agent asks, and a reply is awaited.
public struct PermissionRequestNotice: Codable, Sendable, Equatable {
    public var sessionId: String
    public var permissionId: String
    public var toolCall: JSONValue
    public var options: [JSONValue]
    public init(sessionId: String, permissionId: String, toolCall: JSONValue, options: [JSONValue]) {
        self.sessionId = sessionId
        self.permissionId = permissionId
        self.toolCall = toolCall
        self.options = options
    }
}

/// An agent this server can run (`GET /v1/agents`).
public struct AgentInfo: Codable, Sendable, Equatable {
    public struct Capabilities: Codable, Sendable, Equatable {
        public var loadSession: Bool
        public var permissions: Bool
        /// Whether it reads and writes files through AgentBox (ACP `fs/*`) rather than with its own tools.
        public var fileSystem: Bool
        /// Whether it runs commands through AgentBox (ACP `terminal/*`) rather than with its own tools.
        public var terminal: Bool
        public init(loadSession: Bool, permissions: Bool, fileSystem: Bool, terminal: Bool) {
            self.loadSession = loadSession
            self.permissions = permissions
            self.fileSystem = fileSystem
            self.terminal = terminal
        }
    }
    public var id: String
    public var name: String
    public var installed: Bool
    public var version: String?
    public var `protocol`: String
    public var capabilities: Capabilities
    /// Whether this server has a source to install it from (absent: it needs no installing, or it is installed).
    public var installable: Bool?
    /// Why it cannot be installed here, when it cannot.
    public var notInstallableReason: String?
    /// What keeps it from working everywhere, when something does (Amp's turns need Amp's own service).
    public var limitation: String?
    public init(id: String, name: String, installed: Bool, version: String?, protocol: String, capabilities: Capabilities) {
        self.id = id
        self.name = name
        self.installed = installed
        self.version = version
        self.protocol = `protocol`
        self.capabilities = capabilities
    }
}

/// The body of `POST /v1/agents/{id}/install` (optional).
public struct AgentInstallRequest: Codable, Sendable, Equatable {
    /// The package version to install (`claude-agent-sdk==0.1.40` for Claude Code): an installed agent of another
    /// package version is replaced. Absent: the newest, and an installed agent is left as it is.
    public var version: String?
    /// Install again even when it is installed (at the same version).
    public var reinstall: Bool?
    public init(version: String? = nil, reinstall: Bool? = nil) {
        self.version = version
        self.reinstall = reinstall
    }
}

/// A step of an install, as `POST /v1/agents/{id}/install` streams it (`progress` events): its phase (`check`,
/// `path`, `npm`, `pypi`, `download`, `extract`, `url`), a line saying what happens, and while a download runs, the
/// bytes received of the total.
public struct AgentInstallProgress: Codable, Sendable, Equatable {
    public var phase: String
    public var line: String
    public var bytes: Int64?
    public var totalBytes: Int64?
    public init(phase: String, line: String, bytes: Int64? = nil, totalBytes: Int64? = nil) {
        self.phase = phase
        self.line = line
        self.bytes = bytes
        self.totalBytes = totalBytes
    }
}

/// A model or mode an agent offers.
public struct AgentOption: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String?
    public init(id: String, name: String, description: String? = nil) {
        self.id = id
        self.name = name
        self.description = description
    }
}

/// `GET /v1/agents/{id}`: an agent, whether it is installed (and being installed), and whether it has credentials.
public struct AgentDetails: Codable, Sendable, Equatable {
    /// Whether the agent can reach a model: `needed` false for agents that call none (the mock); else `available`
    /// when the server's environment has one of `variables`, or the LLM gateway serves its provider (`gateway`).
    /// Names only, never values.
    public struct Credentials: Codable, Sendable, Equatable {
        public var needed: Bool
        public var available: Bool
        /// Where they come from: `gateway:anthropic`, `environment:ANTHROPIC_API_KEY`, ...
        public var sources: [String]
        public init(needed: Bool, available: Bool, sources: [String]) {
            self.needed = needed
            self.available = available
            self.sources = sources
        }
    }
    public var id: String
    public var name: String
    public var installed: Bool
    /// The agent's own version (its `--version`), when installed.
    public var version: String?
    /// The version of the package it was installed from, when it was.
    public var packageVersion: String?
    public var `protocol`: String
    public var capabilities: AgentInfo.Capabilities
    /// Whether an install is under way (joining it with `POST .../install` follows the same one).
    public var installing: Bool
    /// Where an install looks, in order (`path`, `npm`, `pypi:claude-agent-sdk`, `url`); empty for built-in agents.
    public var installSources: [String]
    /// Whether an install could find it here, and why not when it could not (see ``AgentInfo``).
    public var installable: Bool?
    public var notInstallableReason: String?
    public var limitation: String?
    /// Whether the server has credentials for the agent's model (see ``credentials``).
    public var credentialsAvailable: Bool
    public var credentials: Credentials
    /// The models and modes the agent offered in its latest session on this server (empty until one has started).
    public var models: [AgentOption]
    public var modes: [AgentOption]
    public init(
        agent: AgentInfo, packageVersion: String?, installing: Bool, installSources: [String], credentials: Credentials, models: [AgentOption] = [],
        modes: [AgentOption] = []
    ) {
        self.credentialsAvailable = credentials.available
        self.models = models
        self.modes = modes
        self.id = agent.id
        self.name = agent.name
        self.installed = agent.installed
        self.installable = agent.installable
        self.notInstallableReason = agent.notInstallableReason
        self.limitation = agent.limitation
        self.version = agent.version
        self.protocol = agent.protocol
        self.capabilities = agent.capabilities
        self.packageVersion = packageVersion
        self.installing = installing
        self.installSources = installSources
        self.credentials = credentials
    }
}

/// `GET /v1/agents`.
public struct AgentList: Codable, Sendable, Equatable {
    public var items: [AgentInfo]
    public init(items: [AgentInfo]) { self.items = items }
}

/// The answer of `POST /v1/agents/{id}/install`.
public struct AgentInstallResult: Codable, Sendable, Equatable {
    public var id: String
    public var installed: Bool
    /// Where the binary came from: `path`, `pypi:claude-agent-sdk`, `installed` (it was there), `built-in`.
    public var source: String
    public var version: String?
    /// The version of the package it came from (`pypi:claude-agent-sdk` 0.1.40), when it came from one.
    public var packageVersion: String?
    /// The installed binary (on the server); absent for agents that need none.
    public var path: String?
    /// Each step tried, in order.
    public var log: [String]
    public init(
        id: String, installed: Bool, source: String, version: String?, packageVersion: String? = nil, path: String? = nil, log: [String]
    ) {
        self.path = path
        self.packageVersion = packageVersion
        self.id = id
        self.installed = installed
        self.source = source
        self.version = version
        self.log = log
    }
}

extension SessionEvent {
    /// Appends the event's JSON, as AgentBox's encoder writes it (keys sorted), to `out`, with `payloadJSON` (the
    /// payload's JSON text, already valid) copied as it is. Used where events are sent in bulk (transcript pages, SSE
    /// fan-out), where Foundation's encoder was most of the cost.
    public static func writeJSON(
        seq: Int64, at: Date, sender: String, type: String, payloadJSON: some Collection<UInt8>, into out: inout [UInt8]
    ) {
        out.append(contentsOf: #"{"at":""#.utf8)
        out.append(contentsOf: RFC3339.format(at).utf8)
        out.append(contentsOf: #"","payload":"#.utf8)
        out.append(contentsOf: payloadJSON)
        out.append(contentsOf: #","sender":"#.utf8)
        JSONValue.writeString(sender, into: &out)
        out.append(contentsOf: #","seq":"#.utf8)
        out.append(contentsOf: String(seq).utf8)
        out.append(contentsOf: #","type":"#.utf8)
        JSONValue.writeString(type, into: &out)
        out.append(UInt8(ascii: "}"))
    }

    /// The event's JSON, as ``writeJSON(seq:at:sender:type:payloadJSON:into:)`` writes it.
    public var jsonBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        Self.writeJSON(seq: seq, at: at, sender: sender.rawValue, type: type, payloadJSON: payload.jsonBytes, into: &out)
        return out
    }
}

/// An open ACP server (`GET /v1/acp`): sandbox-agent's ACP over HTTP, driving an agent in a workspace.
public struct ACPServerInfo: Codable, Sendable, Equatable {
    public var serverId: String
    public var agent: String
    public var createdAtMs: Int64
    /// The workspace it runs in, and the session whose transcript holds its envelopes.
    public var workspace: WorkspaceKey
    public var sessionId: String
    public init(serverId: String, agent: String, createdAtMs: Int64, workspace: WorkspaceKey, sessionId: String) {
        self.serverId = serverId
        self.agent = agent
        self.createdAtMs = createdAtMs
        self.workspace = workspace
        self.sessionId = sessionId
    }
}

/// `GET /v1/acp`.
public struct ACPServerList: Codable, Sendable, Equatable {
    public var servers: [ACPServerInfo]
    public init(servers: [ACPServerInfo]) { self.servers = servers }
}
