import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird

/// The process routes: exec, spawn, list, get, stdin, wait, signal, output (buffered and followed as SSE).
struct ProcessController {
    let manager: WorkspaceManager

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        let processID = APIOperation.Parameter(name: "id", location: .path, schema: Schema.string, description: "The process id.", required: true)
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/exec", operationID: "exec",
                summary: "Run a shell command line to completion (boots the workspace)", tag: "processes",
                parameters: [Schema.workspaceKey], requestBody: Schema.json("ExecRequest"),
                replies: [.init(status: 200, description: "The command's result", body: Schema.json("ExecResult")), Schema.notFound] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: ExecRequest.self, context: context)
            return try await manager.runtime(for: WorkspaceController.key(context)).exec(body)
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/processes", operationID: "spawnProcess",
                summary: "Start a program without a shell and leave it running (boots the workspace)", tag: "processes",
                parameters: [Schema.workspaceKey], requestBody: Schema.json("SpawnRequest"),
                replies: [.init(status: 201, description: "Started", body: Schema.json("Process")), Schema.notFound] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: SpawnRequest.self, context: context)
            let process = try await manager.runtime(for: WorkspaceController.key(context)).spawn(body)
            return EditedResponse(status: .created, response: process)
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/processes", operationID: "listProcesses",
                summary: "Running and recently exited processes (never boots)", tag: "processes", parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "The processes", body: Schema.json("ProcessList")), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.runtime(for: WorkspaceController.key(context)).processList()
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/processes/{id}", operationID: "getProcess", summary: "One process",
                tag: "processes", parameters: [Schema.workspaceKey, processID],
                replies: [.init(status: 200, description: "The process", body: Schema.json("Process")), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await Self.runtime(manager, context).process(Self.processID(context))
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/processes/{id}/stdin", operationID: "writeStdin",
                summary: "Write raw bytes to the process's stdin; ?close=true closes it after", tag: "processes",
                parameters: [
                    Schema.workspaceKey, processID,
                    .init(name: "close", location: .query, schema: Schema.boolean, description: "Close stdin after writing", required: false),
                ],
                requestBody: .init(contentType: "application/octet-stream", schema: ["type": "string", "format": "binary"]),
                replies: [.init(status: 204, description: "Written"), .init(status: 409, description: "The process has exited or its stdin is closed"), Schema.notFound] + Schema.problemReplies)
        ) { request, context in
            let close = try Self.flag(request, "close")
            let data = try await request.body.collect(upTo: 16 << 20)
            try await Self.runtime(manager, context).writeStdin(Self.processID(context), data: Array(data.readableBytesView), close: close)
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/processes/{id}/wait", operationID: "waitProcess",
                summary: "Wait until the process has exited", tag: "processes",
                parameters: [
                    Schema.workspaceKey, processID,
                    .init(name: "timeoutMs", location: .query, schema: Schema.integer, description: "Give up after this long (408)", required: false),
                ],
                replies: [.init(status: 200, description: "The exited process", body: Schema.json("Process")), .init(status: 408, description: "Still running at the timeout"), Schema.notFound] + Schema.problemReplies)
        ) { request, context in
            var timeout: Duration?
            if let text = request.uri.queryParameters.get("timeoutMs") {
                guard let value = Int(text), value >= 0 else { throw ProblemError(.badRequest, "timeoutMs must be a non-negative integer, not '\(text)'") }
                timeout = .milliseconds(value)
            }
            return try await Self.runtime(manager, context).wait(Self.processID(context), timeout: timeout)
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/processes/{id}/signal", operationID: "signalProcess",
                summary: "Send a signal to the process's group (KILL kills every process it started)", tag: "processes",
                parameters: [Schema.workspaceKey, processID], requestBody: Schema.json("SignalRequest"),
                replies: [.init(status: 204, description: "Sent"), .init(status: 409, description: "The process has exited"), Schema.notFound] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: SignalRequest.self, context: context)
            let name = body.signal.uppercased().replacingOccurrences(of: "SIG", with: "")
            guard let signal = ProcessSignal(rawValue: name) else {
                throw ProblemError(.badRequest, "signal must be one of \(ProcessSignal.allCases.map(\.rawValue).joined(separator: ", ")), not '\(body.signal)'")
            }
            try await Self.runtime(manager, context).signal(Self.processID(context), signal)
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/processes/{id}/output", operationID: "processOutput",
                summary: "The process's buffered output; with follow=true, SSE of processOutput then processExit", tag: "processes",
                parameters: [
                    Schema.workspaceKey, processID,
                    .init(name: "follow", location: .query, schema: Schema.boolean, description: "Stream as Server-Sent Events", required: false),
                ],
                replies: [
                    .init(status: 200, description: "The output", body: Schema.json("ProcessOutput")), Schema.notFound,
                ] + Schema.problemReplies, access: .stream)
        ) { request, context in
            let runtime = try await Self.runtime(manager, context)
            let id = try Self.processID(context)
            guard try Self.flag(request, "follow") else { return try await runtime.output(id).response(from: request, context: context) }
            let encoder = AgentBoxJSON.makeEncoder()
            // Pulled, so a slow client slows only its own reading; one that falls the follower's limit behind gets an
            // `error` event (a problem) rather than a stream that just stops.
            return ServerSentEvents.pulledResponse(FollowFrames(follow: try await runtime.followOutput(id)), until: context.revocation) { frame in
                switch frame {
                case .event(let seq, let event):
                    return ServerSentEvents.frame(id: seq, event: event.name, data: try event.encodedData(using: encoder))
                case .lost:
                    let problem: JSONValue = [
                        "status": 507, "title": "Output lost",
                        "detail": .string(
                            "this stream fell \(ProcessFollow.byteLimit >> 20) MiB behind the process and was ended; the process goes on (GET .../output has its latest output)"),
                    ]
                    return ServerSentEvents.frame(id: nil, event: "error", data: Data(problem.jsonBytes))
                }
            }
        }
    }

    static func runtime(_ manager: WorkspaceManager, _ context: AgentBoxRequestContext) async throws -> WorkspaceRuntime {
        try await manager.runtime(for: WorkspaceController.key(context))
    }

    static func processID(_ context: AgentBoxRequestContext) throws -> String {
        let id = context.pathParameter("id")
        guard id.hasPrefix("proc_"), id.count <= 64, id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw ProblemError(.badRequest, "'\(id)' is not a process id (proc_…)")
        }
        return id
    }

    static func flag(_ request: Request, _ name: String) throws -> Bool {
        guard let text = request.uri.queryParameters.get(name) else { return false }
        switch text.lowercased() {
        case "true", "1", "": return true
        case "false", "0": return false
        default: throw ProblemError(.badRequest, "\(name) must be true or false, not '\(text)'")
        }
    }
}

extension ExecResult: ResponseEncodable {}
extension WorkspaceProcess: ResponseEncodable {}
extension ProcessList: ResponseEncodable {}
extension ProcessOutput: ResponseEncodable {}

/// A process follower's frames for SSE: its events, then `lost` when it ended for being too far behind.
struct FollowFrames: AsyncSequence, Sendable {
    enum Frame: Sendable {
        case event(Int64?, WorkspaceEvent)
        case lost
    }

    let follow: ProcessFollow

    func makeAsyncIterator() -> Iterator { Iterator(inner: follow.makeAsyncIterator(), follow: follow) }

    struct Iterator: AsyncIteratorProtocol {
        var inner: ProcessFollow.AsyncIterator
        let follow: ProcessFollow
        var ended = false

        mutating func next() async -> Frame? {
            guard !ended else { return nil }
            if let (seq, event) = await inner.next() { return .event(seq, event) }
            ended = true
            return follow.lost ? .lost : nil
        }
    }
}
