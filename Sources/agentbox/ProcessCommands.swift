import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox exec KEY -- cmd...`: runs a command in a workspace, prints its output, exits with its code.
struct ExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec", abstract: "Run a command in a workspace and exit with its exit code.",
        discussion: """
            The words after -- are joined into one shell command line (run by /bin/sh -c).
            Examples:
              agentbox exec demo -- 'ls | wc -l'
              agentbox exec demo --cwd /workspace/src --timeout-ms 60000 -- make test
              echo 'print(1)' | agentbox exec demo --stdin -- python3 -
              agentbox exec demo --stdin -- 'cat > /workspace/logo.png' < logo.png
              agentbox exec demo --max-output-bytes 10485760 -- cat big.log
            """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The workspace key.") var key: String
    @Option(help: "Working directory in the workspace (default /workspace).") var cwd: String?
    @Option(name: .customLong("env"), help: "An environment variable NAME=VALUE (repeatable).") var env: [String] = []
    // `.unconditional`: `--max-output-bytes -1` is a (refused) number, not a missing value followed by an option.
    @Option(parsing: .unconditional, help: "Kill the command and everything it started after this many milliseconds.")
    var timeoutMs: Int?
    @Option(
        parsing: .unconditional,
        help: "Keep at most this many bytes of each output stream (the server's default is 1 MiB); the rest is dropped.")
    var maxOutputBytes: Int?
    @Flag(help: "Send this program's standard input to the command (any bytes; up to about 768 KiB of binary, 1 MiB of text).")
    var stdin = false
    @Flag(help: "Print the result as JSON instead of the command's output.") var json = false
    @Argument(parsing: .postTerminator, help: "The command, after --.") var command: [String] = []

    func validate() throws {
        if let maxOutputBytes, maxOutputBytes < 0 { throw ValidationError("--max-output-bytes is 0 or more, not \(maxOutputBytes)") }
        if let timeoutMs, timeoutMs < 1 { throw ValidationError("--timeout-ms is 1 or more, not \(timeoutMs)") }
    }

    func run() async throws {
        let words = command.first == "--" ? Array(command.dropFirst()) : command
        guard !words.isEmpty else { throw ValidationError("give a command after --") }
        // Bytes that are not UTF-8 travel as base64, never mangled.
        let input = stdin ? OutputText.encode(FileHandle.standardInput.readDataToEndOfFile()) : nil
        // The request is one JSON body of at most 1 MiB: say so here rather than pass on the server's 413.
        if let input, input.text.utf8.count > (1 << 20) - 64 * 1024 {
            printError(
                "error: --stdin takes about 1 MiB of text or 768 KiB of other bytes; for more, put the file in the workspace (agentbox fs put \(key) /workspace/input FILE) and run the command with < /workspace/input")
            throw ExitCode(1)
        }
        let request = ExecRequest(
            command: words.joined(separator: " "), cwd: cwd, env: try parseEnvironment(env).nilIfEmpty, stdin: input?.text,
            timeoutMs: timeoutMs, maxOutputBytes: maxOutputBytes, stdinEncoding: input?.encoding)
        var status: Int32 = 0
        try await runClientCall {
            let result = try await client.makeClient().exec(key, request)
            if json { return try printJSON(result) }
            writeStandardOutput(Data(result.stdoutBytes))
            FileHandle.standardError.write(Data(result.stderrBytes))
            if result.timedOut { printError("agentbox: timed out after \(timeoutMs ?? 0) ms; the command and its children were killed") }
            if result.truncated { printError("agentbox: output truncated") }
            status = result.exitCode
        }
        if status != 0 { throw ExitCode(status) }
    }
}

/// `agentbox ps KEY`: lists a workspace's processes.
struct PsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List a workspace's processes.",
    discussion: """
        Examples:
          agentbox ps demo
          agentbox ps demo --json
        """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The workspace key.") var key: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await runClientCall {
            let list = try await client.makeClient().processes(key)
            if json { return try printJSON(list) }
            let rows = [["ID", "PID", "STATUS", "EXIT", "COMMAND"]]
                + list.items.map { process in
                    [
                        process.id, String(process.pid), process.status.rawValue,
                        process.exitCode.map { String($0) } ?? (process.signal ?? ""),
                        ([process.command] + process.args).joined(separator: " "),
                    ]
                }
            printRows(rows)
        }
    }
}

/// `agentbox kill KEY ID`: signals a process.
struct KillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Send a signal to a workspace process (default TERM).",
    discussion: """
        Examples:
          agentbox kill demo PROCESS_ID
          agentbox kill demo PROCESS_ID --signal KILL
        """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The workspace key.") var key: String
    @Argument(help: "The process id (see agentbox ps).") var id: String
    @Option(name: [.short, .long], help: "TERM, KILL, INT, HUP, ...") var signal = "TERM"

    func run() async throws {
        try await runClientCall { try await client.makeClient().signal(key, id, signal) }
    }
}

/// `agentbox spawn KEY -- program args...`: starts a program and leaves it running.
struct SpawnCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "spawn", abstract: "Start a program in a workspace and leave it running; prints its process id.",
    discussion: """
        Examples:
          agentbox spawn demo -- python3 -m http.server 8000
          agentbox spawn demo --follow -- make test
        """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The workspace key.") var key: String
    @Option(help: "Working directory in the workspace (default /workspace).") var cwd: String?
    @Option(name: .customLong("env"), help: "An environment variable NAME=VALUE (repeatable).") var env: [String] = []
    @Flag(help: "Follow its output until it exits, then exit with its code.") var follow = false
    @Argument(parsing: .postTerminator, help: "The program and its arguments, after --.") var command: [String] = []

    func run() async throws {
        let words = command.first == "--" ? Array(command.dropFirst()) : command
        guard let program = words.first else { throw ValidationError("give a program after --") }
        var status: Int32 = 0
        try await runClientCall {
            let api = try client.makeClient()
            let process = try await api.spawn(
                key, SpawnRequest(command: program, args: Array(words.dropFirst()), cwd: cwd, env: try parseEnvironment(env).nilIfEmpty))
            guard follow else { return printFlushed(process.id) }
            for try await envelope in try await api.followOutput(key, process.id) {
                switch envelope.event {
                case .processOutput(let output):
                    (output.stream == .stdout ? FileHandle.standardOutput : FileHandle.standardError).write(Data(output.bytes))
                case .processExit(let exit):
                    status = exit.exitCode
                default: break
                }
            }
        }
        if status != 0 { throw ExitCode(status) }
    }
}

/// `agentbox logs KEY ID`: prints a process's output.
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print a workspace process's output.",
    discussion: """
        Examples:
          agentbox logs demo PROCESS_ID
          agentbox logs demo PROCESS_ID --follow
        """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The workspace key.") var key: String
    @Argument(help: "The process id.") var id: String
    @Flag(name: [.short, .long], help: "Keep printing until the process exits.") var follow = false

    func run() async throws {
        try await runClientCall {
            let api = try client.makeClient()
            if !follow {
                let output = try await api.output(key, id)
                writeStandardOutput(Data(OutputText.bytes(output.stdout, encoding: output.stdoutEncoding)))
                FileHandle.standardError.write(Data(OutputText.bytes(output.stderr, encoding: output.stderrEncoding)))
                return
            }
            for try await envelope in try await api.followOutput(key, id) {
                if case .processOutput(let output) = envelope.event {
                    (output.stream == .stdout ? FileHandle.standardOutput : FileHandle.standardError).write(Data(output.bytes))
                }
            }
        }
    }
}

/// Parses repeated NAME=VALUE options.
func parseEnvironment(_ pairs: [String]) throws -> [String: String] {
    var environment: [String: String] = [:]
    for pair in pairs {
        guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
            throw ValidationError("--env takes NAME=VALUE, not '\(pair)'")
        }
        environment[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
    }
    return environment
}

extension Dictionary {
    var nilIfEmpty: Self? { isEmpty ? nil : self }
}
