import AgentBoxAPI
import Foundation
import Synchronization

/// One install of an agent under way, which every caller asking for the same agent (and version) follows: its steps
/// so far and from now on, and its result. Started once; it goes on when its callers leave.
public final class AgentInstallJob: Sendable {
    public let agent: String
    public let version: String?
    private struct State {
        /// The steps so far (the newest 1,000), replayed to each new follower.
        var steps: [AgentInstallProgress] = []
        var followers: [UUID: AsyncStream<AgentInstallProgress>.Continuation] = [:]
        var finished = false
    }
    private let state = Mutex(State())
    private let task = Mutex<Task<AgentInstallResult, any Error>?>(nil)

    init(agent: String, version: String?) {
        self.agent = agent
        self.version = version
    }

    func start(_ work: @escaping @Sendable (@escaping @Sendable (AgentInstallProgress) -> Void) async throws -> AgentInstallResult, done: @escaping @Sendable () -> Void) {
        let job = self
        task.withLock {
            $0 = Task {
                defer {
                    done()
                    job.finish()
                }
                return try await work { step in job.publish(step) }
            }
        }
    }

    private func publish(_ step: AgentInstallProgress) {
        let followers = state.withLock { state -> [AsyncStream<AgentInstallProgress>.Continuation] in
            state.steps.append(step)
            if state.steps.count > 1000 { state.steps.removeFirst(state.steps.count - 1000) }
            return Array(state.followers.values)
        }
        for follower in followers { follower.yield(step) }
    }

    private func finish() {
        let followers = state.withLock { state -> [AsyncStream<AgentInstallProgress>.Continuation] in
            state.finished = true
            defer { state.followers.removeAll() }
            return Array(state.followers.values)
        }
        for follower in followers { follower.finish() }
    }

    /// The steps so far, then each new one, until the install ends. A slow follower loses the oldest steps it has not
    /// read (at most 1,000 wait), never the install's pace.
    public func steps() -> AsyncStream<AgentInstallProgress> {
        let (stream, continuation) = AsyncStream<AgentInstallProgress>.makeStream(bufferingPolicy: .bufferingNewest(1000))
        let id = UUID()
        let finished = state.withLock { state -> Bool in
            for step in state.steps { continuation.yield(step) }
            if !state.finished { state.followers[id] = continuation }
            return state.finished
        }
        if finished {
            continuation.finish()
        } else {
            continuation.onTermination = { [weak self] _ in self?.state.withLock { _ = $0.followers.removeValue(forKey: id) } }
        }
        return stream
    }

    /// The install's result (or its error), once it ends.
    public func result() async throws -> AgentInstallResult {
        guard let task = task.withLock({ $0 }) else { throw AgentBoxError(.internalError, "the install of \(agent) was not started") }
        return try await task.value
    }
}

extension WorkspaceManager {
    /// Installs agent `id` (from package version `version` when given; again when `reinstall`), or joins the install
    /// of it under way: two callers asking at once share one download. Asking for another version while one is under
    /// way is a conflict.
    public func installAgent(_ id: String, version: String? = nil, reinstall: Bool = false) throws -> AgentInstallJob {
        try checkOpen()
        guard configuration.agents.contains(where: { $0.id == id }) else {
            throw AgentBoxError(.notFound, "unknown agent '\(id.prefix(80))' (known: \(configuration.agents.map(\.id).joined(separator: ", ")))")
        }
        let (job, isNew) = try agentInstalls.withLock { installs -> (AgentInstallJob, Bool) in
            if let running = installs[id] {
                guard version == nil || running.version == version else {
                    throw AgentBoxError(
                        .conflict, "an install of \(id) \(running.version.map { "version \($0)" } ?? "(newest)") is under way; ask again when it ends")
                }
                return (running, false)
            }
            let job = AgentInstallJob(agent: id, version: version)
            installs[id] = job
            return (job, true)
        }
        if isNew {
            let installer = AgentInstaller(configuration: configuration, logger: logger)
            job.start({ progress in try await installer.install(id, version: version, reinstall: reinstall, progress: progress) }) { [weak self] in
                self?.agentInstalls.withLock { installs in
                    if installs[id] === job { installs[id] = nil }
                }
            }
        }
        return job
    }

    /// Agent `id` in detail: installed (and from which package version), being installed, where an install looks,
    /// and whether it has credentials for its model (names only).
    public func agentDetails(_ id: String) throws -> AgentDetails {
        guard let definition = configuration.agents.first(where: { $0.id == id }) else {
            throw AgentBoxError(.notFound, "unknown agent '\(id.prefix(80))' (known: \(configuration.agents.map(\.id).joined(separator: ", ")))")
        }
        let installer = AgentInstaller(configuration: configuration, logger: logger)
        let info = installer.list().first { $0.id == id }!
        let offered = agentOptions.withLock { $0[id] }
        return AgentDetails(
            agent: info, packageVersion: info.installed ? installer.packageVersion(of: definition) : nil,
            installing: agentInstalls.withLock { $0[id] != nil }, installSources: installer.sources(of: definition),
            credentials: credentials(of: definition), models: offered?.models ?? [], modes: offered?.modes ?? [])
    }

    /// Whether `definition`'s agent can reach a model with what the server has: its provider's variables in the
    /// server's environment, or the LLM gateway serving that provider. Agents whose keys AgentBox does not know
    /// (pi and opencode read their own configuration files) report none.
    func credentials(of definition: AgentDefinition, environment: [String: String] = ProcessInfo.processInfo.environment) -> AgentDetails.Credentials {
        guard definition.requires != nil else { return AgentDetails.Credentials(needed: false, available: false, sources: []) }
        let (provider, variables): (LLMProvider?, [String]) =
            switch definition.id {
            case "claude": (.anthropic, ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"])
            case "codex": (.openai, ["OPENAI_API_KEY"])
            case "gemini": (nil, ["GEMINI_API_KEY", "GOOGLE_API_KEY"])
            case "amp": (nil, ["AMP_API_KEY"])
            default: (nil, [])
            }
        var sources: [String] = []
        if let provider, configuration.llmGateway?.upstreams[provider] != nil { sources.append("gateway:\(provider.rawValue)") }
        sources += variables.filter { environment[$0]?.isEmpty == false }.map { "environment:" + $0 }
        return AgentDetails.Credentials(needed: true, available: !sources.isEmpty, sources: sources)
    }
}
