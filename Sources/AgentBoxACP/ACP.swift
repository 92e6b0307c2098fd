import AgentBoxAPI
import Foundation

/// The Agent Client Protocol (v1) messages AgentBox uses: JSON-RPC 2.0 methods between a client (AgentBox) and an
/// agent (Claude Code, Codex, the mock, ...) over the agent's stdio. Updates the client does not model are kept as
/// JSON, so that a newer agent's messages pass through.
public enum ACP {
    public static let protocolVersion = 1

    public enum Method {
        public static let initialize = "initialize"
        public static let newSession = "session/new"
        public static let loadSession = "session/load"
        public static let prompt = "session/prompt"
        public static let cancel = "session/cancel"
        public static let update = "session/update"
        public static let requestPermission = "session/request_permission"
        public static let elicitation = "session/elicitation"
        public static let readTextFile = "fs/read_text_file"
        public static let writeTextFile = "fs/write_text_file"
        public static let createTerminal = "terminal/create"
        public static let terminalOutput = "terminal/output"
        public static let waitForTerminalExit = "terminal/wait_for_exit"
        public static let killTerminal = "terminal/kill"
        public static let releaseTerminal = "terminal/release"
    }

    public struct InitializeParams: Codable, Sendable, Equatable {
        public struct FileSystem: Codable, Sendable, Equatable {
            public var readTextFile: Bool
            public var writeTextFile: Bool
        }
        public struct ClientCapabilities: Codable, Sendable, Equatable {
            public var fs: FileSystem
            public var terminal: Bool
            /// Form elicitation (`session/elicitation`): the client can ask its user a question (`{form: {}}`).
            public var elicitation: JSONValue?
        }
        public var protocolVersion: Int
        public var clientCapabilities: ClientCapabilities

        /// What AgentBox offers every agent: its files and terminals, served against the workspace.
        public static let agentBox = InitializeParams(
            protocolVersion: ACP.protocolVersion,
            clientCapabilities: .init(fs: .init(readTextFile: true, writeTextFile: true), terminal: true, elicitation: ["form": .object([:])]))
    }

    public struct InitializeResult: Codable, Sendable, Equatable {
        public struct AgentCapabilities: Codable, Sendable, Equatable {
            public var loadSession: Bool?
            /// What prompts may carry besides text: `image`, `audio`, `embeddedContext`.
            public var promptCapabilities: JSONValue?
            public init(loadSession: Bool? = nil, promptCapabilities: JSONValue? = nil) {
                self.loadSession = loadSession
                self.promptCapabilities = promptCapabilities
            }
        }
        public var protocolVersion: Int
        public var agentCapabilities: AgentCapabilities?
        public init(protocolVersion: Int, agentCapabilities: AgentCapabilities?) {
            self.protocolVersion = protocolVersion
            self.agentCapabilities = agentCapabilities
        }
    }

    public struct NewSessionParams: Codable, Sendable, Equatable {
        public var cwd: String
        public var mcpServers: [JSONValue]
        public init(cwd: String, mcpServers: [JSONValue] = []) {
            self.cwd = cwd
            self.mcpServers = mcpServers
        }
    }

    public struct NewSessionResult: Codable, Sendable, Equatable {
        public var sessionId: String
        public init(sessionId: String) { self.sessionId = sessionId }
    }

    /// A piece of a prompt or of a message: text here; other kinds keep their JSON.
    public struct ContentBlock: Codable, Sendable, Equatable {
        public var type: String
        public var text: String?
        public init(text: String) {
            type = "text"
            self.text = text
        }
    }

    public struct PromptParams: Codable, Sendable, Equatable {
        public var sessionId: String
        public var prompt: [ContentBlock]
        public init(sessionId: String, prompt: [ContentBlock]) {
            self.sessionId = sessionId
            self.prompt = prompt
        }
    }

    /// Why a turn ended: `end_turn`, `max_tokens`, `max_turn_requests`, `refusal`, `cancelled`.
    public struct PromptResult: Codable, Sendable, Equatable {
        public var stopReason: String
        public init(stopReason: String) { self.stopReason = stopReason }
    }

