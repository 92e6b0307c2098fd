import AgentBoxACP
import AgentBoxAPI
import AgentBoxStore
import Foundation
import Synchronization

extension WorkspaceManager {
    /// Largest page of ``sessionEvents(key:id:after:limit:)``.
    public static let maxSessionEventPage = 1000

    /// Creates a session and starts its agent in the workspace (booting it). A session whose agent cannot start, or
    /// does not take the model or mode asked for (`invalidArgument`), is not kept.
    public func createSession(key: WorkspaceKey, _ request: SessionCreateRequest) async throws -> Session {
        try checkOpen()
        guard let definition = configuration.agents.first(where: { $0.id == request.agent }) else {
            throw AgentBoxError(
                .invalidArgument, "unknown agent '\(request.agent)' (known: \(configuration.agents.map(\.id).joined(separator: ", ")))")
        }
        let settings = try Self.sessionSettings(request)
        for (name, value) in request.env ?? [:] { try WorkspaceRuntime.validateEnvironment(name: name, value: value) }
        let runtime = try await runtime(for: key)
        try definition.checkModelEndpoint(
            env: request.env ?? [:], workspaceEnv: runtime.config.env ?? [:], network: runtime.config.network ?? NetworkPolicy(),
            gateway: llmEnvironment(workspace: key, id: runtime.id, session: nil), gatewayPort: configuration.llmGateway?.port)
        if let required = definition.requires,
            !FileManager.default.isExecutableFile(atPath: configuration.agentsDirectory.appendingPathComponent(required).path)
        {
            guard !configuration.requirePreinstall else {
                throw AgentBoxError(.conflict, "agent '\(definition.id)' is not installed (POST /v1/agents/\(definition.id)/install, or agentbox agents install \(definition.id))")
            }
            _ = try await installAgent(definition.id).result()
        }
        let record = SessionRecord(
            id: RandomID.make(prefix: "ses_", length: 16), workspaceKey: key, agent: definition.id, state: "idle", createdAt: Date(),
            settings: String(decoding: try JSONEncoder().encode(settings), as: UTF8.self))
        try await store.createSession(record)
        let session = AgentSession(
            record: record, settings: settings, env: request.env ?? [:], lastSeq: 0, definition: definition, runtime: runtime, store: store,
            configuration: configuration, logger: logger, optionsOffered: optionsRecorder(definition.id))
        loadedSessions.withLock { $0[record.id] = session }
        do {
            _ = try await session.resume(env: nil)
            try await session.checkRequestedOptions(model: request.model, mode: request.mode)
            return await session.snapshot
        } catch {
            await session.destroy()
            loadedSessions.withLock { $0[record.id] = nil }
            _ = try? await store.deleteSession(id: record.id)
            throw error
        }
    }

    static func sessionSettings(_ request: SessionCreateRequest) throws -> SessionSettings {
        var cwd = request.cwd ?? "/workspace"
        if cwd.isEmpty || cwd.utf8.contains(0) || cwd.utf8.count > 4096 {
            throw AgentBoxError(.invalidArgument, "cwd must be a path of 1...4096 bytes without NUL")
        }
        if !cwd.hasPrefix("/") { cwd = "/workspace/" + cwd }
        cwd = try WorkspacePath(cwd).description
        // Checked as each agent's adapter will (ACP's shapes), so that a bad entry is a 400 here, not an agent that fails to start.
        do {
            for spec in try MCPServerSpec.parse(request.mcpServers ?? []) {
                guard spec.name.utf8.count <= 128 else {
                    throw AgentBoxError(.invalidArgument, "mcpServers: a server's name is 1...128 bytes, not '\(spec.name.prefix(40))…'")
                }
                guard spec.name != toolkitMCPServerName else {
                    throw AgentBoxError(.invalidArgument, "mcpServers: the name '\(spec.name)' is AgentBox's own (the workspace's toolkits)")
                }
            }
        } catch let error as JSONRPCError {
            throw AgentBoxError(.invalidArgument, error.message)
        }
        if let problem = request.permissions?.validationProblem() { throw AgentBoxError(.invalidArgument, problem) }
        for (name, value) in [("model", request.model), ("mode", request.mode)] {
            if let value, value.isEmpty || value.utf8.count > 256 { throw AgentBoxError(.invalidArgument, "\(name) must be 1...256 bytes") }
        }
        if let instructions = request.instructions, instructions.utf8.count > 1 << 20 {
            throw AgentBoxError(.invalidArgument, "instructions must be at most 1 MiB")
        }
        return SessionSettings(
            cwd: cwd, mcpServers: request.mcpServers ?? [], model: request.model, mode: request.mode, instructions: request.instructions,
            toolkitsInInstructions: request.toolkitsInInstructions, permissions: request.permissions,
            envNames: request.env?.isEmpty == false ? request.env?.keys.sorted() : nil)
    }

