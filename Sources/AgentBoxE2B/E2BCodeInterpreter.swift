import AgentBox
import AgentBoxAPI
import AsyncAlgorithms
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOFoundationEssentialsCompat
import Synchronization

/// One code context: a REPL driver process (``E2BKernelDrivers``) inside the workspace, running as E2B's user, whose
/// state lasts between executions. Executions run one at a time, in the order they come.
actor E2BKernel {
    let id: String
    let language: String
    let cwd: String
    private let runtime: WorkspaceRuntime
    private let processID: String
    private var current: AsyncStream<Data>.Continuation?
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var pending: [UInt8] = []
    private(set) var alive = true

    /// The longest event line kept (a bigger one, a huge repr or image, is cut off and dropped).
    static let maxLineBytes = 32 << 20
    static let done = Data(#"{"type": "done"}"#.utf8)
    /// The most event lines queued for a client that reads slower than the cell prints.
    static let maxQueuedLines = 8192

    private init(id: String, language: String, cwd: String, runtime: WorkspaceRuntime, processID: String) {
        self.id = id
        self.language = language
        self.cwd = cwd
        self.runtime = runtime
        self.processID = processID
    }

    static func start(id: String, language: String, cwd: String, env: [String: String], runtime: WorkspaceRuntime) async throws -> E2BKernel {
        let (command, args) =
            language == "javascript"
            ? ("/usr/bin/node", ["-e", E2BKernelDrivers.javascript])
            : ("/usr/bin/python3", ["-u", "-c", E2BKernelDrivers.python])
        var environment = E2BPaths.userEnvironment.merging(["MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"]) { $1 }
        environment.merge(env) { $1 }
        let process = try await runtime.spawn(SpawnRequest(command: command, args: args, cwd: cwd, env: environment, user: WorkspaceRuntime.agentUser))
        let kernel = E2BKernel(id: id, language: language, cwd: cwd, runtime: runtime, processID: process.id)
        let output = try await runtime.followOutput(process.id)
        Task {
            for await (_, event) in output {
                switch event {
                case .processOutput(let chunk) where chunk.stream == .stdout:
                    await kernel.received(OutputText.bytes(chunk.data, encoding: chunk.encoding))
                case .processExit:
                    await kernel.exited()
                    return
                default:
                    continue
                }
            }
            await kernel.exited()
        }
        return kernel
    }

    private func received(_ bytes: [UInt8]) {
        pending += bytes
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = Data(pending[..<newline])
            pending.removeSubrange(...newline)
            if line == Self.done || line == Data(#"{"type":"done"}"#.utf8) {
                current?.finish()
                current = nil
            } else if !line.isEmpty {
                current?.yield(line)
            }
        }
        if pending.count > Self.maxLineBytes { pending.removeAll() }
    }

    private func exited() {
        alive = false
        current?.yield(Data(#"{"type":"error","name":"KernelDied","value":"the code context's process ended","traceback":""}"#.utf8))
        current?.finish()
        current = nil
        for waiter in waiting { waiter.resume() }
        waiting.removeAll()
    }

    /// Runs `code`, handing each event line to `emit` as it comes, until the execution ends. A client that goes
    /// away (cancellation) interrupts the code; the events are still read to the end, so the next execution starts
    /// clean.
    func execute(_ code: String, env: [String: String], emit: @Sendable (Data) async -> Bool) async {
        while busy { await withCheckedContinuation { waiting.append($0) } }
        guard alive else {
            _ = await emit(Data(#"{"type":"error","name":"KernelDied","value":"the code context's process ended: restart it","traceback":""}"#.utf8))
            return
        }
        busy = true
        defer {
            busy = false
            if !waiting.isEmpty { waiting.removeFirst().resume() }
        }
        // Bounded: a cell that prints faster than its client reads loses its latest lines rather than growing the server.
        let (events, continuation) = AsyncStream<Data>.makeStream(bufferingPolicy: .bufferingOldest(Self.maxQueuedLines))
        current = continuation
        let request = (try? JSONSerialization.data(withJSONObject: ["code": code, "env": env])) ?? Data()
        do {
            try await runtime.writeStdin(processID, data: Array(request) + [UInt8(ascii: "\n")], close: false)
        } catch {
            current = nil
            _ = await emit(Data(#"{"type":"error","name":"KernelDied","value":"the code context does not take input","traceback":""}"#.utf8))
            return
        }
        var listening = true
        var interrupted = false
        for await line in events {
            if listening { listening = await emit(line) }
            if !listening, !interrupted {
                interrupted = true
                try? await runtime.signal(processID, .INT)
            }
        }
    }

    func stop() async {
        try? await runtime.signal(processID, .KILL)
    }
}

/// The code contexts of every sandbox.
actor E2BKernels {
    struct Key: Hashable {
        var sandbox: String
        var context: String
    }

    private var kernels: [Key: E2BKernel] = [:]
    /// Contexts created but not yet started (their kernel starts with their first execution).
    private var declared: [Key: (language: String, cwd: String)] = [:]
    private let manager: WorkspaceManager
    static let maxContextsPerSandbox = 16

    init(manager: WorkspaceManager) { self.manager = manager }

    static func defaultContext(_ language: String) -> String { "default-\(language)" }

    /// The language E2B names, as a driver: `python` or `javascript`.
    static func language(_ name: String?) throws -> String {
        switch name?.lowercased() {
        case nil, "", "python", "python3": return "python"
        case "js", "javascript", "node", "nodejs": return "javascript"
        case let other?: throw E2BError(.badRequest, "language '\(other)' is not available here: python or javascript")
        }
    }

    func declare(sandbox: String, language: String, cwd: String) throws -> String {
        guard declared.keys.filter({ $0.sandbox == sandbox }).count < Self.maxContextsPerSandbox else {
            throw E2BError(.tooManyRequests, "a sandbox may have \(Self.maxContextsPerSandbox) code contexts")
        }
        let id = E2BSandboxes.randomString(24)
        declared[Key(sandbox: sandbox, context: id)] = (language, cwd)
        return id
    }

    func contexts(sandbox: String) -> [(id: String, language: String, cwd: String)] {
        declared.filter { $0.key.sandbox == sandbox }.map { ($0.key.context, $0.value.language, $0.value.cwd) }.sorted { $0.id < $1.id }
    }

    func context(sandbox: String, id: String) -> (language: String, cwd: String)? { declared[Key(sandbox: sandbox, context: id)] }

    /// The running kernel of a context, started when it has none (or its process ended).
    func kernel(record: E2BSandboxRecord, context id: String?, language: String?) async throws -> E2BKernel {
        let sandbox = record.sandboxID
        let name: String
        if let id {
            guard declared[Key(sandbox: sandbox, context: id)] != nil else { throw E2BError(.notFound, "context \(id) not found") }
            name = id
        } else {
            let language = try Self.language(language)
            name = Self.defaultContext(language)
            if declared[Key(sandbox: sandbox, context: name)] == nil { declared[Key(sandbox: sandbox, context: name)] = (language, E2BPaths.home) }
        }
        let key = Key(sandbox: sandbox, context: name)
        if let kernel = kernels[key], await kernel.alive { return kernel }
        let (language, cwd) = declared[key]!
        let runtime = try await manager.runtime(for: record.key)
        let kernel = try await E2BKernel.start(id: name, language: language, cwd: cwd, env: [:], runtime: runtime)
        kernels[key] = kernel
        return kernel
    }

    func remove(sandbox: String, id: String) async -> Bool {
        let key = Key(sandbox: sandbox, context: id)
        guard declared.removeValue(forKey: key) != nil else { return false }
        await kernels.removeValue(forKey: key)?.stop()
        return true
    }

    func restart(sandbox: String, id: String) async -> Bool {
        let key = Key(sandbox: sandbox, context: id)
        guard declared[key] != nil else { return false }
        await kernels.removeValue(forKey: key)?.stop()
        return true
    }

    /// Ends the kernels of a sandbox that is paused or killed (a paused one's contexts start afresh).
    func forget(sandbox: String) async {
        for (key, kernel) in kernels where key.sandbox == sandbox {
            await kernel.stop()
            kernels[key] = nil
        }
    }
}

extension E2BService {
    struct ExecuteRequest: Decodable {
        var code: String
        var context_id: String?
        var language: String?
        var env_vars: [String: String]?
    }

    struct ContextRequest: Decodable {
        var language: String?
        var cwd: String?
    }

    /// `POST /execute`: NDJSON of the execution's events, each line flushed as it comes.
    func execute(_ request: Request, record: E2BSandboxRecord) async throws -> Response {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: 16 << 20)
        } catch {
            throw E2BError(.contentTooLarge, "the code is larger than 16 MiB")
        }
        let execute = try E2BJSON.decode(ExecuteRequest.self, from: Data(buffer: body))
        if execute.context_id != nil, execute.language != nil {
            throw E2BError(.badRequest, "name a context or a language, not both")
        }
        let kernel = try await kernels.kernel(record: record, context: execute.context_id, language: execute.language)
        let env = record.envVars.merging(execute.env_vars ?? [:]) { $1 }
        return Response(
            status: .ok, headers: [.contentType: "application/x-ndjson"],
            body: ResponseBody { [sandboxes] writer in
                await sandboxes.streamOpened(record.sandboxID)
                // The kernel hands each line over only when the writer takes it: a slow client holds the execution's
                // output back rather than growing a buffer. A client that went away interrupts the code.
                let channel = AsyncChannel<Data>()
                let gone = E2BFlag()
                let run = Task {
                    await kernel.execute(execute.code, env: env) { line in
                        if gone.isSet { return false }
                        await channel.send(line)
                        return !gone.isSet
                    }
                    channel.finish()
                }
                for await var line in channel {
                    line.append(UInt8(ascii: "\n"))
                    do {
                        try await writer.write(ByteBuffer(bytes: line))
                    } catch {
                        gone.set()
                        channel.finish()
                    }
                }
                await run.value
                await sandboxes.streamClosed(record.sandboxID)
                if !gone.isSet { try await writer.finish(nil) }
            })
    }

    /// `/contexts`, `/contexts/{id}`, `/contexts/{id}/restart`.
    func contexts(_ request: Request, record: E2BSandboxRecord, path: String) async throws -> Response {
        let parts = path.split(separator: "/").map(String.init)
        let sandbox = record.sandboxID
        switch (request.method, parts.count) {
        case (.post, 1):
            let body = try await request.body.collect(upTo: 1 << 20)
            let context = try E2BJSON.decode(ContextRequest.self, from: Data(buffer: body))
            let language = try E2BKernels.language(context.language)
            let cwd = context.cwd.flatMap { $0.isEmpty ? nil : $0 } ?? E2BPaths.home
            let id = try await kernels.declare(sandbox: sandbox, language: language, cwd: cwd)
            return E2BJSON.response(["id": id, "language": language, "cwd": cwd])
        case (.get, 1):
            return E2BJSON.response(await kernels.contexts(sandbox: sandbox).map { ["id": $0.id, "language": $0.language, "cwd": $0.cwd] })
        case (.delete, 2):
            guard await kernels.remove(sandbox: sandbox, id: parts[1]) else { throw E2BError(.notFound, "context \(parts[1]) not found") }
            return Response(status: .noContent)
        case (.post, 3) where parts[2] == "restart":
            guard await kernels.restart(sandbox: sandbox, id: parts[1]) else { throw E2BError(.notFound, "context \(parts[1]) not found") }
            return Response(status: .noContent)
        default:
            throw E2BError(.notFound, "no route \(request.method) \(path)")
        }
    }
}

/// A flag set once, read from any task.
final class E2BFlag: Sendable {
    private let atomic = Atomic<Bool>(false)
    var isSet: Bool { atomic.load(ordering: .relaxed) }
    func set() { atomic.store(true, ordering: .relaxed) }
}
