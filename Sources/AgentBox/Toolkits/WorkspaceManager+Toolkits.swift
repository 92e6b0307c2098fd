import AgentBoxAPI
import AgentBoxSandbox
import Logging
import AgentBoxStore
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Host toolkits: tools that run on the host side (a webhook, or a connected client) and that the workspaces they are
/// attached to call — as `agentbox-{toolkit}` commands inside the workspace, or as MCP tools of their agents.
///
/// A call's input is checked against the tool's JSON Schema before any handler sees it; every call is recorded in the
/// workspace's history with its status and duration; each has a timeout (default 60 s), and a hung handler holds only
/// its own call.
extension WorkspaceManager {
    /// Calls kept per workspace (older ones are deleted as new ones come).
    public static let toolCallRetention = 1000
    /// The most output (JSON bytes) a handler may answer with.
    public static let maxToolOutputBytes = 1 << 20
    /// The most tools a toolkit may have.
    public static let maxToolsPerToolkit = 64
    /// A call's timeout when its handler sets none.
    public static let defaultToolTimeout: Duration = .seconds(60)

    // MARK: Toolkits

    /// Registers toolkit `name`, or replaces it. Every tool's input schema must be one AgentBox can enforce.
    public func putToolkit(name: String, _ request: ToolkitRequest) async throws -> (toolkit: Toolkit, created: Bool) {
        try checkOpen()
        guard Toolkit.isValidName(name) else {
            throw AgentBoxError(.invalidArgument, "name: a toolkit's name is [a-z][a-z0-9-]{0,31}, not '\(name.prefix(80))'")
        }
        try Self.validate(request)
        let now = Date()
        let existing = try await store.toolkit(name: name)
        let toolkit = Toolkit(name: name, description: request.description, tools: request.tools, createdAt: existing?.createdAt ?? now, updatedAt: now)
        let created = try await store.putToolkit(toolkit)
        return (Self.shown(toolkit), created)
    }

    /// Every toolkit, by name (handlers' headers left out).
    public func toolkits() async throws -> ToolkitList {
        try checkOpen()
        return ToolkitList(items: try await store.toolkits().map(Self.shown))
    }

    /// One toolkit (handlers' headers left out).
    public func toolkit(name: String) async throws -> Toolkit {
        try checkOpen()
        return Self.shown(try await storedToolkit(name))
    }

    /// Deletes a toolkit. Workspaces that attach it keep its name; their calls to it fail until it is registered again.
    public func deleteToolkit(name: String) async throws {
        try checkOpen()
        guard try await store.deleteToolkit(name: name) else { throw Self.toolkitNotFound(name) }
    }

    /// The calls of `toolkit`'s `client` tools, for one connected client (see ``ToolCallRouter``).
    public func toolCallRequests(toolkit: String) async throws -> AsyncStream<ToolCallRequest> {
        try checkOpen()
        _ = try await storedToolkit(toolkit)
        return toolCallRouter.subscribe(toolkit: toolkit)
    }

    /// A client's answer to a call of one of `toolkit`'s `client` tools.
    public func replyToolCall(toolkit: String, callId: String, _ reply: ToolCallReply) throws {
        try checkOpen()
        let result: Result<JSONValue, ToolCallFailure>
        switch (reply.output, reply.error) {
        case (let output?, nil):
            guard output.approximateSize <= Self.maxToolOutputBytes else {
                throw AgentBoxError(.tooLarge, "output: at most \(Self.maxToolOutputBytes) bytes")
            }
            result = .success(output)
        case (nil, let error?): result = .failure(.error(String(error.message.prefix(4096))))
        default: throw AgentBoxError(.invalidArgument, "give output or error, not both or neither")
        }
        guard toolCallRouter.reply(toolkit: toolkit, callId: callId, result) else {
            throw AgentBoxError(.notFound, "no call '\(callId.prefix(80))' of toolkit '\(toolkit.prefix(80))' waits for an answer (answered, timed out, or unknown)")
        }
    }

