import AgentBoxAPI
import AgentBoxSandbox
import Foundation

/// An agent AgentBox can run in a workspace: how to launch a process that speaks ACP on its stdio.
public struct AgentDefinition: Sendable {
    /// The id sessions name (`mock`, `claude`, ...).
    public var id: String
    public var name: String
    /// The program and its arguments, in the workspace's own view; looked up on the workspace's `PATH`.
    public var command: [String]
    /// An AgentBox tool (`mock-agent`) to run instead of `command`: its path depends on the sandbox backend.
    public var tool: String?

    /// An installed binary the agent needs, relative to the agents directory (`claude/claude`): a session fails
    /// with a clear error when it is missing.
    public var requires: String?

    /// The model API the agent calls: the variable that moves it, and where it goes without one.
    public var modelEndpoint: (variable: String, standard: String)?

    /// Where the agent's binary is published, when AgentBox cannot fetch it itself (said when it cannot be installed).
    public var publishedAt: String?
    /// What keeps it from working everywhere, said in `GET /v1/agents`.
    public var limitation: String?

    public init(
        id: String, name: String, command: [String], tool: String? = nil, requires: String? = nil,
        modelEndpoint: (variable: String, standard: String)? = nil
    ) {
        self.modelEndpoint = modelEndpoint
        self.id = id
        self.name = name
        self.command = command
        self.tool = tool
        self.requires = requires
    }

    /// The deterministic mock agent (see `MockAgent`), mounted into every Linux sandbox.
    public static let mock = AgentDefinition(id: "mock", name: "AgentBox mock agent", command: [], tool: "mock-agent")

    /// Claude Code, driven through its stream-json protocol by `agentbox-acp-adapter claude` (see `ClaudeCodeAdapter`).
    public static let claude = AgentDefinition(
        id: "claude", name: "Claude Code", command: ["claude", "--claude", "{agents}/claude/claude"], tool: "acp-adapter", requires: "claude/claude",
        modelEndpoint: ("ANTHROPIC_BASE_URL", "https://api.anthropic.com"))

    /// Codex, driven through `codex app-server` by `agentbox-acp-adapter codex` (see `CodexAdapter`).
    public static let codex = AgentDefinition(
        id: "codex", name: "Codex", command: ["codex", "--codex", "{agents}/codex/codex"], tool: "acp-adapter", requires: "codex/codex",
        modelEndpoint: ("OPENAI_BASE_URL", "https://api.openai.com/v1"))

    /// Amp, through `acp-amp` (an ACP adapter on PyPI, which drives Amp's SDK), installed into a virtual environment
    /// on the system's /usr/bin/python3 (which workspaces see). Run through the environment's interpreter, since
    /// the script's first line names the host path.
    public static let amp = {
        var amp = AgentDefinition(
            id: "amp", name: "Amp (acp-amp)", command: ["{agents}/amp/venv/bin/python", "{agents}/amp/venv/bin/acp-amp"],
            requires: "amp/venv/bin/acp-amp")
        amp.limitation = "its turns go to Amp's own service (an Amp account and ampcode.com), not to a model API a base URL can move: sessions start and open here, turns need that service"
        return amp
    }()

    /// Pi, through its ACP adapter `pi-acp` (which runs `pi --mode rpc`; both need `pi` and node in the workspace).
    /// Installed from the server's PATH only here (npm is unreachable from this build's network); untested.
    public static let pi = {
        var pi = AgentDefinition(id: "pi", name: "Pi (pi-acp)", command: ["{agents}/pi/pi-acp"], requires: "pi/pi-acp")
        pi.publishedAt = "npm (pi-acp and @mariozechner/pi-coding-agent; it needs node in the workspace)"
        return pi
    }()

    /// opencode, which speaks ACP itself (`opencode acp`). Installed from the server's PATH only here (its channels,
    /// npm and GitHub releases, are not reachable from this build's network); untested for that reason.
    public static let opencode = {
        var opencode = AgentDefinition(id: "opencode", name: "opencode", command: ["{agents}/opencode/opencode", "acp"], requires: "opencode/opencode")
        opencode.publishedAt = "npm (opencode-ai) and GitHub releases (sst/opencode)"
        return opencode
    }()

    /// Gemini CLI, which speaks ACP itself (`gemini --acp`; versions before it used `--experimental-acp`). Installed from the server's PATH only here;
    /// untested for the same reason.
    public static let gemini = {
        var gemini = AgentDefinition(
            id: "gemini", name: "Gemini CLI", command: ["{agents}/gemini/gemini", "--acp"], requires: "gemini/gemini",
            modelEndpoint: ("GOOGLE_GEMINI_BASE_URL", "https://generativelanguage.googleapis.com"))
        gemini.publishedAt = "npm (@google/gemini-cli; it needs node in the workspace)"
        return gemini
    }()

    /// The arguments that start the agent under `backend`; throws when it cannot run there. `{agents}` in the
    /// command is the installed agents' directory as the sandbox sees it.
    func arguments(backend: (any SandboxBackend)?) throws -> [String] {
        let command = self.command.map { $0.replacingOccurrences(of: "{agents}", with: backend?.agentsPath ?? "/nonexistent") }
        guard let tool else { return command }
        guard let path = backend?.toolPath(tool) else {
            throw AgentBoxError(.unavailable, "agent '\(id)' needs agentbox-\(tool), which was not built beside the server (swift build --product agentbox-\(tool))")
        }
        return [path] + command
    }
}

extension AgentDefinition {
    /// Refuses, with a message that says what to change, a session whose model endpoint the workspace's egress policy
    /// blocks: the agent would otherwise retry for minutes against the proxy's 403s.
    /// The LLM gateway (`gateway`: its variables for this workspace; `gatewayPort`: where it listens) is always
    /// reachable: the proxy lets its `/llm/` paths through under any policy.
    func checkModelEndpoint(
        env: [String: String], workspaceEnv: [String: String], network: NetworkPolicy, gateway: [String: String] = [:], gatewayPort: Int? = nil
    ) throws {
        guard let endpoint = modelEndpoint else { return }
        let text = env[endpoint.variable] ?? workspaceEnv[endpoint.variable] ?? gateway[endpoint.variable] ?? endpoint.standard
        guard let url = URL(string: text), let host = url.host?.lowercased(), let scheme = url.scheme else {
            throw AgentBoxError(.invalidArgument, "\(endpoint.variable) '\(text)' is not a URL")
        }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        if host == EgressProxy.hostAlias, port == gatewayPort, scheme == "http", url.path.hasPrefix("/llm/") { return }
        let rules = try EgressRules(network.egress)
        let loopback = host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == EgressProxy.hostAlias
        let allowed = loopback ? rules.namesExactly(host: host, port: port) : rules.allows(host: host, port: port)
        guard allowed else {
            let hint = host == "localhost" || host.hasPrefix("127.")
                ? " (inside a workspace, 127.0.0.1 is the workspace itself: reach the host as \(EgressProxy.hostAlias):\(port))" : ""
            throw AgentBoxError(
                .forbidden,
                "agent '\(id)' calls its model at \(host):\(port), which this workspace's egress policy blocks; allow it with network.egress (for example [\"\(host):\(port)\"])\(hint)")
        }
    }
}
