import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOFoundationEssentialsCompat

/// What envd's `process.Process` service knows of a process it started: the library's process or shell behind
/// the pid, and what List reports of it.
struct E2BProcessEntry: Sendable {
    enum Kind: Sendable, Equatable {
        case process(String)
        case shell(String)
    }

    var kind: Kind
    var pid: Int32
    var tag: String?
    var cmd: String
    var args: [String]
    var envs: [String: String]
    var cwd: String
}

/// The processes each sandbox's envd started, by pid: the library keeps the processes themselves.
actor E2BProcessTable {
    private var bySandbox: [String: [Int32: E2BProcessEntry]] = [:]
    /// The most processes remembered per sandbox; the oldest exited ones go first.
    static let capacity = 1024

    func add(_ entry: E2BProcessEntry, sandbox: String) {
        var entries = bySandbox[sandbox] ?? [:]
        if entries.count >= Self.capacity, let oldest = entries.keys.min() { entries[oldest] = nil }
        entries[entry.pid] = entry
        bySandbox[sandbox] = entries
    }

    func entries(sandbox: String) -> [E2BProcessEntry] { Array((bySandbox[sandbox] ?? [:]).values).sorted { $0.pid < $1.pid } }

    func entry(sandbox: String, pid: Int32?, tag: String?) -> E2BProcessEntry? {
        let entries = bySandbox[sandbox] ?? [:]
        if let pid { return entries[pid] }
        if let tag { return entries.values.filter { $0.tag == tag }.max { $0.pid < $1.pid } }
        return nil
    }

    func remove(sandbox: String, pid: Int32) { bySandbox[sandbox]?[pid] = nil }

    func forget(sandbox: String) { bySandbox[sandbox] = nil }
}

/// envd's `process.Process` service over the library's processes (commands) and shells (PTYs).
struct E2BProcessService {
    let context: E2BCallContext

    init(_ context: E2BCallContext) { self.context = context }

    struct ProcessConfig: Decodable {
        var cmd: String
        var args: [String]?
        var envs: [String: String]?
        var cwd: String?
    }

    struct Size: Decodable {
        var cols: ProtoInt?
        var rows: ProtoInt?
    }

    struct PTY: Decodable {
        var size: Size?
    }

    struct Selector: Decodable {
        var pid: ProtoInt?
        var tag: String?
    }

    struct StartRequest: Decodable {
        var process: ProcessConfig
        var pty: PTY?
        var tag: String?
        var stdin: Bool?
    }

    struct SelectRequest: Decodable {
        var process: Selector?
    }

    struct Input: Decodable {
        var stdin: String?
        var pty: String?
    }

    struct SendInputRequest: Decodable {
        var process: Selector?
        var input: Input?
    }