    /// The workspace's tool calls numbered above `after`, oldest first.
    public func toolCalls(key: WorkspaceKey, after: Int64 = 0, limit: Int = 100) async throws -> ToolCallPage {
        try checkOpen()
        guard (1...1000).contains(limit) else { throw AgentBoxError(.invalidArgument, "limit must be 1...1000, not \(limit)") }
        guard after >= 0 else { throw AgentBoxError(.invalidArgument, "after must be 0 or more, not \(after)") }
        try await requireWorkspace(key)
        let rows = try await store.toolCalls(of: key, after: after, limit: limit + 1)
        let page = rows.prefix(limit)
        return ToolCallPage(items: page.map(\.call), nextCursor: rows.count > limit ? page.last.map { String($0.seq) } : nil)
    }

    // MARK: Calling

    /// Calls `tool` of `toolkit` for workspace `key` with `input`, and records the call. The toolkit must be attached
    /// to the workspace; the input must satisfy the tool's schema (else nothing is sent to the handler).
    public func callTool(
        key: WorkspaceKey, toolkit name: String, tool toolName: String, input: JSONValue, sessionId: String? = nil
    ) async throws -> JSONValue {
        try await call(try await attachedToolkit(key: key, name), tool: toolName, input: input, key: key, sessionId: sessionId)
    }

    /// Toolkit `name`, when it is attached to workspace `key` (which is loaded, not booted).
    private func attachedToolkit(key: WorkspaceKey, _ name: String) async throws -> Toolkit {
        let runtime = try await runtime(for: key)
        guard runtime.config.toolkits?.contains(name) == true else {
            throw AgentBoxError(.forbidden, "toolkit '\(name.prefix(80))' is not attached to workspace '\(key)'")
        }
        return try await storedToolkit(name)
    }

    /// Calls `toolName` of `toolkit` (attached to `key`) and records the call.
    private func call(_ toolkit: Toolkit, tool toolName: String, input: JSONValue, key: WorkspaceKey, sessionId: String?) async throws -> JSONValue {
        let name = toolkit.name
        guard let tool = toolkit.tools.first(where: { $0.name == toolName }) else {
            throw AgentBoxError(
                .notFound, "toolkit '\(name)' has no tool '\(toolName.prefix(80))' (its tools: \(toolkit.tools.map(\.name).joined(separator: ", ")))")
        }
        let violations = try JSONSchemaValidator.toolInput(tool.inputSchema).violations(of: input)
        guard violations.isEmpty else {
            throw AgentBoxError(.invalidArgument, "input: " + violations.map(\.description).joined(separator: "; "))
        }
        let callId = RandomID.make(prefix: "call_", length: 16)
        let started = ContinuousClock.now
        let at = Date()
        let timeout = tool.handler.timeoutMs.map { Duration.milliseconds($0) } ?? Self.defaultToolTimeout
        let request = ToolCallRequest(callId: callId, tool: tool.name, input: input, workspace: key, sessionId: sessionId)
        let result: Result<JSONValue, ToolCallFailure>
        switch tool.handler {
        case .http(let handler): result = await Self.callWebhook(handler, request, timeout: timeout)
        case .client: result = await toolCallRouter.call(toolkit: name, request, timeout: timeout)
        }
        let (status, message): (ToolCallStatus, String?) =
            switch result {
            case .success: (.ok, nil)
            case .failure(.timeout): (.timeout, "the tool did not answer within \(timeout)")
            case .failure(.error(let message)): (.error, message)
            }
        let call = ToolCall(
            callId: callId, toolkit: name, tool: tool.name, input: input, status: status, durationMs: Int((ContinuousClock.now - started).milliseconds),
            at: at, sessionId: sessionId, error: message)
        do {
            try await store.appendToolCall(call, of: key, retention: Self.toolCallRetention)
        } catch {
            logger.error("a tool call could not be recorded", metadata: ["workspace.key": "\(key)", "error": "\(error)"])
        }
        switch result {
        case .success(let output): return output
        case .failure(.timeout): throw AgentBoxError(.timeout, message ?? "timed out")
        case .failure(.error(let message)): throw AgentBoxError(.badGateway, message)
        }
    }

