import AgentBoxACP
import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import Foundation
import Logging
import NIOCore

/// A session's settings as stored (never its credentials).
struct SessionSettings: Codable, Sendable, Equatable {
    var cwd: String
    var mcpServers: [JSONValue]
    var model: String?
    var mode: String?
    var instructions: String?
    var permissions: PermissionPolicy?
    /// Tool kinds the client answered "always" for.
    var alwaysAllowed: [String]?
}

/// One agent session: its agent process (when it runs), its turns, its permission questions and its transcript.
///
/// Every message in and out is numbered and appended to the transcript; events are written to the store in groups
/// (whatever accumulated while the previous write ran) and only then handed to subscribers and the workspace
/// stream, so an event anyone saw is on disk. When writing falls behind by ``maxUnwritten`` events, the agent's
/// output is held back (its reader waits) until the store catches up.
///
/// The agent process lives in the workspace's sandbox; it does not hold the workspace awake, a running turn does.
/// When the workspace sleeps the process ends, and the next prompt (or ``resume(env:)``) starts it again and
/// reattaches with `session/resume` or `session/load`, or hands a new agent session the transcript as context.
public actor AgentSession {
    public nonisolated let id: String
    public nonisolated let workspaceKey: WorkspaceKey
    let runtime: WorkspaceRuntime
    let store: any Store
    let configuration: AgentBoxConfiguration
    let definition: AgentDefinition
    let logger: Logger

    private var record: SessionRecord
    private var settings: SessionSettings
    /// The agent process's extra variables: in memory only.
    private var env: [String: String]

    private var link: AgentLink?
    private var linkRunner: Task<Void, Never>?
    private var starting: Task<AgentLink, any Error>?
    /// Set from the moment a prompt is accepted until its turn has ended.
    private var turnBusy = false
    private var turn: Task<PromptResult, Never>?
    private var cancelRequested = false
    private var cancelTimer: Task<Void, Never>?
    private var permissions: [String: PendingPermission] = [:]
    /// Text to put before the next prompt (instructions, or an earlier transcript after a fresh start).
    private var pendingContext: String?
    /// A `session/load` is under way: the agent replays the conversation, which the transcript already holds.
    private var loading = false
    private var replayed = 0
    /// The terminals the agent opened, with each one's output limit.
    private var terminals: [String: Int?] = [:]
    private var gone = false
    /// The server is stopping: no new subscriptions.
    private var draining = false

    // The transcript.
    private var nextSeq: Int64
    private var durableSeq: Int64
    private var unwritten: [SessionEvent] = []
    private var writer: Task<Void, Never>?
    private var durableWaiters: [(seq: Int64, continuation: CheckedContinuation<Void, Never>)] = []
    /// The latest durable events, encoded, which readers take from here (or from the store when they are further
    /// behind): one copy for every reader, so memory does not grow with their number or their slowness.
    private var recent = RecentEvents(capacity: AgentSession.recentCapacity, byteCapacity: AgentSession.recentByteCapacity)
    /// Readers waiting for the next stored events.
    private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter: UInt64 = 0

    /// Events recorded but not yet written beyond which recording waits for the store.
    static let maxUnwritten = 4096
    /// How many of the latest stored events are kept in memory for readers.
    public static let recentCapacity = 4096
    /// How many bytes of the latest stored events (their JSON, counted twice for the parsed copy held beside it)
    /// are kept in memory at most: a few large events (tool output, file contents) must not hold megabytes per session.
    public static let recentByteCapacity = 4 << 20
    /// The largest file content or output kept whole in a transcript event.
    static let recordedResultBytes = 64 << 10
    static let instructionsMark = "[Instructions]\n"
    static let contextMark = "[Earlier conversation in this session, resumed by AgentBox]\n"
    /// The largest text file `fs/read_text_file` reads.
    static let maxReadBytes = 16 << 20

    struct PendingPermission {
        let continuation: CheckedContinuation<ACP.RequestPermissionResult, Never>
        let options: [ACP.PermissionOption]
        let toolCall: JSONValue
        let kind: String?
        let timer: Task<Void, Never>?
    }

    init(
        record: SessionRecord, settings: SessionSettings, env: [String: String], lastSeq: Int64, definition: AgentDefinition,
        runtime: WorkspaceRuntime, store: any Store, configuration: AgentBoxConfiguration, logger: Logger
    ) {
        id = record.id
        workspaceKey = record.workspaceKey
        self.record = record
        self.settings = settings
        self.env = env
        self.nextSeq = lastSeq + 1
        self.durableSeq = lastSeq
        self.definition = definition
        self.runtime = runtime
        self.store = store
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "session.id"] = "\(record.id)"
        self.logger = logger
    }

    // MARK: State

    /// The session as the API shows it.
    public var snapshot: Session {
        let status: SessionStatus = turnBusy ? .running : record.state == "closed" ? .closed : .idle
        return Session(
            id: id, workspace: workspaceKey, agent: record.agent, status: status, createdAt: record.createdAt,
            agentSessionId: record.agentSessionId, stopReason: record.stopReason, cwd: settings.cwd, agentRunning: link != nil,
            permissions: policy, lastEventSeq: durableSeq)
    }

    /// The permission rules in force.
    var policy: PermissionPolicy { (settings.permissions ?? PermissionPolicy()).laid(over: configuration.permissionPolicy) }

    /// A session loaded after the server stopped during a turn: that turn is over.
    func recoverInterruptedTurn() async {
        guard record.state == "running" else { return }
        await append(.server, "turn_end", ["stopReason": "error", "error": "the server stopped during the turn"])
        record.state = "idle"
        record.stopReason = "error"
        await persist()
    }

    private func persist() async {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            record.settings = String(decoding: try encoder.encode(settings), as: UTF8.self)
            _ = try await store.updateSession(record)
        } catch {
            logger.error("could not store the session's state", metadata: ["error": "\(error)"])
        }
    }

    private func checkOpen() throws {
        if gone { throw AgentBoxError(.notFound, "no session '\(id)' in workspace '\(workspaceKey)'") }
    }

    // MARK: The agent process

    /// Starts the agent when it does not run (booting the workspace if it sleeps) and returns its link.
    func ensureAgent() async throws -> AgentLink {
        try checkOpen()
        if let link { return link }
        if let starting { return try await starting.value }
        let task = Task { try await self.startAgent() }
        starting = task
        defer { starting = nil }
        return try await task.value
    }

    private func startAgent() async throws -> AgentLink {
        let arguments = try definition.arguments(backend: configuration.sandbox)
        let process = try await runtime.launchAgentProcess(arguments: arguments, cwd: settings.cwd, env: env)
        let link = AgentLink(process: process)
        await link.connection.setHandlers(
            request: { [weak self] method, params in
                guard let self else { throw JSONRPCError.connectionClosed }
                return try await self.agentRequest(method, params)
            },
            notification: { [weak self] method, params in await self?.agentNotification(method, params) })
        linkRunner = Task { [weak self] in
            let (status, stderr, problem) = await link.run()
            await self?.agentExited(link, status: status, stderr: stderr, problem: problem)
        }
        do {
            let limit = configuration.agentStartTimeout
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.handshake(link) }
                group.addTask {
                    try await Task.sleep(for: limit)
                    throw AgentBoxError(.gatewayTimeout, "the agent did not start within \(limit)")
                }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            loading = false
            await link.stop(grace: .milliseconds(200))
            await linkRunner?.value
            let message = (error as? AgentBoxError)?.message ?? "\(error)"
            await append(.server, "error", ["message": .string("the agent '\(definition.id)' did not start: \(message)")])
            if let error = error as? AgentBoxError, error.code == .gatewayTimeout { throw error }
            throw AgentBoxError(.badGateway, "the agent '\(definition.id)' did not start: \(message)")
        }
        self.link = link
        // When the workspace goes to sleep, the agent is stopped first and gently (it may save its state).
        await runtime.setStopHook(id) { [weak self] in await self?.stopAgent() }
        return link
    }

    /// `initialize`, then `session/new`, `session/resume` or `session/load`.
    private func handshake(_ link: AgentLink) async throws {
        let connection = link.connection
        let initialized = try await connection.request(ACP.Method.initialize, params: try ACP.json(ACP.InitializeParams.agentBox))
        let capabilities = initialized["agentCapabilities"] ?? .object([:])
        let setup: JSONValue = ["cwd": .string(settings.cwd), "mcpServers": .array(settings.mcpServers)]
        var method = "new"
        if let agentSessionId = record.agentSessionId {
            var params = setup
            if case .object(var fields) = params {
                fields["sessionId"] = .string(agentSessionId)
                params = .object(fields)
            }
            if let resume = capabilities["sessionCapabilities"]?["resume"], resume != .null {
                method = "resume"
                _ = try await connection.request("session/resume", params: params)
            } else if capabilities["loadSession"] == .bool(true) {
                method = "load"
                loading = true
                replayed = 0
                defer { loading = false }
                do {
                    _ = try await connection.request(ACP.Method.loadSession, params: params)
                } catch let error as JSONRPCError where error != .connectionClosed {
                    // The agent lost its session (killed before it saved it, say): start afresh with the transcript.
                    await append(.server, "error", ["message": .string("session/load failed (\(error.message)); starting a new agent session with the transcript")])
                    method = "new-with-transcript"
                }
            } else {
                method = "new-with-transcript"
            }
        }
        if method == "new" || method == "new-with-transcript" {
            let created = try ACP.decode(ACP.NewSessionResult.self, from: try await connection.request(ACP.Method.newSession, params: setup))
            record.agentSessionId = created.sessionId
            await persist()
            var context = settings.instructions.map { Self.instructionsMark + $0 }
            if method == "new-with-transcript", let transcript = await transcriptContext() {
                context = [context, transcript].compactMap { $0 }.joined(separator: "\n\n")
            }
            pendingContext = context
            for (name, value, field) in [("session/set_mode", settings.mode, "modeId"), ("session/set_model", settings.model, "modelId")] {
                guard let value else { continue }
                do {
                    _ = try await connection.request(name, params: .object(["sessionId": .string(created.sessionId), field: .string(value)]))
                } catch {
                    await append(.server, "error", ["message": .string("\(name) \(value) failed: \(error)")])
                }
            }
        }
        var started: [String: JSONValue] = [
            "method": .string(method), "agentSessionId": .string(record.agentSessionId ?? ""), "agentCapabilities": capabilities,
            "protocolVersion": initialized["protocolVersion"] ?? .null,
        ]
        if method == "load" { started["replayedUpdates"] = .number(Double(replayed)) }
        if let info = initialized["agentInfo"] { started["agentInfo"] = info }
        await append(.server, "agent_started", .object(started))
    }

    /// The earlier conversation as text for an agent that starts afresh: the prompts and the agent's messages,
    /// the latest part when it is long.
    private func transcriptContext() async -> String? {
        let limit = configuration.resumeContextBytes
        var lines: [String] = []
        var size = 0
        var cursor = durableSeq
        // Read backwards in pages until the cap is reached.
        while cursor > 0, size < limit {
            let from = max(0, cursor - 500)
            guard let page = try? await store.sessionEvents(of: id, after: from, limit: Int(cursor - from)) else { break }
            var pageLines: [String] = []
            var message = ""
            for event in page.compactMap(Self.decode) {
                if event.type == "agent_message_chunk", let text = event.payload["update"]?["content"]?["text"]?.stringValue {
                    message += text
                    continue
                }
                if !message.isEmpty {
                    pageLines.append("Agent: \(message)")
                    message = ""
                }
                if event.type == "prompt", case .array(let blocks)? = event.payload["prompt"] {
                    // AgentBox's own blocks (instructions, an earlier context) are not the user's words.
                    let text = blocks.compactMap { $0["text"]?.stringValue }
                        .filter { !$0.hasPrefix(Self.instructionsMark) && !$0.hasPrefix(Self.contextMark) }.joined(separator: "\n")
                    pageLines.append("User: \(text)")
                }
            }
            if !message.isEmpty { pageLines.append("Agent: \(message)") }
            lines.insert(contentsOf: pageLines, at: 0)
            size += pageLines.reduce(0) { $0 + $1.utf8.count + 1 }
            cursor = from
        }
        guard !lines.isEmpty else { return nil }
        var text = lines.joined(separator: "\n")
        if text.utf8.count > limit { text = "…" + String(decoding: text.utf8.suffix(limit), as: UTF8.self) }
        return Self.contextMark + text
    }

    private func agentExited(_ ended: AgentLink, status: SandboxExitStatus, stderr: String, problem: String?) async {
        let current = link === ended
        if current { link = nil }
        // An idle session without its agent and without readers keeps no events in memory (readers catch up from
        // the store): a server with many old sessions holds little for each.
        if waiters.isEmpty { recent.removeAll() }
        for (terminal, _) in terminals { try? await runtime.signal(terminal, .KILL) }
        terminals.removeAll()
        for permission in permissions.keys { await answerPermission(permission, outcome: .cancelled, reply: nil, by: "agentExit") }
        guard !gone else { return }
        var payload: [String: JSONValue] = [
            "exitCode": status.exitCode.map { .number(Double($0)) } ?? .null,
            "signal": status.signal.map { .string(ProcessSignal.name(of: $0)) } ?? .null,
        ]
        if !stderr.isEmpty { payload["stderr"] = .string(String(stderr.suffix(2048))) }
        if let problem { payload["problem"] = .string(problem) }
        await append(.server, "agent_exited", .object(payload))
    }

    // MARK: Messages from the agent

    private func agentNotification(_ method: String, _ params: JSONValue?) async {
        if method == ACP.Method.update {
            if loading {
                replayed += 1
                return
            }
            let kind = params?["update"]?["sessionUpdate"]?.stringValue ?? method
            await append(.agent, kind, params ?? .null)
        } else {
            await append(.agent, method, params ?? .null)
        }
    }

    private func agentRequest(_ method: String, _ params: JSONValue?) async throws -> JSONValue {
        if method == ACP.Method.requestPermission { return try await permissionRequest(params) }
        await append(.agent, method, params ?? .null)
        do {
            guard params?["sessionId"]?.stringValue == record.agentSessionId else {
                throw JSONRPCError.invalidParams("sessionId is not this session's")
            }
            let result = try await serve(method, params)
            await append(.server, "response", ["method": .string(method), "result": Self.trimmedForTranscript(result)])
            return result
        } catch {
            let rpc = Self.rpcError(error)
            await append(.server, "response", ["method": .string(method), "error": ["code": .number(Double(rpc.code)), "message": .string(rpc.message)]])
            throw rpc
        }
    }

    private static func rpcError(_ error: any Error) -> JSONRPCError {
        switch error {
        case let rpc as JSONRPCError: rpc
        case let error as AgentBoxError where error.code == .notFound: JSONRPCError(code: -32002, message: error.message)
        case let error as AgentBoxError where error.code == .invalidArgument || error.code == .forbidden:
            JSONRPCError(code: -32602, message: error.message)
        case let error as AgentBoxError: JSONRPCError(code: -32603, message: error.message)
        default: JSONRPCError.internalError("\(error)")
        }
    }

    /// A result as the transcript keeps it: long strings (a whole file) are cut.
    static func trimmedForTranscript(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text) where text.utf8.count > recordedResultBytes:
            .string(String(decoding: text.utf8.prefix(recordedResultBytes), as: UTF8.self) + "… [\(text.utf8.count) bytes; cut in the transcript]")
        case .object(let fields): .object(fields.mapValues(trimmedForTranscript))
        case .array(let items): .array(items.map(trimmedForTranscript))
        default: value
        }
    }

    /// The agent's file and terminal requests, served against the workspace.
    private func serve(_ method: String, _ params: JSONValue?) async throws -> JSONValue {
        switch method {
        case ACP.Method.readTextFile:
            let request = try ACP.decode(ACP.ReadTextFileParams.self, from: params)
            return ["content": .string(try readText(try WorkspacePath(request.path), line: request.line, limit: request.limit))]
        case ACP.Method.writeTextFile:
            let request = try ACP.decode(ACP.WriteTextFileParams.self, from: params)
            let content = ByteBuffer(string: request.content)
            let chunks = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
                continuation.yield(content)
                continuation.finish()
            }
            _ = try await runtime.files().write(try WorkspacePath(request.path), chunks: chunks)
            return .object([:])
        case ACP.Method.createTerminal:
            let request = try ACP.decode(ACP.CreateTerminalParams.self, from: params)
            if let limit = request.outputByteLimit, limit < 0 { throw JSONRPCError.invalidParams("outputByteLimit must not be negative") }
            var environment: [String: String] = [:]
            for variable in request.env ?? [] { environment[variable.name] = variable.value }
            // One stream, as a terminal shows it: stderr joins stdout in the order written.
            let process = try await runtime.spawn(
                SpawnRequest(
                    command: "/bin/sh", args: ["-c", "exec \"$0\" \"$@\" 2>&1", request.command] + (request.args ?? []),
                    cwd: request.cwd ?? settings.cwd, env: environment))
            terminals[process.id] = request.outputByteLimit
            return try ACP.json(ACP.CreateTerminalResult(terminalId: process.id))
        case ACP.Method.terminalOutput:
            let terminal = try terminalID(params)
            let output = try await runtime.output(terminal)
            let process = try await runtime.process(terminal)
            var text = output.stdout
            var truncated = output.truncated
            if let limit = terminals[terminal] ?? nil, text.utf8.count > limit {
                var cut = text.utf8.count - limit
                let bytes = Array(text.utf8)
                while cut < bytes.count, bytes[cut] & 0xC0 == 0x80 { cut += 1 }
                text = String(decoding: bytes[cut...], as: UTF8.self)
                truncated = true
            }
            return try ACP.json(
                ACP.TerminalOutputResult(output: text, truncated: truncated, exitStatus: process.status == .running ? nil : Self.exitStatus(process)))
        case ACP.Method.waitForTerminalExit:
            let terminal = try terminalID(params)
            return try ACP.json(Self.exitStatus(try await runtime.wait(terminal, timeout: nil)))
        case ACP.Method.killTerminal:
            let terminal = try terminalID(params)
            if try await runtime.process(terminal).status == .running { try? await runtime.signal(terminal, .KILL) }
            return .object([:])
        case ACP.Method.releaseTerminal:
            let terminal = try terminalID(params)
            if try await runtime.process(terminal).status == .running { try? await runtime.signal(terminal, .KILL) }
            terminals[terminal] = nil
            return .object([:])
        default:
            throw JSONRPCError.methodNotFound(method)
        }
    }

    private func terminalID(_ params: JSONValue?) throws -> String {
        let request = try ACP.decode(ACP.TerminalParams.self, from: params)
        guard terminals.keys.contains(request.terminalId) else { throw JSONRPCError(code: -32002, message: "no terminal '\(request.terminalId)'") }
        return request.terminalId
    }

    private static func exitStatus(_ process: WorkspaceProcess) -> ACP.TerminalExitStatus {
        process.signal != nil ? ACP.TerminalExitStatus(exitCode: nil, signal: process.signal) : ACP.TerminalExitStatus(exitCode: Int(process.exitCode ?? -1), signal: nil)
    }

    /// A text file of the workspace, from 1-based `line`, at most `limit` lines.
    private func readText(_ path: WorkspacePath, line: Int?, limit: Int?) throws -> String {
        let files = try runtime.files()
        let (fd, size) = try files.openForReading(path)
        defer { Glibc.close(fd) }
        guard size <= Self.maxReadBytes else {
            throw AgentBoxError(.invalidArgument, "'\(path)' is \(size) bytes; fs/read_text_file reads at most \(Self.maxReadBytes)")
        }
        var bytes: [UInt8] = []
        while true {
            let chunk = try WorkspaceFiles.readChunk(fd, maximum: 1 << 20)
            if chunk.readableBytes == 0 || bytes.count > Self.maxReadBytes { break }
            bytes += chunk.readableBytesView
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard line != nil || limit != nil else { return text }
        if let line, line < 1 { throw AgentBoxError(.invalidArgument, "line must be 1 or more") }
        if let limit, limit < 0 { throw AgentBoxError(.invalidArgument, "limit must not be negative") }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let start = min(lines.count, (line ?? 1) - 1)
        let end = limit.map { min(lines.count, start + $0) } ?? lines.count
        return lines[start..<end].joined(separator: "\n")
    }

    // MARK: Permissions

    private func permissionRequest(_ params: JSONValue?) async throws -> JSONValue {
        let request = try ACP.decode(ACP.RequestPermissionParams.self, from: params)
        let permissionId = RandomID.make(prefix: "perm_", length: 12)
        let kind = request.toolCall["kind"]?.stringValue
        let options = try ACP.json(request.options)
        let seq = await append(
            .agent, "permission_request",
            ["permissionId": .string(permissionId), "sessionId": .string(request.sessionId), "toolCall": request.toolCall, "options": options])
        var decision = policy.decision(for: kind)
        let remembered = kind.map { settings.alwaysAllowed?.contains($0) == true } ?? false
        if remembered { decision = .allow }
        if cancelRequested {
            await append(.server, "permission_reply", ["permissionId": .string(permissionId), "outcome": "cancelled", "by": "cancel"])
            return try ACP.json(ACP.RequestPermissionResult.cancelled)
        }
        switch decision {
        case .allow, .reject:
            let reply: PermissionReply = decision == .allow ? (remembered ? .always : .once) : .reject
            let outcome = Self.outcome(for: reply, options: request.options) ?? .cancelled
            await append(
                .server, "permission_reply",
                ["permissionId": .string(permissionId), "reply": .string(reply.rawValue), "outcome": .string(outcome.outcome.outcome),
                 "optionId": outcome.outcome.optionId.map(JSONValue.string) ?? .null, "by": .string(remembered ? "always" : "policy")])
            return try ACP.json(outcome)
        case .ask:
            // Stored before anyone is told.
            await waitUntilDurable(seq)
            await runtime.publish(
                .permissionRequest(
                    PermissionRequestNotice(sessionId: id, permissionId: permissionId, toolCall: request.toolCall, options: request.options.compactMap { try? ACP.json($0) })))
            let timeout = Duration.milliseconds(policy.timeoutMs ?? 300_000)
            let outcome = await withCheckedContinuation { continuation in
                let timer = Task { [weak self] in
                    do { try await Task.sleep(for: timeout) } catch { return }
                    await self?.permissionTimedOut(permissionId)
                }
                permissions[permissionId] = PendingPermission(
                    continuation: continuation, options: request.options, toolCall: request.toolCall, kind: kind, timer: timer)
            }
            return try ACP.json(outcome)
        }
    }

    private func permissionTimedOut(_ permissionId: String) async {
        guard let pending = permissions[permissionId] else { return }
        await answerPermission(permissionId, outcome: Self.outcome(for: .reject, options: pending.options) ?? .cancelled, reply: .reject, by: "timeout")
    }

    private func answerPermission(_ permissionId: String, outcome: ACP.RequestPermissionResult, reply: PermissionReply?, by: String) async {
        guard let pending = permissions.removeValue(forKey: permissionId) else { return }
        pending.timer?.cancel()
        await append(
            by == "client" ? .client : .server, "permission_reply",
            ["permissionId": .string(permissionId), "reply": reply.map { .string($0.rawValue) } ?? .null, "outcome": .string(outcome.outcome.outcome),
             "optionId": outcome.outcome.optionId.map(JSONValue.string) ?? .null, "by": .string(by)])
        pending.continuation.resume(returning: outcome)
    }

    /// The option that carries out `reply`, as the agent's answer; `nil` when the agent offered none such.
    static func outcome(for reply: PermissionReply, options: [ACP.PermissionOption]) -> ACP.RequestPermissionResult? {
        let preferred: [String] =
            switch reply {
            case .once: ["allow_once", "allow_always"]
            case .always: ["allow_always", "allow_once"]
            case .reject: ["reject_once", "reject_always"]
            }
        for kind in preferred {
            if let option = options.first(where: { $0.kind == kind }) { return .selected(option.optionId) }
        }
        return nil
    }

    /// Answers the pending permission request `permissionId` of this session.
    public func reply(_ permissionId: String, _ reply: PermissionReply) async throws {
        try checkOpen()
        guard let pending = permissions[permissionId] else {
            throw AgentBoxError(.notFound, "no pending permission request '\(permissionId)' in session '\(id)'")
        }
        let outcome: ACP.RequestPermissionResult
        if let selected = Self.outcome(for: reply, options: pending.options) {
            outcome = selected
        } else if reply == .reject {
            outcome = .cancelled
        } else {
            throw AgentBoxError(.conflict, "the agent offered no option to allow this tool call; reply reject")
        }
        if reply == .always, let kind = pending.kind, settings.alwaysAllowed?.contains(kind) != true {
            settings.alwaysAllowed = (settings.alwaysAllowed ?? []) + [kind]
            await persist()
        }
        await answerPermission(permissionId, outcome: outcome, reply: reply, by: "client")
    }

    /// The permission requests waiting for a reply.
    public var pendingPermissions: [PermissionRequestNotice] {
        permissions.map { id, pending in
            PermissionRequestNotice(sessionId: self.id, permissionId: id, toolCall: pending.toolCall, options: pending.options.compactMap { try? ACP.json($0) })
        }
    }

    // MARK: Turns

    /// Starts a turn with `request`; the task ends with the turn. Throws `conflict` when a turn runs or the
    /// session is closed.
    public func prompt(_ request: PromptRequest) async throws -> Task<PromptResult, Never> {
        try checkOpen()
        guard record.state != "closed" else { throw AgentBoxError(.conflict, "session '\(id)' is closed; resume it first") }
        guard !turnBusy else { throw AgentBoxError(.conflict, "a turn is already running in session '\(id)'; cancel it or wait") }
        guard !request.content.isEmpty else { throw AgentBoxError(.invalidArgument, "content must hold at least one block") }
        for block in request.content where block.type == "text" && block.text == nil {
            throw AgentBoxError(.invalidArgument, "a text block needs its text")
        }
        let blocks = try ACP.json(request.content)
        turnBusy = true
        let activity: WorkspaceRuntime.Activity
        let link: AgentLink
        do {
            activity = try await runtime.beginActivity()
            do {
                link = try await ensureAgent()
            } catch {
                await runtime.endActivity(activity)
                throw error
            }
        } catch {
            turnBusy = false
            throw error
        }
        cancelRequested = false
        var prompt: [JSONValue] = []
        if case .array(let items) = blocks { prompt = items }
        if let context = pendingContext {
            prompt.insert(["type": "text", "text": .string(context)], at: 0)
            pendingContext = nil
        }
        let params: JSONValue = ["sessionId": .string(record.agentSessionId ?? ""), "prompt": .array(prompt)]
        await append(.client, "prompt", params)
        record.state = "running"
        record.stopReason = nil
        await persist()
        let task = Task { await self.runTurn(link, params: params, activity: activity) }
        turn = task
        return task
    }

    private func runTurn(_ link: AgentLink, params: JSONValue, activity: WorkspaceRuntime.Activity) async -> PromptResult {
        let result: PromptResult
        do {
            let answer = try await link.connection.request(ACP.Method.prompt, params: params)
            result = PromptResult(stopReason: answer["stopReason"]?.stringValue ?? "end_turn")
            await append(.agent, "turn_end", answer)
        } catch {
            if cancelRequested {
                result = PromptResult(stopReason: "cancelled")
            } else if let rpc = error as? JSONRPCError, rpc != .connectionClosed {
                await append(.agent, "error", ["code": .number(Double(rpc.code)), "message": .string(rpc.message), "data": rpc.data ?? .null])
                result = PromptResult(stopReason: "error", error: "the agent failed the turn: \(rpc.message)")
            } else {
                result = PromptResult(stopReason: "error", error: "the agent exited during the turn")
            }
            await append(.server, "turn_end", ["stopReason": .string(result.stopReason), "error": result.error.map(JSONValue.string) ?? .null])
        }
        cancelTimer?.cancel()
        cancelTimer = nil
        for permission in permissions.keys { await answerPermission(permission, outcome: .cancelled, reply: nil, by: "turnEnd") }
        if record.state == "running" { record.state = "idle" }
        record.stopReason = result.stopReason
        await persist()
        await waitUntilDurable(nextSeq - 1)
        turn = nil
        turnBusy = false
        await runtime.endActivity(activity)
        return result
    }

    /// Cancels the running turn: the agent is told (`session/cancel`), pending permission requests are answered
    /// `cancelled`, and the turn ends with `cancelled`. An agent that has not ended it after
    /// ``AgentBoxConfiguration/cancelGrace`` is stopped. Nothing happens when no turn runs.
    public func cancel() async {
        guard turn != nil, let link, !cancelRequested else { return }
        cancelRequested = true
        let agentSessionId = record.agentSessionId ?? ""
        await append(.client, "cancel", ["sessionId": .string(agentSessionId)])
        try? await link.connection.notify(ACP.Method.cancel, params: ["sessionId": .string(agentSessionId)])
        for permission in permissions.keys { await answerPermission(permission, outcome: .cancelled, reply: nil, by: "cancel") }
        let grace = configuration.cancelGrace
        cancelTimer = Task { [weak self] in
            do { try await Task.sleep(for: grace) } catch { return }
            await self?.cancelOverdue(link)
        }
    }

    private func cancelOverdue(_ overdue: AgentLink) async {
        guard turn != nil, link === overdue else { return }
        logger.warning("the agent did not end a cancelled turn; stopping it")
        await append(.server, "error", ["message": .string("the agent did not end the cancelled turn within \(configuration.cancelGrace); it was stopped")])
        await overdue.stop(grace: .zero)
    }

    /// Waits for the running turn, if any.
    public func waitForTurn() async -> PromptResult? {
        await turn?.value
    }

    // MARK: Resume, close, destroy

    /// Starts the agent if it does not run (reattaching to its session), opening a closed session again. `env`,
    /// when given, replaces the agent's variables from its next start on.
    public func resume(env: [String: String]?) async throws -> Session {
        try checkOpen()
        if let env { self.env = env }
        if record.state == "closed" {
            record.state = "idle"
            await persist()
            await append(.client, "resume", .object([:]))
        }
        let activity = try await runtime.beginActivity()
        do {
            _ = try await ensureAgent()
        } catch {
            await runtime.endActivity(activity)
            throw error
        }
        await runtime.endActivity(activity)
        return snapshot
    }

    /// Stops the agent and closes the session (a running turn is cancelled first); the transcript stays.
    public func close() async throws -> Session {
        try checkOpen()
        if turn != nil {
            await cancel()
            if let link { await link.stop() }
            _ = await turn?.value
        }
        await stopAgent()
        if record.state != "closed" {
            record.state = "closed"
            await persist()
            await append(.client, "close", .object([:]))
        }
        await waitUntilDurable(nextSeq - 1)
        return snapshot
    }

    func stopAgent() async {
        if let starting { _ = try? await starting.value }
        if let link { await link.stop() }
        await linkRunner?.value
        linkRunner = nil
    }

    /// Stops everything and ends the subscriptions; the caller deletes the records. Later calls fail `notFound`.
    func destroy() async {
        gone = true
        await shutdown()
    }

    /// Ends the subscriptions (the server is draining its connections); they may come back.
    func finishSubscriptions() {
        draining = true
        wakeReaders()
    }

    /// Stops the agent (a running turn ends), writes what is pending and ends the subscriptions.
    func shutdown() async {
        draining = true
        await stopAgent()
        _ = await turn?.value
        await writer?.value
        wakeReaders()
    }

    // MARK: The transcript

    /// Numbers an event and queues it for the store; returns its seq. Waits only when the store falls far behind.
    @discardableResult
    private func append(_ sender: SessionEventSender, _ type: String, _ payload: JSONValue) async -> Int64 {
        let seq = nextSeq
        nextSeq += 1
        unwritten.append(SessionEvent(seq: seq, at: Date(), sender: sender, type: type, payload: payload))
        if writer == nil { writer = Task { await self.writeLoop() } }
        if unwritten.count >= Self.maxUnwritten { await waitUntilDurable(seq) }
        return seq
    }

    /// Returns once the events up to `seq` are stored.
    func waitUntilDurable(_ seq: Int64) async {
        guard seq > durableSeq else { return }
        await withCheckedContinuation { durableWaiters.append((seq, $0)) }
    }

    /// Writes what accumulated, in one transaction, then hands it out; repeats while more came meanwhile.
    private func writeLoop() async {
        while !unwritten.isEmpty {
            let batch = unwritten
            unwritten.removeAll(keepingCapacity: true)
            var encoded: [EncodedSessionEvent] = []
            encoded.reserveCapacity(batch.count)
            let records = batch.map { event in
                let payload = event.payload.jsonBytes
                // As a reader of the store will see it: the time goes through the store as seconds since 1970.
                var stored = event
                stored.at = Date(timeIntervalSince1970: event.at.timeIntervalSince1970)
                encoded.append(EncodedSessionEvent(stored, payloadJSON: payload))
                return SessionEventRecord(
                    sessionId: id, seq: event.seq, at: event.at, kind: event.type,
                    payload: String(decoding: payload, as: UTF8.self), sender: event.sender.rawValue)
            }
            var attempt = 0
            while true {
                do {
                    try await store.appendSessionEvents(records)
                    break
                } catch {
                    attempt += 1
                    logger.error("could not store session events", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                    if attempt >= 3 { break }
                    try? await Task.sleep(for: .milliseconds(50 * attempt))
                }
            }
            durableSeq = batch[batch.count - 1].seq
            recent.append(contentsOf: encoded)
            wakeReaders()
            var ready: [CheckedContinuation<Void, Never>] = []
            durableWaiters.removeAll { waiter in
                guard waiter.seq <= durableSeq else { return false }
                ready.append(waiter.continuation)
                return true
            }
            for continuation in ready { continuation.resume() }
            for event in batch {
                await runtime.publish(.sessionEvent(SessionEventNotice(sessionId: id, seq: event.seq, event: event)))
            }
        }
        writer = nil
    }

    /// What a reader gets for the events after its cursor.
    enum Pull {
        /// The next stored events, in order, from `cursor + 1` on.
        case events([EncodedSessionEvent])
        /// They are no longer (or not yet) held in memory: read the store.
        case behind
        /// The session is gone, or the server is stopping.
        case ended
    }

    /// Up to `limit` stored events after `cursor`; waits for the next write when there are none yet. Cancellable.
    func events(after cursor: Int64, limit: Int) async -> Pull {
        while true {
            if gone { return .ended }
            if durableSeq > cursor {
                guard let slice = recent.events(after: cursor, limit: limit) else { return .behind }
                return .events(Array(slice))
            }
            if draining || Task.isCancelled { return .ended }
            let waiter = nextWaiter
            nextWaiter += 1
            await withTaskCancellationHandler {
                await withCheckedContinuation { waiters[waiter] = $0 }
            } onCancel: {
                Task { await self.wake(waiter) }
            }
        }
    }

    private func wake(_ waiter: UInt64) { waiters.removeValue(forKey: waiter)?.resume() }

    private func wakeReaders() {
        let waiting = waiters
        waiters.removeAll()
        for continuation in waiting.values { continuation.resume() }
    }

    var isGone: Bool { gone }

    /// A stored event as the API shows it; `nil` when it cannot be read.
    static func decode(_ record: SessionEventRecord) -> SessionEvent? {
        guard let payload = try? JSONValue.parse(record.payload) else { return nil }
        return SessionEvent(
            seq: record.seq, at: record.at, sender: SessionEventSender(rawValue: record.sender) ?? .agent, type: record.kind, payload: payload)
    }
}

/// The latest stored events of a session, oldest first, at most `capacity` of them and `byteCapacity` bytes (see
/// ``cost(of:)``): a ring whose seqs are consecutive.
struct RecentEvents {
    let capacity: Int
    let byteCapacity: Int
    private var storage: [EncodedSessionEvent] = []
    private(set) var bytes = 0

    init(capacity: Int, byteCapacity: Int) {
        self.capacity = capacity
        self.byteCapacity = byteCapacity
    }

    var count: Int { storage.count }
    var firstSeq: Int64? { storage.first?.seq }

    /// What an event held here costs: its JSON, and about as much again for its parsed form.
    static func cost(of event: EncodedSessionEvent) -> Int { 2 * event.json.count + 64 }

    mutating func append(contentsOf events: [EncodedSessionEvent]) {
        if let last = storage.last, let first = events.first, first.seq != last.seq + 1 { removeAll() }
        storage.append(contentsOf: events)
        for event in events { bytes += Self.cost(of: event) }
        // Trim in steps of a quarter, so that trimming (a copy) happens once per many writes.
        guard storage.count > capacity + capacity / 4 || bytes > byteCapacity + byteCapacity / 4 else { return }
        var drop = max(0, storage.count - capacity)
        for event in storage[..<drop] { bytes -= Self.cost(of: event) }
        while drop < storage.count, bytes > byteCapacity {
            bytes -= Self.cost(of: storage[drop])
            drop += 1
        }
        storage.removeFirst(drop)
    }

    mutating func removeAll() {
        storage.removeAll()
        bytes = 0
    }

    /// Up to `limit` events after `cursor`, or `nil` when the one after `cursor` is not held.
    func events(after cursor: Int64, limit: Int) -> ArraySlice<EncodedSessionEvent>? {
        guard let first = storage.first, first.seq <= cursor + 1, let last = storage.last, last.seq > cursor else { return nil }
        let start = Int(cursor + 1 - first.seq)
        return storage[start..<min(storage.count, start + limit)]
    }
}
