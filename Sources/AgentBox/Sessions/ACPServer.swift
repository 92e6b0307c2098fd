import AgentBoxACP
import AgentBoxSandbox
import AgentBoxAPI
import AgentBoxStore
import Foundation
import Synchronization

/// An agent driven over ACP by an HTTP client, as sandbox-agent's `/v1/acp/{serverId}` does: the client is the ACP
/// client. Its JSON-RPC envelopes go to the agent's stdin (a request's answer comes back as the POST's answer); the
/// agent's notifications and requests go out as one SSE stream (`message` events, numbered, replayable after
/// `Last-Event-ID` from the newest 1,024), and the client answers the agent's requests by POSTing responses.
///
/// The agent runs in a workspace like any session's, and the server is a session of it (its id is the server's
/// `sessionId`): every envelope in and out is stored in that session's transcript, readable with the session routes.
/// It keeps its workspace awake while open; DELETE (or the agent's exit, or the workspace's deletion) ends it.
public actor ACPServer {
    public nonisolated let id: String
    public nonisolated let agent: String
    public nonisolated let workspace: WorkspaceKey
    public nonisolated let sessionId: String
    public nonisolated let createdAt: Date
    private let link: AgentLink
    private let transcript: TranscriptWriter
    private let runtime: WorkspaceRuntime
    private var activity: WorkspaceRuntime.Activity?
    /// The agent's envelopes, newest last, for late followers.
    private var ring: [(seq: Int64, payload: JSONValue)] = []
    private var nextSeq: Int64 = 1
    private var followers: [UUID: AsyncStream<(seq: Int64, payload: JSONValue)>.Continuation] = [:]
    /// The agent's requests waiting for the client's response, by the id the client sees.
    private var waiting: [String: CheckedContinuation<JSONValue, any Error>] = [:]
    private var nextRequest = 1
    private var ended = false
    private var runner: Task<Void, Never>?

    static let ringCapacity = 1024
    /// The most agent requests waiting for the client at once.
    static let maxWaiting = 256

    init(
        id: String, agent: String, workspace: WorkspaceKey, sessionId: String, link: AgentLink, transcript: TranscriptWriter,
        runtime: WorkspaceRuntime, activity: WorkspaceRuntime.Activity
    ) {
        self.id = id
        self.agent = agent
        self.workspace = workspace
        self.sessionId = sessionId
        self.link = link
        self.transcript = transcript
        self.runtime = runtime
        self.activity = activity
        createdAt = Date()
    }

    /// Wires the agent's output to the stream and starts reading it; `onExit` hears when the agent ends.
    func start(onExit: @escaping @Sendable () async -> Void) async {
        await link.connection.setHandlers(
            request: { [weak self] method, params in
                guard let self else { throw JSONRPCError.connectionClosed }
                return try await self.agentRequest(method, params)
            },
            notification: { [weak self] method, params in
                var envelope: [String: JSONValue] = ["jsonrpc": "2.0", "method": .string(method)]
                if let params { envelope["params"] = params }
                await self?.emit(.object(envelope), type: method)
            })
        let link = link
        runner = Task { [weak self] in
            let (status, _, problem) = await link.run()
            await self?.agentEnded(exitCode: status.exitCode, problem: problem)
            await onExit()
        }
    }

    // MARK: From the client

    /// What a client's POST became: the agent's answer to a request, or accepted (a notification or a response).
    public enum Outcome: Sendable {
        case response(JSONValue)
        case accepted
    }

    /// Takes one JSON-RPC envelope from the client.
    public func post(_ envelope: JSONValue) async throws -> Outcome {
        guard !ended else { throw AgentBoxError(.notFound, "ACP server '\(id)' has ended") }
        guard case .object(let fields) = envelope else { throw AgentBoxError(.invalidArgument, "an ACP envelope is a JSON-RPC object") }
        let id = fields["id"]
        if case .string(let method)? = fields["method"] {
            guard !method.isEmpty, method.utf8.count <= 256 else { throw AgentBoxError(.invalidArgument, "method: 1...256 bytes") }
            await transcript.append(.client, method, envelope)
            guard let id, id != .null else {
                try await link.connection.notify(method, params: fields["params"])
                return .accepted
            }
            var answer: [String: JSONValue] = ["jsonrpc": "2.0", "id": id]
            do {
                answer["result"] = try await link.connection.request(method, params: fields["params"])
            } catch let error as JSONRPCError {
                answer["error"] = try JSONValue.parse(JSONEncoder().encode(error))
            }
            await transcript.append(.agent, "response", .object(answer))
            return .response(.object(answer))
        }
        // A response to one of the agent's requests.
        guard let id, let key = Self.key(id), let waiter = waiting.removeValue(forKey: key) else {
            throw AgentBoxError(.invalidArgument, "an envelope without a method must answer a request of the agent that waits (by its id)")
        }
        await transcript.append(.client, "response", envelope)
        if let error = fields["error"], error != .null {
            let code: Int
            if case .number(let number)? = error["code"] { code = Int(number) } else { code = -32603 }
            waiter.resume(throwing: JSONRPCError(code: code, message: error["message"]?.stringValue ?? "error", data: error["data"]))
        } else {
            waiter.resume(returning: fields["result"] ?? .null)
        }
        return .accepted
    }

    /// The agent's envelopes after sequence `after` (0: all that are kept), then live ones, until it ends.
    public func events(after: Int64) -> AsyncStream<(seq: Int64, payload: JSONValue)> {
        let (stream, continuation) = AsyncStream<(seq: Int64, payload: JSONValue)>.makeStream(bufferingPolicy: .bufferingNewest(Self.ringCapacity))
        for event in ring where event.seq > after { continuation.yield(event) }
        if ended {
            continuation.finish()
        } else {
            let follower = UUID()
            followers[follower] = continuation
            continuation.onTermination = { [weak self] _ in Task { await self?.unfollow(follower) } }
        }
        return stream
    }

    /// Ends it: the agent is stopped, its waiting requests fail, the streams end.
    public func close() async {
        link.process.killTree()
        await runner?.value
    }

    // MARK: From the agent

    private func agentRequest(_ method: String, _ params: JSONValue?) async throws -> JSONValue {
        guard !ended, waiting.count < Self.maxWaiting else { throw JSONRPCError(code: -32603, message: "the client is not answering") }
        let key = "agentbox-\(nextRequest)"
        nextRequest += 1
        var envelope: [String: JSONValue] = ["jsonrpc": "2.0", "id": .string(key), "method": .string(method)]
        if let params { envelope["params"] = params }
        return try await withCheckedThrowingContinuation { continuation in
            waiting[key] = continuation
            Task { await self.emit(.object(envelope), type: method) }
        }
    }

    private func emit(_ envelope: JSONValue, type: String) async {
        await transcript.append(.agent, type, envelope)
        let event = (seq: nextSeq, payload: envelope)
        nextSeq += 1
        ring.append(event)
        if ring.count > Self.ringCapacity { ring.removeFirst(ring.count - Self.ringCapacity) }
        for follower in followers.values { follower.yield(event) }
    }

    private func unfollow(_ follower: UUID) {
        followers[follower] = nil
    }

    private func agentEnded(exitCode: Int32?, problem: String?) async {
        guard !ended else { return }
        ended = true
        for waiter in waiting.values { waiter.resume(throwing: JSONRPCError.connectionClosed) }
        waiting.removeAll()
        var payload: [String: JSONValue] = ["exitCode": exitCode.map { .number(Double($0)) } ?? .null]
        if let problem { payload["problem"] = .string(problem) }
        await transcript.append(.server, "agent_exited", .object(payload))
        for follower in followers.values { follower.finish() }
        followers.removeAll()
        if let activity { await runtime.endActivity(activity) }
        activity = nil
    }

    /// A JSON-RPC id as a dictionary key (a string or an integer).
    static func key(_ id: JSONValue) -> String? {
        switch id {
        case .string(let text): text
        case .number(let number) where number == number.rounded(): String(Int64(number))
        default: nil
        }
    }
}