    /// Runs the command line of `agentbox-{toolkit}` inside workspace `key`: help, or a call whose JSON output goes
    /// to stdout (exit 0), or an error on stderr (exit 1).
    func runToolCommand(key: WorkspaceKey, toolkit name: String, arguments: [String], sessionId: String?) async -> ToolCommandResult {
        do {
            let toolkit = try await attachedToolkit(key: key, name)
            let summaries = toolkit.tools.map { ToolSummary(name: $0.name, description: $0.description, inputSchema: $0.inputSchema) }
            switch try ToolCommandLine.parse(toolkit: name, description: toolkit.description, tools: summaries, arguments: arguments) {
            case .help(let text):
                return ToolCommandResult(exitCode: 0, stdout: text, stderr: "")
            case .call(let tool, let input):
                let output = try await call(toolkit, tool: tool, input: input, key: key, sessionId: sessionId)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                return ToolCommandResult(exitCode: 0, stdout: String(decoding: try encoder.encode(output), as: UTF8.self) + "\n", stderr: "")
            }
        } catch let error as ToolCommandLineError {
            return .failure(error.message)
        } catch let error as AgentBoxError {
            return .failure(error.message)
        } catch {
            return .failure("\(error)")
        }
    }

    // MARK: Helpers

    private func storedToolkit(_ name: String) async throws -> Toolkit {
        guard Toolkit.isValidName(name), let toolkit = try await store.toolkit(name: name) else { throw Self.toolkitNotFound(name) }
        return toolkit
    }

    static func toolkitNotFound(_ name: String) -> AgentBoxError {
        AgentBoxError(.notFound, "no toolkit '\(name.prefix(80))'")
    }

    /// `toolkit` as the API shows it: handlers' headers (the host's credentials for its webhooks) left out.
    static func shown(_ toolkit: Toolkit) -> Toolkit {
        var shown = toolkit
        shown.tools = toolkit.tools.map { tool in
            var tool = tool
            if case .http(var handler) = tool.handler {
                handler.headers = nil
                tool.handler = .http(handler)
            }
            return tool
        }
        return shown
    }

    static func validate(_ request: ToolkitRequest) throws {
        guard request.description.utf8.count <= 4096 else { throw AgentBoxError(.invalidArgument, "description: at most 4096 bytes") }
        guard (1...maxToolsPerToolkit).contains(request.tools.count) else {
            throw AgentBoxError(.invalidArgument, "tools: 1...\(maxToolsPerToolkit) tools, not \(request.tools.count)")
        }
        var names = Set<String>()
        for (index, tool) in request.tools.enumerated() {
            let field = "tools[\(index)]"
            guard Toolkit.isValidToolName(tool.name) else {
                throw AgentBoxError(.invalidArgument, "\(field).name: [a-z][a-z0-9_-]{0,63}, not '\(tool.name.prefix(80))'")
            }
            guard names.insert(tool.name).inserted else { throw AgentBoxError(.invalidArgument, "\(field).name: '\(tool.name)' appears twice") }
            guard tool.description.utf8.count <= 4096 else { throw AgentBoxError(.invalidArgument, "\(field).description: at most 4096 bytes") }
            guard tool.inputSchema.approximateSize <= 64 << 10 else {
                throw AgentBoxError(.invalidArgument, "\(field).inputSchema: at most 64 KiB")
            }
            do {
                _ = try JSONSchemaValidator.toolInput(tool.inputSchema)
            } catch {
                throw AgentBoxError(.invalidArgument, "\(field).inputSchema: \(error.detail)")
            }
            if let timeout = tool.handler.timeoutMs, !(1...600_000).contains(timeout) {
                throw AgentBoxError(.invalidArgument, "\(field).handler.timeoutMs: 1...600000, not \(timeout)")
            }
            if case .http(let handler) = tool.handler {
                guard let url = URL(string: handler.url), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host?.isEmpty == false,
                    handler.url.utf8.count <= 2048
                else { throw AgentBoxError(.invalidArgument, "\(field).handler.url: an http or https URL, not '\(handler.url.prefix(80))'") }
                for (name, value) in handler.headers ?? [:] {
                    let bad = name.isEmpty || name.utf8.contains { $0 <= 0x20 || $0 == 0x3A || $0 >= 0x7F } || value.utf8.contains { $0 == 0x0A || $0 == 0x0D || $0 == 0 }
                    if bad { throw AgentBoxError(.invalidArgument, "\(field).handler.headers: '\(name.prefix(80))' is not a valid header") }
                }
            }
        }
    }