    /// The workspace's sessions, from the store: never boots.
    public func sessions(key: WorkspaceKey) async throws -> SessionList {
        _ = try await workspace(key: key)
        var items: [Session] = []
        for record in try await store.sessions(of: key) {
            if let live = loadedSessions.withLock({ $0[record.id] }) {
                items.append(await live.snapshot)
            } else if record.state == "running" {
                // Stored mid-turn by a server that stopped: loading it ends that turn.
                items.append(try await loadSession(key: key, id: record.id).snapshot)
            } else {
                items.append(try Self.storedSnapshot(record, lastEventSeq: try await store.lastSessionEventSeq(of: record.id), configuration: configuration))
            }
        }
        let usage = try await llmTotals(key).bySession
        for index in items.indices { items[index].usage = usage[items[index].id] ?? items[index].agentUsage }
        return SessionList(items: items)
    }

    /// One session. Never boots.
    public func session(key: WorkspaceKey, id: String) async throws -> Session {
        try await withUsage(loadSession(key: key, id: id).snapshot)
    }

    /// `session` with its model usage through the LLM gateway, when it has any.
    func withUsage(_ session: Session) async throws -> Session {
        var session = session
        session.usage = try await llmTotals(session.workspace).bySession[session.id] ?? session.agentUsage
        return session
    }

    static func storedSnapshot(_ record: SessionRecord, lastEventSeq: Int64, configuration: AgentBoxConfiguration) throws -> Session {
        let settings = try decodeSettings(record)
        var session = Session(
            id: record.id, workspace: record.workspaceKey, agent: record.agent, status: record.state == "closed" ? .closed : .idle,
            createdAt: record.createdAt, agentSessionId: record.agentSessionId, stopReason: record.stopReason, cwd: settings.cwd,
            agentRunning: false, permissions: (settings.permissions ?? PermissionPolicy()).laid(over: configuration.permissionPolicy),
            lastEventSeq: lastEventSeq)
        session.model = settings.model
        session.mode = settings.mode
        session.agentUsage = settings.agentUsage
        return session
    }

    /// Keeps what agent `agent` offered in its latest session, for ``agentDetails(_:)``.
    func optionsRecorder(_ agent: String) -> @Sendable (AgentConnection.AgentOptions) -> Void {
        { [weak self] options in self?.agentOptions.withLock { $0[agent] = (options.models, options.modes) } }
    }

    /// Answers question `questionId` of session `id`.
    public func answerQuestion(key: WorkspaceKey, id: String, questionId: String, _ reply: QuestionReplyRequest) async throws {
        try checkOpen()
        try await loadSession(key: key, id: id).answerQuestion(questionId, reply)
    }

    /// Sets session `id`'s model (or, with `mode`, its mode); see ``AgentSession/set(_:mode:)``.
    public func setSessionOption(key: WorkspaceKey, id: String, _ value: String, mode: Bool) async throws -> Session {
        try checkOpen()
        let session = try await loadSession(key: key, id: id)
        var snapshot = try await session.set(value, mode: mode)
        snapshot.usage = try await llmTotals(key).bySession[id] ?? snapshot.agentUsage
        return snapshot
    }

    static func decodeSettings(_ record: SessionRecord) throws -> SessionSettings {
        do {
            return try JSONDecoder().decode(SessionSettings.self, from: Data(record.settings.utf8))
        } catch {
            throw AgentBoxError(.internalError, "the stored settings of session '\(record.id)' cannot be read: \(error)")
        }
    }