    /// `"SIGNAL_SIGKILL"`, `"SIGKILL"` or `9`.
    struct Signal: Decodable {
        var number: Int32

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int32.self) {
                self.number = number
                return
            }
            let name = try container.decode(String.self).uppercased()
            switch name {
            case "SIGNAL_SIGKILL", "SIGKILL", "KILL": number = 9
            case "SIGNAL_SIGTERM", "SIGTERM", "TERM": number = 15
            case "SIGNAL_SIGINT", "SIGINT", "INT": number = 2
            case "SIGNAL_SIGHUP", "SIGHUP", "HUP": number = 1
            default: throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown signal \(name)")
            }
        }
    }

    struct SendSignalRequest: Decodable {
        var process: Selector?
        var signal: Signal?
    }

    struct UpdateRequest: Decodable {
        var process: Selector?
        var pty: PTY?
    }

    static let keepalive = ConnectStream.json(["event": ["keepalive": [String: Any]()]])

    func call(_ method: String) async throws -> Response {
        switch method {
        case "Start": return try await start()
        case "Connect": return try await connect()
        case "List": return try await list()
        case "SendInput": return try await sendInput()
        case "StreamInput": return try await streamInput()
        case "CloseStdin": return try await closeStdin()
        case "SendSignal": return try await sendSignal()
        case "Update": return try await update()
        default: throw ConnectError(.unimplemented, "process.Process has no method \(method)")
        }
    }

    /// A unary request's message, or a streaming request's one enveloped message.
    private func message<T: Decodable>(_ type: T.Type) async throws -> T {
        let body = try await context.body()
        let data = context.isStreaming ? try ConnectEnvelope.single(body) : Data(buffer: body)
        do {
            return try E2BJSON.decode(type, from: data)
        } catch {
            throw ConnectError(.invalidArgument, error.message)
        }
    }

    private static func ok(_ object: [String: Any] = [:]) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: ConnectStream.json(object))))
    }

    // MARK: Start and Connect

    private func start() async throws -> Response {
        guard context.isStreaming else { throw ConnectError(.invalidArgument, "Start is a server stream: send application/connect+json") }
        let start = try await message(StartRequest.self)
        guard !start.process.cmd.isEmpty else { throw ConnectError(.invalidArgument, "process.cmd must not be empty") }
        if let tag = start.tag, tag.utf8.count > 256 { throw ConnectError(.invalidArgument, "tag is longer than 256 bytes") }
        let record = context.record
        let runtime = try await context.service.runtime(record)
        // Commands see `/home/user` itself (the link), so `pwd` says what E2B's would.
        let account = try E2BPaths.account(context.request)
        let asked = start.process.cwd.flatMap { $0.isEmpty ? nil : $0 } ?? account.home
        let cwd = asked.hasPrefix("/") ? asked : account.home + "/" + asked
        // PWD names the directory as the caller did: a shell prints `/home/user`, not the link's target.
        var env = account.environment.merging(["PWD": cwd]) { $1 }
        for (name, value) in start.process.envs ?? [:] { env[name] = value }
        let args = start.process.args ?? []
        let entry: E2BProcessEntry
        if let pty = start.pty {
            env["TERM"] = env["TERM"] ?? "xterm-256color"
            let shell = try await runtime.openShell(
                ShellCreateRequest(
                    command: start.process.cmd, args: args, cwd: cwd, env: env, cols: pty.size?.cols.map { Int($0.value) },
                    rows: pty.size?.rows.map { Int($0.value) }, user: account.user))
            entry = E2BProcessEntry(
                kind: .shell(shell.id), pid: shell.pid, tag: start.tag, cmd: start.process.cmd, args: args, envs: start.process.envs ?? [:], cwd: cwd)
        } else {
            let process = try await runtime.spawn(
                SpawnRequest(command: start.process.cmd, args: args, cwd: cwd, env: env, user: account.user))
            if start.stdin == false { try? await runtime.writeStdin(process.id, data: [], close: true) }
            entry = E2BProcessEntry(
                kind: .process(process.id), pid: process.pid, tag: start.tag, cmd: start.process.cmd, args: args,
                envs: start.process.envs ?? [:], cwd: cwd)
        }
        await context.service.processes.add(entry, sandbox: record.sandboxID)
        return follow(entry, runtime: runtime)
    }

    private func connect() async throws -> Response {
        guard context.isStreaming else { throw ConnectError(.invalidArgument, "Connect is a server stream: send application/connect+json") }
        let request = try await message(SelectRequest.self)
        let (entry, runtime) = try await running(request.process)
        return follow(entry, runtime: runtime)
    }

    /// The stream of a process: its start, its output as it comes, its end.
    private func follow(_ entry: E2BProcessEntry, runtime: WorkspaceRuntime) -> Response {
        let pid = entry.pid
        let kind = entry.kind
        return ConnectStream.response(
            request: context.request, keepalive: Self.keepalive, deadline: ConnectStream.deadline(context.request),
            activity: (context.service.sandboxes, context.record.sandboxID), onDeadline: { await Self.kill(kind, runtime: runtime) }
        ) { send in
            await send(Self.event(["start": ["pid": pid]]))
            switch kind {
            case .process(let id):
                guard let output = try? await runtime.followOutput(id) else { return ConnectError(.notFound, "process \(pid) not found") }
                for await (_, event) in output {
                    switch event {
                    case .processOutput(let chunk):
                        let bytes = OutputText.bytes(chunk.data, encoding: chunk.encoding)
                        let stream = chunk.stream == .stdout ? "stdout" : "stderr"
                        await send(Self.event(["data": [stream: Data(bytes).base64EncodedString()]]))
                    case .processExit(let exit):
                        await send(Self.event(["end": Self.end(exitCode: exit.exitCode, signal: exit.signal)]))
                        return nil
                    default:
                        continue
                    }
                }
                // Ended without the exit: never hand on output with a hole in it as if it were whole.
                if output.lost {
                    return ConnectError(
                        .dataLoss,
                        "the command wrote faster than this stream was read: it fell \(ProcessFollow.byteLimit >> 20) MiB behind and was ended, so output was lost (the command goes on; connect to it again for what comes next, or write large output to a file)")
                }
                return ConnectError(.unavailable, "the stream of process \(pid) ended before the process did")
            case .shell(let id):
                guard let shell = try? await runtime.shell(id) else { return ConnectError(.notFound, "process \(pid) not found") }
                for await output in shell.attach() {
                    switch output {
                    case .data(let buffer):
                        await send(Self.event(["data": ["pty": Data(buffer.readableBytesView).base64EncodedString()]]))
                    case .exit(let code):
                        await send(Self.event(["end": Self.end(exitCode: code, signal: nil)]))
                        return nil
                    }
                }
                return nil
            }
        }
    }

    static func event(_ event: [String: Any]) -> Data { ConnectStream.json(["event": event]) }

    /// envd's end event: Go's `ProcessState` (`exit status 1`, `signal: killed`, exit code -1 for a signal).
    static func end(exitCode: Int32, signal: String?) -> [String: Any] {
        guard let signal else {
            var end: [String: Any] = ["exited": true, "status": "exit status \(exitCode)"]
            if exitCode != 0 { end["exitCode"] = exitCode }
            return end
        }
        let name =
            switch signal {
            case "KILL": "killed"
            case "TERM": "terminated"
            case "INT": "interrupt"
            case "HUP": "hangup"
            default: signal.lowercased()
            }
        return ["exitCode": -1, "exited": false, "status": "signal: \(name)"]
    }

    static func kill(_ kind: E2BProcessEntry.Kind, runtime: WorkspaceRuntime) async {
        switch kind {
        case .process(let id): try? await runtime.signal(id, .KILL)
        case .shell(let id): try? await runtime.closeShell(id)
        }
    }

    /// The running process `selector` names.
    private func running(_ selector: Selector?) async throws -> (E2BProcessEntry, WorkspaceRuntime) {
        guard let selector, selector.pid != nil || selector.tag != nil else { throw ConnectError(.invalidArgument, "process: name a pid or a tag") }
        let sandbox = context.record.sandboxID
        let pid = selector.pid.map { Int32(clamping: $0.value) }
        guard let entry = await context.service.processes.entry(sandbox: sandbox, pid: pid, tag: selector.tag) else {
            throw ConnectError(.notFound, "process \(selector.pid.map { String($0.value) } ?? selector.tag ?? "") not found")
        }
        let runtime = try await context.service.runtime(context.record)
        guard await Self.isRunning(entry, runtime: runtime) else {
            await context.service.processes.remove(sandbox: sandbox, pid: entry.pid)
            throw ConnectError(.notFound, "process \(entry.pid) not found (it has exited)")
        }
        return (entry, runtime)
    }

    static func isRunning(_ entry: E2BProcessEntry, runtime: WorkspaceRuntime) async -> Bool {
        switch entry.kind {
        case .process(let id): return (try? await runtime.process(id).status) == .running
        case .shell(let id): return (try? await runtime.shell(id).info.status) == .running
        }
    }

    // MARK: The other calls

    private func list() async throws -> Response {
        _ = try await message(SelectRequest.self)
        let sandbox = context.record.sandboxID
        let runtime = try await context.service.runtime(context.record)
        var processes: [[String: Any]] = []
        for entry in await context.service.processes.entries(sandbox: sandbox) {
            guard await Self.isRunning(entry, runtime: runtime) else {
                await context.service.processes.remove(sandbox: sandbox, pid: entry.pid)
                continue
            }
            var item: [String: Any] = [
                "pid": entry.pid, "config": ["cmd": entry.cmd, "args": entry.args, "envs": entry.envs, "cwd": E2BPaths.outside(entry.cwd)],
            ]
            if let tag = entry.tag { item["tag"] = tag }
            processes.append(item)
        }
        return Self.ok(["processes": processes])
    }

    private func sendInput() async throws -> Response {
        let request = try await message(SendInputRequest.self)
        let (entry, runtime) = try await running(request.process)
        try await deliver(request.input, to: entry, runtime: runtime)
        return Self.ok()
    }

    private func deliver(_ input: Input?, to entry: E2BProcessEntry, runtime: WorkspaceRuntime) async throws {
        guard let input else { throw ConnectError(.invalidArgument, "input is required") }
        guard let text = input.stdin ?? input.pty, let bytes = Data(base64Encoded: text) else {
            throw ConnectError(.invalidArgument, "input: stdin or pty must be base64")
        }
        switch entry.kind {
        case .process(let id):
            do {
                try await runtime.writeStdin(id, data: Array(bytes), close: false)
            } catch {
                throw ConnectError(.failedPrecondition, "the stdin of process \(entry.pid) is closed (start it with stdin)")
            }
        case .shell(let id):
            try await runtime.shell(id).write(ByteBuffer(bytes: bytes))
        }
    }

    /// The client stream of `stream_input()`: `start{process}`, then `data{input}` and `keepalive{}` messages.
    private func streamInput() async throws -> Response {
        var target: (E2BProcessEntry, WorkspaceRuntime)?
        struct Message: Decodable {
            struct Start: Decodable { var process: Selector? }
            struct DataMessage: Decodable { var input: Input? }
            var start: Start?
            var data: DataMessage?
        }
        for try await bytes in ConnectEnvelopeReader(body: context.request.body) {
            let message: Message
            do {
                message = try E2BJSON.decode(Message.self, from: bytes)
            } catch {
                throw ConnectError(.invalidArgument, error.message)
            }
            if let start = message.start { target = try await running(start.process) }
            if let data = message.data {
                guard let (entry, runtime) = target else { throw ConnectError(.failedPrecondition, "send start before data") }
                try await deliver(data.input, to: entry, runtime: runtime)
            }
        }
        var body = ConnectEnvelope.frame(Data("{}".utf8))
        var end = ConnectEnvelope.end(nil)
        body.writeBuffer(&end)
        return Response(status: .ok, headers: [.contentType: ConnectStream.contentType], body: ResponseBody(byteBuffer: body))
    }

    private func closeStdin() async throws -> Response {
        let request = try await message(SelectRequest.self)
        let (entry, runtime) = try await running(request.process)
        if case .process(let id) = entry.kind { try? await runtime.writeStdin(id, data: [], close: true) }
        return Self.ok()
    }

    private func sendSignal() async throws -> Response {
        let request = try await message(SendSignalRequest.self)
        guard let signal = request.signal else { throw ConnectError(.invalidArgument, "signal is required") }
        let (entry, runtime) = try await running(request.process)
        switch entry.kind {
        case .process(let id):
            let name: ProcessSignal =
                switch signal.number {
                case 9: .KILL
                case 2: .INT
                case 1: .HUP
                default: .TERM
                }
            try await runtime.signal(id, name)
        case .shell(let id):
            try await runtime.closeShell(id)
        }
        return Self.ok()
    }

    private func update() async throws -> Response {
        let request = try await message(UpdateRequest.self)
        let (entry, runtime) = try await running(request.process)
        if let size = request.pty?.size, case .shell(let id) = entry.kind {
            guard let cols = size.cols, let rows = size.rows else { throw ConnectError(.invalidArgument, "pty.size needs cols and rows") }
            let resize = ShellResize(cols: Int(clamping: cols.value), rows: Int(clamping: rows.value))
            if let problem = resize.validationProblem { throw ConnectError(.invalidArgument, problem) }
            try await runtime.shell(id).resize(resize)
        }
        return Self.ok()
    }
}