extension WorkspaceManager {
    /// An ACP server id: 1...128 of letters, digits, `-`, `_`, `.`.
    static func isACPServerID(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count) && id.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) }
    }

    /// The open ACP servers, by id.
    public func acpServers() -> [ACPServer] {
        acpServerTable.withLock { Array($0.values) }.sorted { $0.id < $1.id }
    }

    /// ACP server `id`; `notFound` when it is not open.
    public func acpServer(_ id: String) throws -> ACPServer {
        guard let server = acpServerTable.withLock({ $0[id] }) else { throw AgentBoxError(.notFound, "no ACP server '\(id.prefix(128))'") }
        return server
    }

    /// ACP server `id`, started with agent `agent` in workspace `workspace` (default `acp-` and the id, made when it
    /// does not exist) when it is not open yet; `conflict` when it is open with another agent.
    public func acpServer(_ id: String, agent: String?, workspace: String?) async throws -> ACPServer {
        try checkOpen()
        guard Self.isACPServerID(id) else { throw AgentBoxError(.invalidArgument, "an ACP server id is 1...128 letters, digits, - _ .") }
        if let existing = acpServerTable.withLock({ $0[id] }) {
            if let agent, agent != existing.agent {
                throw AgentBoxError(.conflict, "ACP server '\(id)' runs agent '\(existing.agent)', not '\(agent.prefix(80))'")
            }
            return existing
        }
        guard let agent else { throw AgentBoxError(.notFound, "no ACP server '\(id)': the first POST names its agent (?agent=ID)") }
        guard let definition = configuration.agents.first(where: { $0.id == agent }) else {
            throw AgentBoxError(.invalidArgument, "unknown agent '\(agent.prefix(80))' (known: \(configuration.agents.map(\.id).joined(separator: ", ")))")
        }
        guard let key = WorkspaceKey(rawValue: workspace ?? "acp-" + id) else {
            throw AgentBoxError(.invalidArgument, "workspace: '\((workspace ?? "acp-" + id).prefix(80))' is not a workspace key")
        }
        return try await acpStarts.run(id) {
            if let existing = self.acpServerTable.withLock({ $0[id] }) { return existing }
            _ = try await self.create(key: key)
            if definition.requires != nil { _ = try await self.installAgent(definition.id).result() }
            let runtime = try await self.runtime(for: key)
            let settings = SessionSettings(cwd: "/workspace", mcpServers: [], acpServer: id)
            let record = SessionRecord(
                id: RandomID.make(prefix: "ses_", length: 16), workspaceKey: key, agent: definition.id, state: "closed", createdAt: Date(),
                settings: String(decoding: try JSONEncoder().encode(settings), as: UTF8.self))
            try await self.store.createSession(record)
            let transcript = TranscriptWriter(
                sessionId: record.id, lastSeq: 0, store: self.store, recentCapacity: 256, recentByteCapacity: 1 << 20, logger: self.logger
            ) { _ in }
            let activity = try await runtime.beginActivity()
            let process: SandboxProcess
            do {
                process = try await runtime.launchAgentProcess(
                    arguments: try definition.arguments(backend: self.configuration.sandbox), cwd: "/workspace", env: ["AGENTBOX_SESSION_ID": record.id])
            } catch {
                await runtime.endActivity(activity)
                throw error
            }
            let server = ACPServer(
                id: id, agent: definition.id, workspace: key, sessionId: record.id, link: AgentLink(process: process), transcript: transcript,
                runtime: runtime, activity: activity)
            await transcript.append(.server, "acp_server_started", ["serverId": .string(id), "agent": .string(definition.id)])
            self.acpServerTable.withLock { $0[id] = server }
            await server.start { [weak self, weak server] in
                self?.acpServerTable.withLock { table in
                    if let server, table[id] === server { table[id] = nil }
                }
            }
            return server
        }
    }

    /// Ends ACP server `id` (nothing when it is not open).
    public func closeACPServer(_ id: String) async {
        guard let server = acpServerTable.withLock({ $0.removeValue(forKey: id) }) else { return }
        await server.close()
    }
}

/// Runs one piece of work per key at a time: callers that come while it runs for their key share its result.
actor SingleFlight<Value: Sendable> {
    private var running: [String: Task<Value, any Error>] = [:]

    func run(_ key: String, _ work: @escaping @Sendable () async throws -> Value) async throws -> Value {
        if let task = running[key] { return try await task.value }
        let task = Task { try await work() }
        running[key] = task
        defer { running[key] = nil }
        return try await task.value
    }
}
