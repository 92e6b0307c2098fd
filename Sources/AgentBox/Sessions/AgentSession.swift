import AgentBoxACP
import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import CoreMetrics
import Foundation
import Logging

/// One agent session: its agent process (when it runs), its turns, its permission questions and its transcript.
///
/// The session owns four parts and keeps what ties them together (its record, settings and turn state):
/// - ``AgentConnection``, the agent's process and its ACP connection (with ``AgentWorkspaceAccess`` serving the
///   agent's file and terminal requests);
/// - ``TurnState``, where the current turn is (turns are in `AgentSession+Turns.swift`);
/// - ``PermissionBroker``, the agent's permission questions;
/// - ``TranscriptWriter``, which numbers every message in and out, stores it and only then publishes it, so an
///   event anyone saw is on disk.
///
/// The agent process lives in the workspace's sandbox; it does not hold the workspace awake, a running turn does.
/// When the workspace sleeps the process ends, and the next prompt (or ``resume(env:)``) starts it again and
/// reattaches with `session/resume` or `session/load`, or hands a new agent session the transcript as context.
/// When the store refuses the transcript, the running turn ends with an error and prompts are refused until it
/// accepts it again.
public actor AgentSession {
    public nonisolated let id: String
    public nonisolated let workspaceKey: WorkspaceKey
    let runtime: WorkspaceRuntime
    let store: any Store
    let configuration: AgentBoxConfiguration
    let logger: Logger

    var record: SessionRecord
    var settings: SessionSettings
    /// The agent process's extra variables: in memory only.
    private var env: [String: String]
    /// The session was given `env` (``SessionSettings/envNames``) that a server restart lost: its agent does not start
    /// until `resume` gives env again (even `{}`), rather than start silently without its keys.
    private var envLost: Bool
    /// `resume` is stopping the agent to start it again with new env.
    var restarting = false

    let transcript: TranscriptWriter
    let connection: AgentConnection
    let permissions: PermissionBroker
    let questions: QuestionBroker
    let workspaceAccess: AgentWorkspaceAccess

    var turnState = TurnState.idle
    /// The running turn, from the moment its prompt is sent until its end is recorded; awaited by ``close()`` and
    /// ``shutdown()``.
    var turn: Task<PromptResult, Never>?
    /// Raised by ``cancel()``; the running turn's watchdog then gives the agent the cancel grace.
    let cancelRequested = Alarm()
    /// Why the running turn could not go on (its transcript could not be stored).
    var turnFailure: String?
    /// Text to put before the next prompt (instructions, or an earlier transcript after a fresh start).
    var pendingContext: String?
    private var gone = false
    /// What the agent offers (models, modes) and its current ones, from its latest handshake.
    var offered = AgentConnection.AgentOptions()
    /// Told about what the agent offers (the manager keeps it per agent for `GET /v1/agents/{id}`).
    private let optionsOffered: @Sendable (AgentConnection.AgentOptions) -> Void

    /// How many of the latest stored events are kept in memory for readers.
    public static let recentCapacity = 4096
    /// How many bytes of the latest stored events (their JSON, counted twice for the parsed copy held beside it)
    /// are kept in memory at most: a few large events (tool output, file contents) must not hold megabytes per session.
    public static let recentByteCapacity = 4 << 20

    init(
        record: SessionRecord, settings: SessionSettings, env: [String: String], lastSeq: Int64, definition: AgentDefinition,
        runtime: WorkspaceRuntime, store: any Store, configuration: AgentBoxConfiguration, logger: Logger,
        optionsOffered: @escaping @Sendable (AgentConnection.AgentOptions) -> Void = { _ in }
    ) {
        self.optionsOffered = optionsOffered
        id = record.id
        workspaceKey = record.workspaceKey
        self.record = record
        self.settings = settings
        self.env = env
        envLost = env.isEmpty && settings.envNames?.isEmpty == false
        self.runtime = runtime
        self.store = store
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "session.id"] = "\(record.id)"
        self.logger = logger
        let sessionId = record.id
        let stored = configuration.metrics.sessionEventsStored
        let transcript = TranscriptWriter(
            sessionId: sessionId, lastSeq: lastSeq, store: store, recentCapacity: Self.recentCapacity, recentByteCapacity: Self.recentByteCapacity,
            logger: logger
        ) { [runtime] events in
            // Only stored events are handed out: each one here is one the store holds.
            stored.increment(by: events.count)
            for event in events { await runtime.publish(.sessionEvent(SessionEventNotice(sessionId: sessionId, seq: event.seq, event: event))) }
        }
        self.transcript = transcript
        connection = AgentConnection(sessionId: sessionId, definition: definition, runtime: runtime, configuration: configuration, transcript: transcript)
        permissions = PermissionBroker(sessionId: sessionId, transcript: transcript) { [runtime] notice in
            await runtime.publish(.permissionRequest(notice))
        }
        questions = QuestionBroker(sessionId: sessionId, transcript: transcript, timeout: configuration.questionTimeout)
        workspaceAccess = AgentWorkspaceAccess(runtime: runtime, transcript: transcript, cwd: settings.cwd)
    }

    // MARK: State

    /// The session as the API shows it.
    public var snapshot: Session {
        get async {
            let status: SessionStatus = turnState.isBusy ? .running : record.state == "closed" ? .closed : .idle
            let agentRunning = await connection.current != nil
            var session = Session(
                id: id, workspace: workspaceKey, agent: record.agent, status: status, createdAt: record.createdAt,
                agentSessionId: record.agentSessionId, stopReason: record.stopReason, cwd: settings.cwd, agentRunning: agentRunning,
                permissions: policy, lastEventSeq: await transcript.durableSeq)
            session.model = settings.model ?? offered.currentModel
            session.mode = settings.mode ?? offered.currentMode
            session.availableModels = offered.models.isEmpty ? nil : offered.models
            session.availableModes = offered.modes.isEmpty ? nil : offered.modes
            session.agentUsage = settings.agentUsage
            session.usage = settings.agentUsage
            return session
        }
    }

    // MARK: Model and mode

    /// Sets the session's model (`mode` false) or mode (`mode` true) from the next turn on: stored with the session,
    /// recorded as a `model_changed` / `mode_changed` event, and set on the agent at once when it runs between turns
    /// (else before the next prompt). A value the agent did not offer (when it offers a list) is `invalidArgument`,
    /// as is one the running agent refuses (the session keeps its previous value then).
    public func set(_ value: String, mode: Bool) async throws -> Session {
        try checkOpen()
        let name = mode ? "mode" : "model"
        guard !value.isEmpty, value.utf8.count <= 256 else { throw AgentBoxError(.invalidArgument, "\(name) must be 1...256 bytes") }
        var offeredList = mode ? offered.modes : offered.models
        if offeredList.isEmpty, record.state != "closed", await connection.current == nil {
            // What the agent offers is not known since it last ran (a restart): it starts, and says.
            try await startAgentAwake()
            offeredList = mode ? offered.modes : offered.models
        }
        if !offeredList.isEmpty, !offeredList.contains(where: { $0.id == value }) {
            throw AgentBoxError(
                .invalidArgument, "the agent offers no \(name) '\(value.prefix(80))' (it offers: \(offeredList.map(\.id).joined(separator: ", ")))")
        }
        let previous = mode ? settings.mode : settings.model
        if mode { settings.mode = value } else { settings.model = value }
        if !turnState.isBusy, await connection.current != nil {
            do {
                try await connection.apply(model: mode ? nil : value, mode: mode ? value : nil, agentSessionId: record.agentSessionId ?? "")
            } catch {
                if mode { settings.mode = previous } else { settings.model = previous }
                throw error
            }
        }
        await persist()
        await append(.server, mode ? "mode_changed" : "model_changed", [name: .string(value)])
        return await snapshot
    }

    /// Throws `invalidArgument` when the running agent did not take the model or mode the session was created with:
    /// one missing from the list it offers, or one it refused. For a new session, whose creation then fails.
    func checkRequestedOptions(model: String?, mode: String?) async throws {
        for (name, value, list) in [("model", model, offered.models), ("mode", mode, offered.modes)] {
            if let value, !list.isEmpty, !list.contains(where: { $0.id == value }) {
                throw AgentBoxError(
                    .invalidArgument,
                    "the agent '\(record.agent)' offers no \(name) '\(value.prefix(80))' (it offers: \(list.map(\.id).joined(separator: ", ")))")
            }
        }
        if let refusal = await connection.launchRefusal { throw AgentBoxError(.invalidArgument, refusal) }
    }

    /// The agent reported what it offers: kept for the snapshot, and handed on.
    func agentOffered(_ options: AgentConnection.AgentOptions) {
        offered = options
        optionsOffered(options)
    }

    /// The permission rules in force.
    var policy: PermissionPolicy { (settings.permissions ?? PermissionPolicy()).laid(over: configuration.permissionPolicy) }

    /// A session loaded after the server stopped during a turn: that turn is over.
    func recoverInterruptedTurn() async {
        guard record.state == "running" else { return }
        await append(.server, "turn_end", ["stopReason": "error", "error": "the server stopped during the turn"])
        // Stored before the session is handed out: a stream opened while the server drains (it ends once caught up
        // with the store) would otherwise end without it.
        _ = await transcript.waitUntilDurable(await transcript.lastSeq, atMost: .seconds(5))
        record.state = "idle"
        record.stopReason = "error"
        await persist()
    }

    func persist() async {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            record.settings = String(decoding: try encoder.encode(settings), as: UTF8.self)
            _ = try await store.updateSession(record)
        } catch {
            logger.error("could not store the session's state", metadata: ["error": "\(error)"])
        }
    }

    func checkOpen() throws {
        if gone { throw AgentBoxError(.notFound, "no session '\(id)' in workspace '\(workspaceKey)'") }
    }

    var isGone: Bool { gone }

    /// Records an event in the transcript.
    func append(_ sender: SessionEventSender, _ type: String, _ payload: JSONValue) async {
        await transcript.append(sender, type, payload)
    }

    // MARK: The agent process

    /// Starts the agent when it does not run (booting the workspace if it sleeps) and returns its link.
    func ensureAgent() async throws -> AgentLink {
        try checkOpen()
        if envLost {
            let names = (settings.envNames ?? []).joined(separator: ", ")
            throw AgentBoxError(
                .conflict,
                "session '\(id)' was given env (\(names)), which is never stored and was lost when the server restarted (or another node took the workspace over): resume it with that env (POST .../sessions/\(id)/resume {\"env\": {...}}, or agentbox session resume \(workspaceKey) \(id) --env K=V), or with {\"env\": {}} (--no-env) to go on without it")
        }
        var launchEnv = env
        // The session's own commands (and the toolkit MCP server) name it in their tool calls.
        launchEnv["AGENTBOX_SESSION_ID"] = id
        let launch = AgentConnection.Launch(
            cwd: settings.cwd, env: launchEnv, mcpServers: toolkitMCPServer.map { [$0] + settings.mcpServers } ?? settings.mcpServers,
            mode: settings.mode, model: settings.model, agentSessionId: record.agentSessionId)
        let handlers = AgentConnection.Handlers(
            request: { [weak self] method, params in
                guard let self else { throw JSONRPCError.connectionClosed }
                return try await self.agentRequest(method, params)
            },
            sessionCreated: { [weak self] agentSessionId, withTranscript in
                await self?.agentSessionCreated(agentSessionId, withTranscript: withTranscript)
            },
            exited: { [weak self] link, status, stderr, problem in
                await self?.agentExited(link, status: status, stderr: stderr, problem: problem)
            },
            offered: { [weak self] options in await self?.agentOffered(options) })
        let link = try await connection.ensure(launch, handlers: handlers)
        await forgetRefusedOptions()
        return link
    }

    /// A model or mode the agent does not offer (one stored before a restart, or set while it did not run) is
    /// forgotten once it says what it offers: the session shows the agent's own, and prompts stop asking for it.
    private func forgetRefusedOptions() async {
        var changed = false
        if let model = settings.model, !offered.models.isEmpty, !offered.models.contains(where: { $0.id == model }) {
            settings.model = nil
            changed = true
        }
        if let mode = settings.mode, !offered.modes.isEmpty, !offered.modes.contains(where: { $0.id == mode }) {
            settings.mode = nil
            changed = true
        }
        if changed { await persist() }
    }

    /// The stdio MCP server (in ACP's form) that gives the agent the workspace's toolkits, when it has any and the
    /// server speaks MCP to them: `/.agentbox/bin/tool mcp`, which relays to the workspace's tools socket.
    private var toolkitMCPServer: JSONValue? {
        guard configuration.toolkitMCP != nil, runtime.config.toolkits?.isEmpty == false, let tool = configuration.sandbox?.toolPath("tool") else {
            return nil
        }
        return [
            "name": .string(WorkspaceManager.toolkitMCPServerName), "command": .string(tool), "args": ["mcp"],
            "env": [["name": "AGENTBOX_SESSION_ID", "value": .string(id)]],
        ]
    }

    /// The session's instructions, with the description of the workspace's toolkits before them (unless the session
    /// was created with `toolkitsInInstructions: false`).
    private func instructions() async -> String? {
        var briefing: String?
        if settings.toolkitsInInstructions != false, let names = runtime.config.toolkits, !names.isEmpty {
            var toolkits: [Toolkit] = []
            for name in names {
                if let toolkit = try? await store.toolkit(name: name) { toolkits.append(toolkit) }
            }
            briefing = WorkspaceManager.toolkitBriefing(toolkits, mcp: toolkitMCPServer != nil)
        }
        let parts = [briefing, settings.instructions].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: "\n\n")
    }

    /// The agent opened a new agent session: it is remembered, and the next prompt brings the instructions (and,
    /// when it replaces a lost one, the earlier conversation).
    private func agentSessionCreated(_ agentSessionId: String, withTranscript: Bool) async {
        record.agentSessionId = agentSessionId
        await persist()
        var context = await instructions().map { ResumeContext.instructionsMark + $0 }
        if withTranscript,
            let earlier = await ResumeContext.transcript(
                of: id, through: await transcript.durableSeq, store: store, limit: configuration.resumeContextBytes)
        {
            context = [context, earlier].compactMap { $0 }.joined(separator: "\n\n")
        }
        pendingContext = context
    }

    private func agentExited(_ link: AgentLink, status: SandboxExitStatus, stderr: String, problem: String?) async {
        await transcript.forgetRecentUnlessRead()
        await workspaceAccess.killTerminals()
        await permissions.cancelAll(by: .agentExit)
        await questions.cancelAll(by: .agentExit)
        guard !gone else { return }
        var payload: [String: JSONValue] = [
            "exitCode": status.exitCode.map { .number(Double($0)) } ?? .null,
            "signal": status.signal.map { .string(ProcessSignal.name(of: $0)) } ?? .null,
        ]
        if !stderr.isEmpty { payload["stderr"] = .string(String(stderr.suffix(2048))) }
        if let problem { payload["problem"] = .string(problem) }
        await append(.server, "agent_exited", .object(payload))
    }

    /// The agent's requests: permission questions go to the broker, the rest are served against the workspace.
    private func agentRequest(_ method: String, _ params: JSONValue?) async throws -> JSONValue {
        if method == ACP.Method.requestPermission {
            return try await permissions.request(params, policy: policy, alwaysAllowed: settings.alwaysAllowed ?? [])
        }
        if method == ACP.Method.elicitation { return try await questions.ask(params) }
        return try await workspaceAccess.handle(method, params, agentSessionId: record.agentSessionId)
    }

    func stopAgent() async {
        await connection.stop()
    }

    // MARK: Permissions

    /// Answers the pending permission request `permissionId` of this session.
    public func reply(_ permissionId: String, _ reply: PermissionReply) async throws {
        try checkOpen()
        let (outcome, kind) = try await permissions.outcome(of: permissionId, for: reply)
        if reply == .always, let kind, settings.alwaysAllowed?.contains(kind) != true {
            settings.alwaysAllowed = (settings.alwaysAllowed ?? []) + [kind]
            await persist()
        }
        await permissions.answer(permissionId, outcome: outcome, reply: reply, by: .client)
    }

    /// Answers the agent's waiting question `questionId`.
    public func answerQuestion(_ questionId: String, _ reply: QuestionReplyRequest) async throws {
        try checkOpen()
        try await questions.answer(questionId, reply)
    }

    /// The permission requests waiting for a reply.
    public var pendingPermissions: [PermissionRequestNotice] {
        get async { await permissions.notices }
    }

    // MARK: Resume, close, destroy

    /// Starts the agent if it does not run (reattaching to its session), opening a closed session again. `env`,
    /// when given, replaces the agent's variables from its next start on.
    public func resume(env: [String: String]?) async throws -> Session {
        try checkOpen()
        if let server = settings.acpServer { throw AgentBoxError(.conflict, "session '\(id)' is ACP server '\(server)': its client drives it over /v1/acp") }
        if let env {
            // The running agent has the old variables: it starts again with these (and reattaches to its session).
            var restart = false
            if env != self.env || envLost { restart = await connection.current != nil }
            // Checked after the last suspension before the stop: a turn that started meanwhile is not killed.
            if restart, turnState.isBusy {
                throw AgentBoxError(.conflict, "a turn is running in session '\(id)': its agent gets new env once it ends (resume again then)")
            }
            self.env = env
            envLost = false
            if restart {
                // A prompt that comes while the old agent stops is refused (409) rather than given to it.
                restarting = true
                await stopAgent()
                restarting = false
            }
            let names = env.isEmpty ? nil : env.keys.sorted()
            if names != settings.envNames {
                settings.envNames = names
                await persist()
            }
        }
        if record.state == "closed" {
            record.state = "idle"
            await persist()
            await append(.client, "resume", .object([:]))
        }
        try await startAgentAwake()
        return await snapshot
    }

    /// ``ensureAgent()`` with the workspace held awake (booted if it sleeps) while the agent starts.
    private func startAgentAwake() async throws {
        let activity = try await runtime.beginActivity()
        do {
            _ = try await ensureAgent()
        } catch {
            await runtime.endActivity(activity)
            throw error
        }
        await runtime.endActivity(activity)
    }

    /// Stops the agent and closes the session (a running turn is cancelled first); the transcript stays.
    public func close() async throws -> Session {
        try checkOpen()
        if let turn {
            await cancel()
            if let link = await connection.current { await link.stop() }
            _ = await turn.value
        }
        await stopAgent()
        if record.state != "closed" {
            record.state = "closed"
            await persist()
            await append(.client, "close", .object([:]))
        }
        await transcript.waitUntilDurable(await transcript.lastSeq)
        return await snapshot
    }

    /// Stops everything and ends the subscriptions; the caller deletes the records. Later calls fail `notFound`.
    func destroy() async {
        gone = true
        await transcript.end()
        await shutdown()
    }

    /// Ends the subscriptions (the server is draining its connections); they may come back.
    func finishSubscriptions() async {
        await transcript.drain()
    }

    /// Stops the agent (a running turn ends), writes what is pending and ends the subscriptions.
    func shutdown() async {
        await stopAgent()
        _ = await turn?.value
        await transcript.flush()
        await transcript.drain()
    }

    // MARK: The transcript

    /// Up to `limit` stored events after `cursor`; waits for the next write when there are none yet. Cancellable.
    func events(after cursor: Int64, limit: Int) async -> TranscriptWriter.Pull {
        await transcript.events(after: cursor, limit: limit)
    }

    /// A stored event as the API shows it; `nil` when it cannot be read.
    static func decode(_ record: SessionEventRecord) -> SessionEvent? {
        guard let payload = try? JSONValue.parse(record.payload) else { return nil }
        return SessionEvent(
            seq: record.seq, at: record.at, sender: SessionEventSender(rawValue: record.sender) ?? .agent, type: record.kind, payload: payload)
    }
}