    /// The live side of a session, loaded from the store when needed (its agent is not started).
    public func loadSession(key: WorkspaceKey, id: String) async throws -> AgentSession {
        try checkOpen()
        if let session = loadedSessions.withLock({ $0[id] }), session.workspaceKey == key { return session }
        guard RandomID.isValid(id, prefix: "ses_", length: 16), let record = try await store.session(id: id), record.workspaceKey == key else {
            _ = try await workspace(key: key)
            throw AgentBoxError(.notFound, "no session '\(id)' in workspace '\(key)'")
        }
        let definition = configuration.agents.first { $0.id == record.agent } ?? AgentDefinition(id: record.agent, name: record.agent, command: [record.agent])
        let session = AgentSession(
            record: record, settings: try Self.decodeSettings(record), env: [:], lastSeq: try await store.lastSessionEventSeq(of: id),
            definition: definition, runtime: try await runtime(for: key), store: store, configuration: configuration, logger: logger,
            optionsOffered: optionsRecorder(definition.id))
        let (winner, loaded) = loadedSessions.withLock { sessions -> (AgentSession, Bool) in
            if let existing = sessions[id] { return (existing, false) }
            sessions[id] = session
            return (session, true)
        }
        if loaded { await winner.recoverInterruptedTurn() }
        return winner
    }

    /// Sends a prompt. With `wait`, returns when the turn ends; otherwise as soon as the turn has started
    /// (`nil`). Boots the workspace and starts the agent when needed.
    public func prompt(key: WorkspaceKey, id: String, _ request: PromptRequest, wait: Bool = true) async throws -> PromptResult? {
        let turn = try await loadSession(key: key, id: id).prompt(request)
        return wait ? await turn.value : nil
    }

    /// Cancels the session's running turn (nothing when none runs).
    public func cancel(key: WorkspaceKey, id: String) async throws {
        try await loadSession(key: key, id: id).cancel()
    }

    /// Answers a pending permission request.
    public func replyPermission(key: WorkspaceKey, id: String, permissionId: String, _ reply: PermissionReply) async throws {
        try await loadSession(key: key, id: id).reply(permissionId, reply)
    }

    /// Starts the session's agent again if needed and reattaches it.
    public func resumeSession(key: WorkspaceKey, id: String, env: [String: String]? = nil) async throws -> Session {
        for (name, value) in env ?? [:] { try WorkspaceRuntime.validateEnvironment(name: name, value: value) }
        return try await loadSession(key: key, id: id).resume(env: env)
    }

    /// Stops the session's agent and keeps its transcript.
    public func closeSession(key: WorkspaceKey, id: String) async throws -> Session {
        try await loadSession(key: key, id: id).close()
    }

    /// Stops the session's agent and deletes it with its transcript.
    public func destroySession(key: WorkspaceKey, id: String) async throws {
        let session = try await loadSession(key: key, id: id)
        await session.destroy()
        loadedSessions.withLock { if $0[id] === session { $0[id] = nil } }
        _ = try await store.deleteSession(id: id)
    }

    func destroySessions(of key: WorkspaceKey) async {
        let sessions = loadedSessions.withLock { sessions in
            let mine = sessions.values.filter { $0.workspaceKey == key }
            for session in mine { sessions[session.id] = nil }
            return mine
        }
        for session in sessions { await session.destroy() }
    }

    /// A page of the session's transcript, from the store: never boots.
    public func sessionEvents(key: WorkspaceKey, id: String, after: Int64 = 0, limit: Int = 100) async throws -> SessionEventPage {
        let (items, nextCursor) = try await encodedSessionEvents(key: key, id: id, after: after, limit: limit)
        return SessionEventPage(items: items.map(\.event), nextCursor: nextCursor)
    }