    /// POSTs the call to the tool's webhook; a 2xx JSON body is the output.
    static func callWebhook(_ handler: HTTPToolHandler, _ call: ToolCallRequest, timeout: Duration) async -> Result<JSONValue, ToolCallFailure> {
        do {
            var request = HTTPClientRequest(url: handler.url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Accept", value: "application/json")
            for (name, value) in handler.headers ?? [:] { request.headers.replaceOrAdd(name: name, value: value) }
            request.body = .bytes(ByteBuffer(bytes: try AgentBoxJSON.makeEncoder().encode(call)))
            let response = try await toolHandlerClient.execute(request, timeout: .milliseconds(Int64(timeout / .milliseconds(1))))
            let body = try await response.body.collect(upTo: maxToolOutputBytes)
            guard (200..<300).contains(response.status.code) else {
                let text = String(decoding: body.readableBytesView.prefix(300), as: UTF8.self)
                return .failure(.error("the tool's handler answered \(response.status.code)\(text.isEmpty ? "" : ": \(text)")"))
            }
            guard let output = try? JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView)) else {
                return .failure(.error("the tool's handler answered something that is not JSON"))
            }
            return .success(output)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .failure(.timeout)
        } catch let error as NIOTooManyBytesError {
            _ = error
            return .failure(.error("the tool's handler answered more than \(maxToolOutputBytes) bytes"))
        } catch {
            return .failure(.error(unreachable(handler.url, error)))
        }
    }

    /// The client that calls tools' HTTP handlers. A handler that refuses the connection (its service is down) fails
    /// the call at once: with the shared client's retries, each such call waited out its whole timeout (60 s).
    static let toolHandlerClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: .seconds(10))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// Why a handler at `url` could not be reached, said plainly: NIO's own descriptions nest and lose brackets.
    static func unreachable(_ url: String, _ error: any Error) -> String {
        let address = URL(string: url).map { "\($0.host ?? "?")\($0.port.map { ":\($0)" } ?? "")" } ?? url
        let text = String(describing: error)
        if text.contains("Connection refused") || text.contains("errno: 111") {
            return "the tool's handler at \(address) refused the connection (is its service running?)"
        }
        if text.contains("No route to host") || text.contains("Network is unreachable") {
            return "the tool's handler at \(address) cannot be reached from this server (no route)"
        }
        return "the tool's handler at \(address) could not be reached: \(text.prefix(200))"
    }
}

/// What `agentbox-{toolkit}` prints and exits with.
struct ToolCommandResult: Sendable, Equatable {
    var exitCode: Int32
    var stdout: String
    var stderr: String

    static func failure(_ message: String) -> ToolCommandResult {
        ToolCommandResult(exitCode: 1, stdout: "", stderr: message.hasSuffix("\n") ? message : message + "\n")
    }
}
