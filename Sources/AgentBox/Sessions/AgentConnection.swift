import AgentBoxACP
import AgentBoxAPI
import AgentBoxSandbox

/// The ACP connection to a session's agent: starting its process in the workspace, the handshake that opens (or
/// reopens) the agent's session, the task that reads the agent's output until it exits, and stopping it.
///
/// The agent's notifications go straight to the transcript; its requests and its exit go to the session through
/// ``Handlers``. There is one link at a time. Its runner task outlives the call that started the agent: this
/// connection owns it and awaits it in ``stop()``.
actor AgentConnection {
    /// What the connection hands to its session.
    struct Handlers: Sendable {
        /// A request from the agent (permissions, files, terminals); what it returns is the agent's answer.
        var request: JSONRPCConnection.RequestHandler
        /// The agent opened a new agent session (`session/new`); `withTranscript` when it replaces one the agent
        /// could not reopen.
        var sessionCreated: @Sendable (_ agentSessionId: String, _ withTranscript: Bool) async -> Void
        /// The agent's process ended: its link, how it ended, the tail of its stderr, a protocol problem.
        var exited: @Sendable (_ link: AgentLink, _ status: SandboxExitStatus, _ stderr: String, _ problem: String?) async -> Void
        /// The models and modes the agent offers, and its current ones (from `session/new`, `load` or `resume`).
        var offered: @Sendable (_ options: AgentOptions) async -> Void = { _ in }
    }

    /// What an agent says it offers: ACP's `models` (`availableModels`, `currentModelId`) and `modes`
    /// (`availableModes`, `currentModeId`) of a session.
    struct AgentOptions: Sendable, Equatable {
        var models: [AgentOption] = []
        var modes: [AgentOption] = []
        var currentModel: String?
        var currentMode: String?

        init(models: [AgentOption] = [], modes: [AgentOption] = [], currentModel: String? = nil, currentMode: String? = nil) {
            self.models = models
            self.modes = modes
            self.currentModel = currentModel
            self.currentMode = currentMode
        }

        /// Reads them from a `session/new` (or `load`, `resume`) result; `nil` when it has neither.
        init?(_ result: JSONValue) {
            func options(_ list: JSONValue?, id key: String) -> [AgentOption] {
                guard case .array(let items)? = list else { return [] }
                return items.prefix(200).compactMap { item in
                    guard let id = item[key]?.stringValue, !id.isEmpty else { return nil }
                    return AgentOption(
                        id: String(id.prefix(200)), name: String((item["name"]?.stringValue ?? id).prefix(200)),
                        description: item["description"]?.stringValue.map { String($0.prefix(1000)) })
                }
            }
            let models = result["models"], modes = result["modes"]
            guard models != nil && models != .null || modes != nil && modes != .null else { return nil }
            self.models = options(models?["availableModels"], id: "modelId")
            self.modes = options(modes?["availableModes"], id: "id")
            currentModel = models?["currentModelId"]?.stringValue
            currentMode = modes?["currentModeId"]?.stringValue
        }
    }

    /// What the agent is started with.
    struct Launch: Sendable {
        var cwd: String
        var env: [String: String]
        var mcpServers: [JSONValue]
        var mode: String?
        var model: String?
        /// The agent's own session to reattach to, when it had one.
        var agentSessionId: String?
    }

    nonisolated let sessionId: String
    private let definition: AgentDefinition
    private let runtime: WorkspaceRuntime
    private let configuration: AgentBoxConfiguration
    private let transcript: TranscriptWriter

    /// The running agent's link; `nil` while it does not run (or has not finished its handshake).
    private(set) var current: AgentLink?
    private var runner: Task<Void, Never>?
    private var starting: Task<AgentLink, any Error>?
    /// A `session/load` is under way: the agent replays the conversation, which the transcript already holds.
    private var loading = false
    private var replayed = 0
    /// The model and mode the running agent was last set to (by AgentBox); `nil`: as it started.
    private var appliedModel: String?
    private var appliedMode: String?
    /// What the running agent takes in prompts (ACP `agentCapabilities.promptCapabilities`: `image`,
    /// `embeddedContext`, `audio`).
    private(set) var promptCapabilities: JSONValue = .object([:])
    /// The agent's session id the last handshake ended with.
    private var handshakeSessionId: String?
    /// Why the agent, at its last start, refused the model or mode it was started with; `nil` when it took them.
    private(set) var launchRefusal: String?

    init(sessionId: String, definition: AgentDefinition, runtime: WorkspaceRuntime, configuration: AgentBoxConfiguration, transcript: TranscriptWriter) {
        self.sessionId = sessionId
        self.definition = definition
        self.runtime = runtime
        self.configuration = configuration
        self.transcript = transcript
    }

    /// Starts the agent when it does not run and returns its link; callers that come while it starts share the start.
    func ensure(_ launch: Launch, handlers: Handlers) async throws -> AgentLink {
        if let current { return current }
        if let starting { return try await starting.value }
        // Shared by every caller that comes meanwhile, and awaited by ``stop()``.
        let task = Task { try await self.start(launch, handlers: handlers) }
        starting = task
        defer { starting = nil }
        return try await task.value
    }

    /// Stops the agent (a start under way finishes first) and waits for its output to end.
    func stop() async {
        if let starting { _ = try? await starting.value }
        if let current { await current.stop() }
        if let runner {
            await runner.value
            if self.runner == runner { self.runner = nil }
        }
    }

    private func start(_ launch: Launch, handlers: Handlers) async throws -> AgentLink {
        let arguments = try definition.arguments(backend: configuration.sandbox)
        let process = try await runtime.launchAgentProcess(arguments: arguments, cwd: launch.cwd, env: launch.env)
        let link = AgentLink(process: process)
        await link.connection.setHandlers(
            request: handlers.request,
            notification: { [weak self] method, params in await self?.notification(method, params) })
        runner = Task { [weak self] in
            let (status, stderr, problem) = await link.run()
            await self?.ended(link)
            await handlers.exited(link, status, stderr, problem)
        }
        do {
            let limit = configuration.agentStartTimeout
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.handshake(link, launch, handlers: handlers) }
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
            await runner?.value
            let message = (error as? AgentBoxError)?.message ?? "\(error)"
            await transcript.append(.server, "error", ["message": .string("the agent '\(definition.id)' did not start: \(message)")])
            if let error = error as? AgentBoxError, error.code == .gatewayTimeout { throw error }
            throw AgentBoxError(.badGateway, "the agent '\(definition.id)' did not start: \(message)")
        }
        current = link
        appliedModel = nil
        appliedMode = nil
        // The session's model and mode, as asked for (a refusal is in the transcript; the agent runs on as it is).
        launchRefusal = nil
        do {
            try await apply(model: launch.model, mode: launch.mode, agentSessionId: handshakeSessionId ?? launch.agentSessionId ?? "")
        } catch {
            launchRefusal = (error as? AgentBoxError)?.message ?? "\(error)"
        }
        // When the workspace goes to sleep, the agent is stopped first and gently (it may save its state).
        await runtime.setStopHook(sessionId) { [weak self] in await self?.stop() }
        return link
    }

    /// Sets the running agent's model and mode (ACP `session/set_model`, `session/set_mode`) where they differ from
    /// what it was last set to; `nil` leaves one as it is. An agent that refuses is recorded as an `error` event and
    /// the call throws `invalidArgument` with its message.
    func apply(model: String?, mode: String?, agentSessionId: String) async throws {
        guard let link = current else { return }
        var refusals: [String] = []
        for (name, value, field) in [("session/set_mode", mode, "modeId"), ("session/set_model", model, "modelId")] {
            guard let value, value != (field == "modeId" ? appliedMode : appliedModel) else { continue }
            do {
                _ = try await link.connection.request(name, params: .object(["sessionId": .string(agentSessionId), field: .string(value)]))
                if field == "modeId" { appliedMode = value } else { appliedModel = value }
            } catch {
                let message = (error as? JSONRPCError)?.message ?? "\(error)"
                await transcript.append(.server, "error", ["message": .string("\(name) \(value) failed: \(message)")])
                refusals.append("the agent refused \(name) \(value): \(message)")
            }
        }
        if !refusals.isEmpty { throw AgentBoxError(.invalidArgument, refusals.joined(separator: "; ")) }
    }

    private func ended(_ link: AgentLink) {
        if current === link { current = nil }
    }

    /// `initialize`, then `session/new`, `session/resume` or `session/load`.
    private func handshake(_ link: AgentLink, _ launch: Launch, handlers: Handlers) async throws {
        let connection = link.connection
        let initialized = try await connection.request(ACP.Method.initialize, params: try ACP.json(ACP.InitializeParams.agentBox))
        let capabilities = initialized["agentCapabilities"] ?? .object([:])
        promptCapabilities = capabilities["promptCapabilities"] ?? .object([:])
        let setup: JSONValue = ["cwd": .string(launch.cwd), "mcpServers": .array(launch.mcpServers)]
        var method = "new"
        var agentSessionId = launch.agentSessionId
        if let previous = launch.agentSessionId {
            var params = setup
            if case .object(var fields) = params {
                fields["sessionId"] = .string(previous)
                params = .object(fields)
            }
            if let resume = capabilities["sessionCapabilities"]?["resume"], resume != .null {
                method = "resume"
                let resumed = try await connection.request("session/resume", params: params)
                if let options = AgentOptions(resumed) { await handlers.offered(options) }
            } else if capabilities["loadSession"] == .bool(true) {
                method = "load"
                loading = true
                replayed = 0
                defer { loading = false }
                do {
                    let loaded = try await connection.request(ACP.Method.loadSession, params: params)
                    if let options = AgentOptions(loaded) { await handlers.offered(options) }
                } catch let error as JSONRPCError where error != .connectionClosed {
                    // The agent lost its session (killed before it saved it, say): start afresh with the transcript.
                    await transcript.append(
                        .server, "error", ["message": .string("session/load failed (\(error.message)); starting a new agent session with the transcript")])
                    method = "new-with-transcript"
                }
            } else {
                method = "new-with-transcript"
            }
        }
        if method == "new" || method == "new-with-transcript" {
            let answer = try await connection.request(ACP.Method.newSession, params: setup)
            let created = try ACP.decode(ACP.NewSessionResult.self, from: answer)
            agentSessionId = created.sessionId
            await handlers.sessionCreated(created.sessionId, method == "new-with-transcript")
            if let options = AgentOptions(answer) { await handlers.offered(options) }
        }
        handshakeSessionId = agentSessionId
        var started: [String: JSONValue] = [
            "method": .string(method), "agentSessionId": .string(agentSessionId ?? ""), "agentCapabilities": capabilities,
            "protocolVersion": initialized["protocolVersion"] ?? .null,
        ]
        if method == "load" { started["replayedUpdates"] = .number(Double(replayed)) }
        if let info = initialized["agentInfo"] { started["agentInfo"] = info }
        await transcript.append(.server, "agent_started", .object(started))
    }

    /// The agent's notifications: its updates are the transcript (except those it replays on `session/load`).
    private func notification(_ method: String, _ params: JSONValue?) async {
        if method == ACP.Method.update {
            if loading {
                replayed += 1
                return
            }
            let kind = params?["update"]?["sessionUpdate"]?.stringValue ?? method
            await transcript.append(.agent, kind, params ?? .null)
        } else {
            await transcript.append(.agent, method, params ?? .null)
        }
    }
}