    /// ``sessionEvents(key:id:after:limit:)`` with each event's JSON, for a transport that sends them as they are.
    public func encodedSessionEvents(
        key: WorkspaceKey, id: String, after: Int64 = 0, limit: Int = 100
    ) async throws -> (items: [EncodedSessionEvent], nextCursor: String?) {
        guard (1...Self.maxSessionEventPage).contains(limit) else {
            throw AgentBoxError(.invalidArgument, "limit must be 1...\(Self.maxSessionEventPage), not \(limit)")
        }
        guard after >= 0 else { throw AgentBoxError(.invalidArgument, "after must not be negative") }
        let session = try await loadSession(key: key, id: id)
        // A page holds only what is durable, and everything recorded before the read: events queued then are waited
        // for (the write under way, not events recorded later), so that a page read right after a call that recorded
        // events (a create's `agent_started`) has them. A store that refuses them, or stalls past 5 s, answers with
        // what it holds.
        _ = await session.transcript.waitUntilDurable(await session.transcript.lastSeq, atMost: .seconds(5))
        let records = try await store.sessionEvents(of: id, after: after, limit: limit)
        return (records.compactMap(EncodedSessionEvent.init), records.count == limit ? records.last.map { String($0.seq) } : nil)
    }

    /// The session's events after `after` (from the store, or from memory when they are recent), then its live ones
    /// as they are stored, until the session is destroyed or the server stops. Pulled: a slow reader holds back only
    /// itself, and buffers nothing of its own (readers share the session's recent events).
    public func sessionEventStream(key: WorkspaceKey, id: String, after: Int64 = 0) async throws -> SessionEventSequence {
        guard after >= 0 else { throw AgentBoxError(.invalidArgument, "after must not be negative") }
        let session = try await loadSession(key: key, id: id)
        // Opened while the server drains its streams (a session loaded only now was not drained): it ends once caught
        // up, as the others did, instead of holding the stop until its grace runs out.
        if streamsEnding.withLock({ $0 }) { await session.finishSubscriptions() }
        return SessionEventSequence(session: session, store: store, after: after)
    }
}

/// A session's transcript from a point on, then live: one event at a time, or in batches (``batches``) of what is
/// ready, with each event's JSON.
public struct SessionEventSequence: AsyncSequence, Sendable {
    public typealias Element = SessionEvent
    let session: AgentSession
    let store: any Store
    let after: Int64

    public func makeAsyncIterator() -> Iterator { Iterator(batches: batches.makeAsyncIterator()) }

    /// The same events, in batches of up to 256 that are ready together (a stored page, or what one write stored).
    public var batches: Batches { Batches(session: session, store: store, after: after) }

    public struct Iterator: AsyncIteratorProtocol {
        var batches: Batches.Iterator
        var batch: [EncodedSessionEvent] = []
        var index = 0

        public mutating func next() async throws -> SessionEvent? {
            while index == batch.count {
                guard let next = try await batches.next() else { return nil }
                batch = next
                index = 0
            }
            index += 1
            return batch[index - 1].event
        }
    }

    public struct Batches: AsyncSequence, Sendable {
        public typealias Element = [EncodedSessionEvent]
        let session: AgentSession
        let store: any Store
        let after: Int64

        public func makeAsyncIterator() -> Iterator { Iterator(session: session, store: store, cursor: after) }

        public struct Iterator: AsyncIteratorProtocol {
            static let limit = 256
            let session: AgentSession
            let store: any Store
            var cursor: Int64
            var fromStore = false
            var ended = false

            init(session: AgentSession, store: any Store, cursor: Int64) {
                self.session = session
                self.store = store
                self.cursor = cursor
            }

            public mutating func next() async throws -> [EncodedSessionEvent]? {
                while !ended {
                    try Task.checkCancellation()
                    if fromStore {
                        let records = try await store.sessionEvents(of: session.id, after: cursor, limit: Self.limit)
                        guard let last = records.last else {
                            fromStore = false
                            continue
                        }
                        cursor = last.seq
                        let batch = records.compactMap(EncodedSessionEvent.init)
                        if !batch.isEmpty { return batch }
                        continue
                    }
                    switch await session.events(after: cursor, limit: Self.limit) {
                    case .events(let batch):
                        cursor = batch[batch.count - 1].seq
                        return batch
                    case .behind: fromStore = true
                    case .ended: ended = true
                    }
                }
                return nil
            }
        }
    }
}
