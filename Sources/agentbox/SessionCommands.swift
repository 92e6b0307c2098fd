import AgentBox
import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation
import UnixSignals

/// `agentbox session …`: agent sessions in a workspace. Talk to one with `agentbox prompt`.
struct SessionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session", abstract: "Create, list, inspect, resume, close and destroy agent sessions.",
        discussion: """
            Examples:
              agentbox session create demo --agent claude
              agentbox session list demo
            """,
        subcommands: [Create.self, List.self, Get.self, Events.self, Cancel.self, Resume.self, Model.self, Mode.self, Answer.self, Close.self, Delete.self])

    struct Answer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Answer an agent's question (its question event): with a value, a JSON object of its fields, or --decline.",
            discussion: """
                Examples:
                  agentbox session answer demo SESSION_ID q_0123456789ab Ada
                  agentbox session answer demo SESSION_ID q_0123456789ab '{"name":"Ada"}'
                  agentbox session answer demo SESSION_ID q_0123456789ab --decline
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The session id.") var id: String
        @Argument(help: "The question id (q_…).") var questionId: String
        @Argument(help: "The answer: text, or a JSON object of the question's fields.") var answer: String?
        @Flag(help: "Decline to answer.") var decline = false

        func validate() throws {
            if decline == (answer != nil) { throw ValidationError("give an answer, or --decline") }
        }

        func run() async throws {
            try await runClientCall {
                var reply = QuestionReplyRequest(action: .decline)
                if let answer {
                    let parsed = answer.hasPrefix("{") ? try? JSONValue.parse(Data(answer.utf8)) : nil
                    reply = QuestionReplyRequest(answer: parsed ?? .string(answer))
                }
                try await client.makeClient().answerQuestion(key, id, questionId, reply)
                print("answered \(questionId)")
            }
        }
    }

    struct Model: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the session's model from the next turn on; without a model, list the ones the agent offers.",
            discussion: """
                Examples:
                  agentbox session model demo SESSION_ID
                  agentbox session model demo SESSION_ID sonnet
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The session id.") var id: String
        @Argument(help: "The model id.") var model: String?

        func run() async throws {
            try await SessionCommand.showOrSet(client, key, id, model, mode: false)
        }
    }

    struct Mode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the session's mode from the next turn on; without a mode, list the ones the agent offers.",
            discussion: """
                Examples:
                  agentbox session mode demo SESSION_ID
                  agentbox session mode demo SESSION_ID plan
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The session id.") var id: String
        @Argument(help: "The mode id.") var mode: String?

        func run() async throws {
            try await SessionCommand.showOrSet(client, key, id, mode, mode: true)
        }
    }

    /// Sets the session's model (or, with `mode`, its mode) to `value` when given, then prints the choices.
    static func showOrSet(_ options: ClientOptions, _ key: String, _ id: String, _ value: String?, mode: Bool) async throws {
        try await runClientCall {
            let client = try options.makeClient()
            let session: Session
            if let value {
                session = mode ? try await client.setSessionMode(key, id, value) : try await client.setSessionModel(key, id, value)
            } else {
                session = try await client.session(key, id)
            }
            printOptions(current: mode ? session.mode : session.model, offered: mode ? session.availableModes : session.availableModels)
        }
    }

    /// The current choice, then what the agent offers (`*` marks the current one).
    static func printOptions(current: String?, offered: [AgentOption]?) {
        guard let offered, !offered.isEmpty else {
            print(current ?? "- (the agent has not said; it offers what its own configuration allows)")
            return
        }
        printRows([[" ", "ID", "NAME"]] + offered.map { [$0.id == current ? "*" : " ", $0.id, $0.name] })
        if let current, !offered.contains(where: { $0.id == current }) { print("current: \(current)") }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a session and start its agent; prints the session id.",
            discussion: """
                Examples:
                  agentbox session create demo --agent claude --env ANTHROPIC_API_KEY=sk-...
                  agentbox session create demo --agent mock --permissions read=allow,*=ask
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Option(help: "The agent (mock, claude, codex, ...).") var agent: String
        @Option(help: "Working directory inside the workspace (default /workspace).") var cwd: String?
        @Option(name: .customLong("env"), help: "NAME=VALUE for the agent process only (repeatable; never stored).") var env: [String] = []
        @Option(help: "The model, when the agent offers a choice.") var model: String?
        @Option(help: "The agent's mode, when it has modes.") var mode: String?
        @Option(help: "Instructions given to the agent with the first prompt.") var instructions: String?
        @Option(help: #"MCP servers as a JSON array of ACP server objects, e.g. '[{"name":"db","command":"/usr/bin/python3","args":["/workspace/db.py"],"env":[]}]'."#)
        var mcpServers: String?
        @Flag(help: "Leave the description of the workspace's toolkits out of the instructions.") var noToolkitsInInstructions = false
        @Option(help: "Permission rules KIND=allow|ask|reject, comma-separated; * for the rest (e.g. read=allow,execute=ask).")
        var permissions: String?
        @Option(help: "How long a permission question waits for a reply before it is rejected (e.g. 30s, 5m).") var permissionTimeout: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            var request = SessionCreateRequest(
                agent: agent, cwd: cwd, env: try parseEnvironment(env).nilIfEmpty, model: model, mode: mode, instructions: instructions,
                toolkitsInInstructions: noToolkitsInInstructions ? false : nil)
            if let mcpServers {
                guard case .array(let servers)? = try? JSONDecoder().decode(JSONValue.self, from: Data(mcpServers.utf8)) else {
                    throw ValidationError("--mcp-servers must be a JSON array")
                }
                request.mcpServers = servers
            }
            if permissions != nil || permissionTimeout != nil {
                var policy = PermissionPolicy()
                if let permissions {
                    do { policy = try PermissionPolicy(compact: permissions) } catch { throw ValidationError("--permissions: \(error)") }
                }
                if let permissionTimeout {
                    guard let duration = Duration.parse(permissionTimeout), duration > .zero else {
                        throw ValidationError("--permission-timeout must be a duration such as 30s or 5m")
                    }
                    policy.timeoutMs = Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
                }
                request.permissions = policy
            }
            try await runClientCall {
                let session = try await client.makeClient().createSession(key, request)
                if json { return try printJSON(session) }
                print(session.id)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a workspace's sessions (never boots it).",
            discussion: """
                Example:
                  agentbox session list demo
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let list = try await client.makeClient().sessions(key)
                if json { return try printJSON(list) }
                printRows(
                    [["ID", "AGENT", "STATUS", "AGENT RUNNING", "LAST STOP", "EVENTS", "CREATED"]]
                        + list.items.map {
                            [$0.id, $0.agent, $0.status.rawValue, $0.agentRunning ? "yes" : "no", $0.stopReason ?? "-", String($0.lastEventSeq), RFC3339.format($0.createdAt)]
                        })
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one session as JSON.",
        discussion: """
            Example:
              agentbox session get demo SESSION_ID
            """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The session id.") var id: String

        func run() async throws {
            try await runClientCall { try printJSON(try await client.makeClient().session(key, id)) }
        }
    }

    struct Events: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a session's transcript; --follow keeps printing new events.",
            discussion: """
                Examples:
                  agentbox session events demo SESSION_ID --limit 50
                  agentbox session events demo SESSION_ID --follow --json
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The session id.") var id: String
        @Option(help: "Only events after this seq.") var after: Int64 = 0
        @Option(help: "At most this many events (without --follow).") var limit: Int?
        @Flag(name: .shortAndLong, help: "Keep printing events as they come.") var follow = false
        @Flag(help: "Print each event as one line of JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let client = try client.makeClient()
                let encoder = AgentBoxJSON.makeEncoder()
                func show(_ event: SessionEvent) throws {
                    if json {
                        printFlushed(String(decoding: try encoder.encode(event), as: UTF8.self))
                    } else {
                        printFlushed("\(event.seq)\t\(RFC3339.format(event.at))\t\(event.sender.rawValue)\t\(event.type)\t\(TranscriptPrinter.summary(event))")
                    }
                }
                if follow {
                    for try await event in try await client.sessionEvents(key, id, after: after) { try show(event) }
                    return
                }
                var cursor = after
                var remaining = limit ?? Int.max
                while remaining > 0 {
                    let page = try await client.sessionEventPage(key, id, after: cursor, limit: min(1000, remaining))
                    for event in page.items { try show(event) }
                    remaining -= page.items.count
                    guard let next = page.nextCursor, let value = Int64(next) else { break }
                    cursor = value
                }
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel the running turn.",
            discussion: """
                Example:
                  agentbox session cancel demo SESSION_ID
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The session id.") var id: String

        func run() async throws {
            try await runClientCall { try await client.makeClient().cancelTurn(key, id) }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the session's agent again and reattach it (after sleep, close or a restart).",
            discussion: """
                --env replaces the whole env the agent was given (a running agent starts again with it). After a server restart, which loses a session's env, give it again, or --no-env to go on without.
                Examples:
                  agentbox session resume demo SESSION_ID --env ANTHROPIC_API_KEY=sk-...
                  agentbox session resume demo SESSION_ID --no-env
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The session id.") var id: String
        @Option(name: .customLong("env"), help: "NAME=VALUE for the agent process (repeatable); replaces its whole env.") var env: [String] = []
        @Flag(help: "Give the agent no env (after a restart lost it: go on without).") var noEnv = false
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if noEnv, !env.isEmpty { throw ValidationError("--no-env and --env exclude each other") }
        }

        func run() async throws {
            let variables = noEnv ? [:] : try parseEnvironment(env).nilIfEmpty
            try await runClientCall {
                let session = try await client.makeClient().resumeSession(key, id, env: variables)
                if json { return try printJSON(session) }
                print("\(session.id) \(session.status.rawValue), agent session \(session.agentSessionId ?? "-")")
            }
        }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the agent; keep the transcript.",
            discussion: """
                Example:
                  agentbox session close demo SESSION_ID
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The session id.") var id: String

        func run() async throws {
            try await runClientCall {
                _ = try await client.makeClient().closeSession(key, id)
                print("closed \(id)")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Destroy a session and its transcript.",
        discussion: """
            Example:
              agentbox session rm demo SESSION_ID
            """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The session id.") var id: String

        func run() async throws {
            try await runClientCall {
                try await client.makeClient().deleteSession(key, id)
                print("deleted \(id)")
            }
        }
    }
}

/// `agentbox prompt KEY SESSION TEXT`: sends a prompt and prints the reply as it streams.
struct PromptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prompt",
        abstract: "Send a prompt to a session and stream the reply; permission questions are asked here (y/n/a).",
        discussion: """
            Tool calls are shown compactly. On a terminal, each permission request is asked: y (allow once), \
            a (allow always), n (reject). Without a terminal, --approve answers them, else the server's policy and \
            timeout do. Ctrl-C cancels the turn. Exit code: 0 when the turn ends (end_turn, cancelled, ...), 1 on error.
            Examples:
              agentbox prompt demo SESSION_ID 'Add a test for the parser'
              git diff | agentbox prompt demo SESSION_ID - --approve once --json
            """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The workspace key.") var key: String
    @Argument(help: "The session id.") var id: String
    @Argument(help: "The prompt's text (- reads it from stdin).") var text: String
    @Option(help: "Answer every permission request so, without asking: once, always or reject.") var approve: PermissionReply?
    @Flag(help: "Also show file and terminal requests and their answers.") var verbose = false
    @Flag(help: "Print each event as one line of JSON.") var json = false

    func run() async throws {
        var prompt = text
        if text == "-" {
            prompt = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        }
        let interactive = isatty(0) == 1 && text != "-"
        try await runClientCall {
            let client = try client.makeClient()
            let session = try await client.session(key, id)
            let events = try await client.sessionEvents(key, id, after: session.lastEventSeq)
            try await client.startPrompt(key, id, PromptRequest(text: prompt))
            let (key, id) = (key, id)
            let interrupts = Task {
                for await _ in await UnixSignalsSequence(trapping: .sigint) {
                    printError("\n^C: cancelling the turn")
                    try? await client.cancelTurn(key, id)
                }
            }
            defer { interrupts.cancel() }
            var printer = TranscriptPrinter(verbose: verbose, json: json)
            var promptSeen = false
            for try await event in events {
                if event.type == "prompt" && event.sender == .client { promptSeen = true }
                printer.show(event)
                if event.type == "permission_request", let permissionId = event.payload["permissionId"]?.stringValue {
                    let reply = approve ?? (interactive ? Self.ask(event) : nil)
                    if reply == nil {
                        // Not a terminal and no --approve: someone else answers (another client, the Inspector, the
                        // session's policy or its timeout). Say so rather than wait without a word.
                        printError(
                            "  (waiting for an answer from another client, the session's policy or its timeout: this command answers permission requests only on a terminal, or with --approve once|always|reject)"
                        )
                    }
                    if let reply {
                        do {
                            try await client.replyPermission(key, id, permissionId: permissionId, reply)
                        } catch let error as AgentBoxClientError where error.status == 404 {
                            // Answered already (by the policy, a timeout or another client).
                        }
                    }
                }
                if event.type == "question", !interactive, event.payload["questionId"] != nil {
                    printError("  (waiting for an answer from another client or the question's timeout: this command answers questions only on a terminal)")
                }
                if event.type == "question", interactive, let questionId = event.payload["questionId"]?.stringValue {
                    let reply = Self.ask(question: event)
                    do {
                        try await client.answerQuestion(key, id, questionId, reply)
                    } catch let error as AgentBoxClientError where error.status == 404 {
                        // Answered already (a timeout, a cancel or another client).
                    }
                }
                if promptSeen, event.type == "turn_end" {
                    printer.finish()
                    let stop = event.payload["stopReason"]?.stringValue ?? "?"
                    if stop == "error" { throw ExitCode(1) }
                    return
                }
            }
            printError("the event stream ended before the turn did")
            throw ExitCode(1)
        }
    }

    /// Asks a question on the terminal: each field of its form in turn (an empty line declines).
    static func ask(question event: SessionEvent) -> QuestionReplyRequest {
        var fields: [(name: String, title: String)] = []
        if case .object(let properties)? = event.payload["requestedSchema"]?["properties"] {
            fields = properties.keys.sorted().map { ($0, properties[$0]?["title"]?.stringValue ?? $0) }
        }
        if fields.isEmpty { fields = [("answer", "answer")] }
        var answer: [String: JSONValue] = [:]
        for field in fields {
            FileHandle.standardError.write(Data("\(field.title) (empty to decline): ".utf8))
            guard let line = readLine(), !line.isEmpty else { return QuestionReplyRequest(action: .decline) }
            answer[field.name] = .string(line)
        }
        return QuestionReplyRequest(answer: .object(answer))
    }

    static func ask(_ event: SessionEvent) -> PermissionReply? {
        let call = event.payload["toolCall"]
        let title = call?["title"]?.stringValue ?? "a tool call"
        let kind = call?["kind"]?.stringValue ?? "other"
        while true {
            FileHandle.standardError.write(Data("\nAllow \(title) (\(kind))? [y]es once, [a]lways, [n]o: ".utf8))
            guard let line = readLine() else { return nil }
            switch line.trimmingCharacters(in: .whitespaces).lowercased() {
            case "y", "yes": return .once
            case "a", "always": return .always
            case "n", "no": return .reject
            default: continue
            }
        }
    }
}

extension PermissionReply: ExpressibleByArgument {}

/// Prints transcript events for people: the agent's text as it streams, tool calls and plans compactly.
struct TranscriptPrinter {
    let verbose: Bool
    let json: Bool
    private var midLine = false
    private let encoder = AgentBoxJSON.makeEncoder()

    init(verbose: Bool, json: Bool) {
        self.verbose = verbose
        self.json = json
    }

    mutating func show(_ event: SessionEvent) {
        if json {
            if let data = try? encoder.encode(event) { printFlushed(String(decoding: data, as: UTF8.self)) }
            return
        }
        let update = event.payload["update"]
        switch event.type {
        case "agent_message_chunk":
            write(update?["content"]?["text"]?.stringValue ?? "")
        case "agent_thought_chunk":
            if verbose { write(update?["content"]?["text"]?.stringValue ?? "") }
        case "tool_call":
            line("⚙ \(update?["title"]?.stringValue ?? "tool") [\(update?["kind"]?.stringValue ?? "other")] \(update?["status"]?.stringValue ?? "")")
        case "tool_call_update":
            if let status = update?["status"]?.stringValue { line("  ↳ \(update?["toolCallId"]?.stringValue ?? "") \(status)") }
        case "plan":
            if case .array(let entries)? = update?["entries"] {
                line("Plan:\n" + entries.map { "  - [\($0["status"]?.stringValue ?? "")] \($0["content"]?.stringValue ?? "")" }.joined(separator: "\n"))
            }
        case "permission_request":
            let call = event.payload["toolCall"]
            line("? permission asked for \(call?["title"]?.stringValue ?? "a tool call") [\(call?["kind"]?.stringValue ?? "other")]")
        case "permission_reply":
            line("  permission: \(event.payload["outcome"]?.stringValue ?? "") \(event.payload["optionId"]?.stringValue ?? "") (by \(event.payload["by"]?.stringValue ?? ""))")
        case "question":
            line("? the agent asks: \(event.payload["message"]?.stringValue ?? "") (question \(event.payload["questionId"]?.stringValue ?? ""))")
        case "question_reply":
            line("  answer: \(event.payload["action"]?.stringValue ?? "") (by \(event.payload["by"]?.stringValue ?? ""))")
        case "question_timeout":
            line("  the question timed out unanswered")
        case "model_changed", "mode_changed":
            line("[\(event.type == "model_changed" ? "model" : "mode"): \(event.payload["model"]?.stringValue ?? event.payload["mode"]?.stringValue ?? "")]")
        case "error":
            line("error: \(event.payload["message"]?.stringValue ?? Self.summary(event))")
        case "turn_end":
            let error = event.payload["error"]?.stringValue.map { ": \($0)" } ?? ""
            line("[\(event.payload["stopReason"]?.stringValue ?? "?")\(error)]")
        case "agent_exited":
            line("[the agent exited: \(Self.summary(event))]")
        case "prompt", "agent_started", "cancel":
            if verbose { line("[\(event.type)] \(Self.summary(event))") }
        default:
            if verbose { line("[\(event.type)] \(Self.summary(event))") }
        }
    }

    mutating func finish() {
        if midLine { write("\n") }
    }

    private mutating func write(_ text: String) {
        guard !text.isEmpty else { return }
        writeStandardOutput(Data(text.utf8))
        midLine = !text.hasSuffix("\n")
    }

    private mutating func line(_ text: String) {
        if midLine { write("\n") }
        write(text + "\n")
    }

    /// One line of the event's payload.
    static func summary(_ event: SessionEvent) -> String {
        if event.type == "agent_message_chunk", let text = event.payload["update"]?["content"]?["text"]?.stringValue {
            return text.replacingOccurrences(of: "\n", with: "\\n")
        }
        let encoder = AgentBoxJSON.makeEncoder()
        let text = (try? encoder.encode(event.payload)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }
}

/// `agentbox agents list|info|install`.
struct AgentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agents", abstract: "List the agents the server runs; show or install one.",
        discussion: """
            Examples:
              agentbox agents list
              agentbox agents info claude
              agentbox agents install claude --package-version 0.1.40
            """,
        subcommands: [List.self, Info.self, Install.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the agents and whether each is installed.",
            discussion: """
                Example:
                  agentbox agents list --json
                """)
        @OptionGroup var client: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let list = try await client.makeClient().agents()
                if json { return try printJSON(list) }
                printRows(
                    [["ID", "NAME", "INSTALLED", "VERSION"]]
                        + list.items.map { [$0.id, $0.name, $0.installed ? "yes" : $0.installable == false ? "no (not installable here)" : "no", $0.version ?? "-"] })
                for agent in list.items {
                    if let reason = agent.notInstallableReason { print("\(agent.id): \(reason)") }
                    if let limitation = agent.limitation { print("\(agent.id): \(limitation)") }
                }
            }
        }
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an agent: installed, versions, install sources, and whether the server has credentials for it.",
            discussion: """
                Example:
                  agentbox agents info codex
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The agent id (claude, codex, mock, ...).") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let agent = try await client.makeClient().agent(id)
                if json { return try printJSON(agent) }
                let credentials =
                    !agent.credentials.needed ? "not needed"
                    : agent.credentials.available ? "available (\(agent.credentials.sources.joined(separator: ", ")))" : "none found"
                printRows([
                    ["id", agent.id], ["name", agent.name],
                    ["installed", agent.installed ? "yes" : (agent.installing ? "no (installing now)" : "no")],
                    ["version", agent.version ?? "-"], ["package version", agent.packageVersion ?? "-"],
                    ["install sources", agent.installSources.isEmpty ? "built in" : agent.installSources.joined(separator: ", ")],
                    ["installable here", agent.installable.map { $0 ? "yes" : "no: " + (agent.notInstallableReason ?? "") } ?? "-"],
                    ["limitation", agent.limitation ?? "-"],
                    ["credentials", credentials],
                    ["models", agent.models.isEmpty ? "- (known once a session has started)" : agent.models.map(\.id).joined(separator: ", ")],
                    ["modes", agent.modes.isEmpty ? "- (known once a session has started)" : agent.modes.map(\.id).joined(separator: ", ")],
                    ["capabilities", "loadSession \(agent.capabilities.loadSession), fileSystem \(agent.capabilities.fileSystem), terminal \(agent.capabilities.terminal)"],
                ])
            }
        }
    }

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install an agent on the server (its PATH, npm, then PyPI), with a progress bar while it downloads.",
            discussion: """
                A second install of the same agent, from anywhere, follows the one under way instead of starting another.
                Examples:
                  agentbox agents install claude
                  agentbox agents install codex --package-version 0.163.0
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The agent id (claude, ...).") var id: String
        @Option(name: .customLong("package-version"), help: "The package version to install, e.g. 0.1.40 (replaces an installed agent of another version).")
        var version: String?
        @Flag(help: "Install again even when it is installed.") var reinstall = false

        func run() async throws {
            try await runClientCall {
                printFlushed("installing \(id)\(version.map { " \($0)" } ?? "") (this may download ~180 MB)…")
                let bar = ProgressBar(interactive: isatty(STDOUT_FILENO) == 1)
                let result = try await client.makeClient().installAgent(id, version: version, reinstall: reinstall) { step in bar.show(step) }
                bar.end()
                printFlushed(
                    "\(result.id): installed from \(result.source)\(result.version.map { ", version \($0)" } ?? "")"
                        + (result.packageVersion.map { " (package \($0))" } ?? ""))
            }
        }
    }
}

/// An install's steps on a terminal: a line per step, and a bar redrawn in place while a download runs. Not on a
/// terminal, download steps are printed at every tenth of the total only.
final class ProgressBar: @unchecked Sendable {
    // Called from one task at a time (the install's stream).
    let interactive: Bool
    private var drawing = false
    private var lastTenth: Int64 = -1

    init(interactive: Bool) { self.interactive = interactive }

    func show(_ step: AgentInstallProgress) {
        guard let received = step.bytes else {
            end()
            printFlushed("  \(step.line)")
            return
        }
        let total = step.totalBytes ?? 0
        let mib = { (bytes: Int64) in String(format: "%.1f", Double(bytes) / 1_048_576) }
        if interactive {
            let width = 30
            let filled = total > 0 ? Int(min(received, total) * Int64(width) / total) : 0
            let percent = total > 0 ? " \(min(received, total) * 100 / total)%" : ""
            let text = "\r  [" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "]\(percent) \(mib(received))"
                + (total > 0 ? "/\(mib(total)) MiB" : " MiB")
            writeStandardOutput(Data(text.utf8))
            drawing = true
        } else if total > 0, received * 10 / total != lastTenth {
            lastTenth = received * 10 / total
            printFlushed("  downloaded \(mib(received))/\(mib(total)) MiB (\(received * 100 / total)%)")
        }
    }

    func end() {
        if drawing { writeStandardOutput(Data("\n".utf8)) }
        drawing = false
    }
}

/// `agentbox credentials extract-env [--export]`.
struct CredentialsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credentials", abstract: "Find the model credentials you already have.",
        discussion: """
            Example:
              eval "$(agentbox credentials extract-env --export)"
            """,
        subcommands: [ExtractEnv.self])

    struct ExtractEnv: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "extract-env",
            abstract: "Print the agents' keys found in the environment, ~/.claude.json, ~/.claude/.credentials.json and ~/.codex/auth.json.",
            discussion: """
                One NAME=VALUE line each (with --export, `export NAME='VALUE'`, for eval); where each came from goes to stderr. \
                Pass them to a session with --env; AgentBox never stores them.
                Example:
                  eval "$(agentbox credentials extract-env --export)"
                """)
        @Flag(help: "Print `export NAME='VALUE'` lines for a shell's eval.") var export = false

        func run() async throws {
            let found = CredentialDiscovery.find()
            if found.isEmpty {
                printError("no credentials found (looked in the environment, ~/.claude.json, ~/.claude/.credentials.json, ~/.codex/auth.json)")
                throw ExitCode(1)
            }
            for credential in found {
                printError("# \(credential.name) from \(credential.source)")
                print(export ? "export \(credential.name)=\(CredentialDiscovery.shellQuoted(credential.value))" : "\(credential.name)=\(credential.value)")
            }
        }
    }
}