    public struct CancelParams: Codable, Sendable, Equatable {
        public var sessionId: String
        public init(sessionId: String) { self.sessionId = sessionId }
    }

    /// `session/update`: `update.sessionUpdate` names the kind (`agent_message_chunk`, `tool_call`,
    /// `tool_call_update`, `plan`, ...); the update stays JSON.
    public struct SessionNotification: Codable, Sendable, Equatable {
        public var sessionId: String
        public var update: JSONValue
        public init(sessionId: String, update: JSONValue) {
            self.sessionId = sessionId
            self.update = update
        }

        public var kind: String? {
            if case .object(let fields) = update, case .string(let kind)? = fields["sessionUpdate"] { return kind }
            return nil
        }
    }

    public struct PermissionOption: Codable, Sendable, Equatable {
        public var optionId: String
        public var name: String
        /// `allow_once`, `allow_always`, `reject_once`, `reject_always`.
        public var kind: String
        public init(optionId: String, name: String, kind: String) {
            self.optionId = optionId
            self.name = name
            self.kind = kind
        }
    }

    public struct RequestPermissionParams: Codable, Sendable, Equatable {
        public var sessionId: String
        public var toolCall: JSONValue
        public var options: [PermissionOption]
        public init(sessionId: String, toolCall: JSONValue, options: [PermissionOption]) {
            self.sessionId = sessionId
            self.toolCall = toolCall
            self.options = options
        }
    }

    public struct RequestPermissionResult: Codable, Sendable, Equatable {
        public struct Outcome: Codable, Sendable, Equatable {
            /// `selected` or `cancelled`.
            public var outcome: String
            public var optionId: String?
        }
        public var outcome: Outcome
        public static func selected(_ optionId: String) -> RequestPermissionResult { .init(outcome: .init(outcome: "selected", optionId: optionId)) }
        public static let cancelled = RequestPermissionResult(outcome: .init(outcome: "cancelled", optionId: nil))
    }

    public struct ReadTextFileParams: Codable, Sendable, Equatable {
        public var sessionId: String
        public var path: String
        public var line: Int?
        public var limit: Int?
    }

    public struct ReadTextFileResult: Codable, Sendable, Equatable {
        public var content: String
        public init(content: String) { self.content = content }
    }

    public struct WriteTextFileParams: Codable, Sendable, Equatable {
        public var sessionId: String
        public var path: String
        public var content: String
    }

    public struct CreateTerminalParams: Codable, Sendable, Equatable {
        public struct Variable: Codable, Sendable, Equatable {
            public var name: String
            public var value: String
        }
        public var sessionId: String
        public var command: String
        public var args: [String]?
        public var env: [Variable]?
        public var cwd: String?
        public var outputByteLimit: Int?
    }

    public struct TerminalParams: Codable, Sendable, Equatable {
        public var sessionId: String
        public var terminalId: String
    }

    public struct CreateTerminalResult: Codable, Sendable, Equatable {
        public var terminalId: String
        public init(terminalId: String) { self.terminalId = terminalId }
    }

    public struct TerminalExitStatus: Codable, Sendable, Equatable {
        public var exitCode: Int?
        public var signal: String?
        public init(exitCode: Int?, signal: String?) {
            self.exitCode = exitCode
            self.signal = signal
        }
    }

    public struct TerminalOutputResult: Codable, Sendable, Equatable {
        public var output: String
        public var truncated: Bool
        public var exitStatus: TerminalExitStatus?
        public init(output: String, truncated: Bool, exitStatus: TerminalExitStatus?) {
            self.output = output
            self.truncated = truncated
            self.exitStatus = exitStatus
        }
    }

    /// `value` as JSON.
    public static func json(_ value: some Encodable) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
    }

    /// `value` (JSON params or a result) decoded as `type`; an `invalidParams` error when it does not fit.
    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue?) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: JSONEncoder().encode(value ?? .null))
        } catch {
            throw JSONRPCError.invalidParams("\(T.self): \(error)")
        }
    }
}
