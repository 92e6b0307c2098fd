import AgentBoxAPI
import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1

/// A typed client of the AgentBox HTTP API.
///
/// ```swift
/// let client = AgentBoxClient(endpoint: URL(string: "http://127.0.0.1:2468")!, token: token)
/// let (workspace, created) = try await client.putWorkspace("demo")
/// for try await event in try await client.events("demo") { print(event.seq, event.event.name) }
/// ```
public struct AgentBoxClient: Sendable {
    public let endpoint: URL
    public let token: String?
    let http: HTTPClient
    /// How long a request may take to get its response head.
    public var timeout: TimeAmount = .seconds(60)

    public init(endpoint: URL, token: String? = nil, httpClient: HTTPClient = .shared) {
        self.endpoint = endpoint
        self.token = token
        self.http = httpClient
    }

    // MARK: Server

    public func health() async throws -> Health {
        try await send(.GET, "/v1/health")
    }

    /// The server's OpenAPI document, as JSON.
    public func openAPIDocument() async throws -> JSONValue {
        try await send(.GET, "/v1/openapi.json")
    }

    // MARK: Workspaces

    /// Gets or creates the workspace `key`; `created` tells which.
    public func putWorkspace(_ key: String, config: WorkspaceConfig = WorkspaceConfig()) async throws
        -> (workspace: Workspace, created: Bool)
    {
        let response = try await perform(.PUT, Self.workspacePath(key), body: try AgentBoxJSON.makeEncoder().encode(config))
        return (try decode(Workspace.self, response.body), response.status == .created)
    }

    /// One page of workspaces.
    public func workspaces(cursor: String? = nil, limit: Int? = nil) async throws -> WorkspaceList {
        var query: [(String, String)] = []
        if let cursor { query.append(("cursor", cursor)) }
        if let limit { query.append(("limit", String(limit))) }
        return try await send(.GET, "/v1/workspaces", query: query)
    }

    /// Every workspace, following the cursor page by page.
    public func allWorkspaces(pageSize: Int = 500) async throws -> [Workspace] {
        var all: [Workspace] = []
        var cursor: String?
        repeat {
            let page = try await workspaces(cursor: cursor, limit: pageSize)
            all += page.items
            cursor = page.nextCursor
        } while cursor != nil
        return all
    }

    public func workspace(_ key: String) async throws -> Workspace {
        try await send(.GET, Self.workspacePath(key))
    }

    public func deleteWorkspace(_ key: String) async throws {
        _ = try await perform(.DELETE, Self.workspacePath(key))
    }

    /// Puts the workspace to sleep now.
    public func sleepWorkspace(_ key: String) async throws -> Workspace {
        try await send(.POST, Self.workspacePath(key) + "/sleep")
    }

    /// Boots the workspace if it sleeps.
    public func wakeWorkspace(_ key: String) async throws -> Workspace {
        try await send(.POST, Self.workspacePath(key) + "/wake")
    }

    /// The workspace's event stream. Returns once the server has subscribed, so no event after this call is
    /// missed. `after` resumes after that sequence number (from the server's replay memory).
    public func events(_ key: String, after: Int64? = nil) async throws -> WorkspaceEventStream {
        var request = makeRequest(.GET, Self.workspacePath(key) + "/events")
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let after { request.headers.add(name: "Last-Event-ID", value: String(after)) }
        let response = try await http.execute(request, timeout: timeout)
        guard response.status == .ok else {
            throw try await AgentBoxClientError(response: response)
        }
        return WorkspaceEventStream(body: response.body)
    }

    // MARK: Processes

    /// Runs a shell command line to completion in the workspace (booting it if it sleeps).
    public func exec(_ key: String, _ request: ExecRequest) async throws -> ExecResult {
        try await send(.POST, Self.workspacePath(key) + "/exec", body: try AgentBoxJSON.makeEncoder().encode(request))
    }

    /// Runs `command` (a shell command line) to completion.
    public func exec(_ key: String, command: String, timeoutMs: Int? = nil) async throws -> ExecResult {
        try await exec(key, ExecRequest(command: command, timeoutMs: timeoutMs))
    }

    /// Starts a program without a shell and leaves it running.
    public func spawn(_ key: String, _ request: SpawnRequest) async throws -> WorkspaceProcess {
        try await send(.POST, Self.workspacePath(key) + "/processes", body: try AgentBoxJSON.makeEncoder().encode(request))
    }

    public func processes(_ key: String) async throws -> ProcessList {
        try await send(.GET, Self.workspacePath(key) + "/processes")
    }

    public func process(_ key: String, _ id: String) async throws -> WorkspaceProcess {
        try await send(.GET, Self.processPath(key, id))
    }

    /// Writes `data` to the process's stdin, and closes stdin after when `close`.
    public func writeStdin(_ key: String, _ id: String, _ data: [UInt8], close: Bool = false) async throws {
        var request = makeRequest(.POST, Self.processPath(key, id) + "/stdin", query: close ? [("close", "true")] : [])
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        request.body = .bytes(ByteBuffer(bytes: data))
        let response = try await http.execute(request, timeout: timeout)
        guard (200..<300).contains(response.status.code) else { throw try await AgentBoxClientError(response: response) }
    }

    /// Waits until the process has exited (a 408 error when `timeoutMs` passes first).
    public func wait(_ key: String, _ id: String, timeoutMs: Int? = nil) async throws -> WorkspaceProcess {
        try await send(.POST, Self.processPath(key, id) + "/wait", query: timeoutMs.map { [("timeoutMs", String($0))] } ?? [])
    }

    /// Sends a signal (`TERM`, `KILL`, `INT`, `HUP`, ...) to the process.
    public func signal(_ key: String, _ id: String, _ signal: String) async throws {
        _ = try await perform(.POST, Self.processPath(key, id) + "/signal", body: try AgentBoxJSON.makeEncoder().encode(SignalRequest(signal: signal)))
    }

    /// The process's buffered output.
    public func output(_ key: String, _ id: String) async throws -> ProcessOutput {
        try await send(.GET, Self.processPath(key, id) + "/output")
    }

    /// The process's output so far, then live, ending with its `processExit`.
    public func followOutput(_ key: String, _ id: String) async throws -> WorkspaceEventStream {
        var request = makeRequest(.GET, Self.processPath(key, id) + "/output", query: [("follow", "true")])
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response = try await http.execute(request, timeout: timeout)
        guard response.status == .ok else { throw try await AgentBoxClientError(response: response) }
        return WorkspaceEventStream(body: response.body)
    }

    static func processPath(_ key: String, _ id: String) -> String {
        workspacePath(key) + "/processes/" + (id.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? id)
    }

    // MARK: Files

    /// A file's bytes, as a stream of chunks (bounded memory for any size).
    public func readFile(_ key: String, path: String) async throws -> HTTPClientResponse.Body {
        let request = makeRequest(.GET, Self.workspacePath(key) + "/fs/file", query: [("path", path)])
        let response = try await http.execute(request, timeout: timeout)
        guard response.status == .ok else { throw try await AgentBoxClientError(response: response) }
        return response.body
    }

    /// A file's bytes, collected (at most `limit`).
    public func readFileData(_ key: String, path: String, limit: Int = 64 << 20) async throws -> Data {
        Data(try await readFile(key, path: path).collect(upTo: limit).readableBytesView)
    }

    /// Writes a file from bytes.
    public func writeFile(_ key: String, path: String, data: Data) async throws -> FileWriteResult {
        try await upload(Self.workspacePath(key) + "/fs/file", query: [("path", path)], contentType: "application/octet-stream", body: .bytes(ByteBuffer(bytes: data)))
    }

    /// Writes a file streamed from `body` (for large files: bounded memory).
    public func writeFile(_ key: String, path: String, body: HTTPClientRequest.Body) async throws -> FileWriteResult {
        try await upload(Self.workspacePath(key) + "/fs/file", query: [("path", path)], contentType: "application/octet-stream", body: body)
    }

    public func listFiles(_ key: String, path: String, recursive: Bool = false, maxDepth: Int? = nil) async throws -> FileEntryList {
        var query = [("path", path)]
        if recursive { query.append(("recursive", "true")) }
        if let maxDepth { query.append(("maxDepth", String(maxDepth))) }
        return try await send(.GET, Self.workspacePath(key) + "/fs/entries", query: query)
    }

    public func stat(_ key: String, path: String) async throws -> FileStat {
        try await send(.GET, Self.workspacePath(key) + "/fs/stat", query: [("path", path)])
    }

    public func exists(_ key: String, path: String) async throws -> Bool {
        let answer: FileExists = try await send(.GET, Self.workspacePath(key) + "/fs/exists", query: [("path", path)])
        return answer.exists
    }

    public func makeDirectory(_ key: String, path: String, recursive: Bool = false) async throws {
        _ = try await perform(.POST, Self.workspacePath(key) + "/fs/mkdir", body: try AgentBoxJSON.makeEncoder().encode(MkdirRequest(path: path, recursive: recursive)))
    }

    public func move(_ key: String, from: String, to: String, overwrite: Bool = false) async throws {
        _ = try await perform(.POST, Self.workspacePath(key) + "/fs/move", body: try AgentBoxJSON.makeEncoder().encode(MoveRequest(from: from, to: to, overwrite: overwrite)))
    }

    public func delete(_ key: String, path: String, recursive: Bool = false) async throws {
        var query = [("path", path)]
        if recursive { query.append(("recursive", "true")) }
        _ = try await perform(.DELETE, Self.workspacePath(key) + "/fs/entry", query: query)
    }

    /// Unpacks a tar stream under `path` in the workspace.
    public func uploadTar(_ key: String, path: String, body: HTTPClientRequest.Body) async throws -> UploadResult {
        try await upload(Self.workspacePath(key) + "/fs/upload", query: [("path", path)], contentType: "application/x-tar", body: body)
    }

    /// A tar stream of a directory's contents.
    public func archive(_ key: String, path: String) async throws -> HTTPClientResponse.Body {
        let request = makeRequest(.GET, Self.workspacePath(key) + "/fs/archive", query: [("path", path)])
        let response = try await http.execute(request, timeout: timeout)
        guard response.status == .ok else { throw try await AgentBoxClientError(response: response) }
        return response.body
    }

    /// Changes below the directory `path` as they happen (with `recursive`, in its subdirectories too). Returns
    /// once the server watches, so no change after this call is missed.
    public func watch(_ key: String, path: String, recursive: Bool = false) async throws -> FileWatchStream {
        var query = [("path", path)]
        if recursive { query.append(("recursive", "true")) }
        var request = makeRequest(.GET, Self.workspacePath(key) + "/fs/watch", query: query)
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response = try await http.execute(request, timeout: timeout)
        guard response.status == .ok else { throw try await AgentBoxClientError(response: response) }
        return FileWatchStream(body: response.body)
    }

    // MARK: Shells

    /// Opens a shell on a new terminal of the workspace (booting it).
    public func openShell(_ key: String, _ request: ShellCreateRequest = ShellCreateRequest()) async throws -> Shell {
        try await send(.POST, Self.workspacePath(key) + "/shells", body: try AgentBoxJSON.makeEncoder().encode(request))
    }

    public func shells(_ key: String) async throws -> ShellList {
        try await send(.GET, Self.workspacePath(key) + "/shells")
    }

    public func shell(_ key: String, _ id: String) async throws -> Shell {
        try await send(.GET, Self.shellPath(key, id))
    }

    /// Writes bytes to the shell's terminal, as if typed.
    public func writeShellInput(_ key: String, _ id: String, _ bytes: [UInt8]) async throws {
        var request = makeRequest(.POST, Self.shellPath(key, id) + "/input")
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        request.body = .bytes(ByteBuffer(bytes: bytes))
        let response = try await http.execute(request, timeout: timeout)
        guard (200..<300).contains(response.status.code) else { throw try await AgentBoxClientError(response: response) }
    }

    public func resizeShell(_ key: String, _ id: String, cols: Int, rows: Int) async throws {
        _ = try await perform(.POST, Self.shellPath(key, id) + "/resize", body: try AgentBoxJSON.makeEncoder().encode(ShellResize(cols: cols, rows: rows)))
    }

    /// Closes the shell: its process group dies.
    public func closeShell(_ key: String, _ id: String) async throws {
        _ = try await perform(.DELETE, Self.shellPath(key, id))
    }

    /// Attaches to the shell's WebSocket and runs `body` with its inbound and outbound sides until either closes.
    /// Binary frames carry terminal bytes; send ``ShellControlMessage`` resize frames as text.
    public func attachShell(
        _ key: String, _ id: String, logger: Logger = Logger(label: "agentbox.client"),
        _ body: @escaping @Sendable (WebSocketInboundStream, WebSocketOutboundWriter) async throws -> Void
    ) async throws {
        var components = URLComponents(url: endpoint, resolvingAgainstBaseURL: false)!
        components.scheme = components.scheme == "https" ? "wss" : "ws"
        components.percentEncodedPath = components.percentEncodedPath.trimmingSuffix("/") + Self.shellPath(key, id) + "/ws"
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        let configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20, additionalHeaders: headers)
        try await WebSocketClient.connect(url: components.string!, configuration: configuration, logger: logger) { inbound, outbound, _ in
            try await body(inbound, outbound)
        }
    }

    static func shellPath(_ key: String, _ id: String) -> String {
        workspacePath(key) + "/shells/" + (id.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? id)
    }

    // MARK: Snapshots

    /// Sends one HTTP request to a server listening on `port` inside the workspace (booting it) and returns the
    /// whole answer.
    public func fetch(_ key: String, _ request: FetchRequest) async throws -> FetchResponse {
        try await send(.POST, Self.workspacePath(key) + "/fetch", body: try AgentBoxJSON.makeEncoder().encode(request))
    }

    /// Makes a preview URL for `port` of the workspace; `expiresIn` in seconds (the server's default when `nil`).
    public func createPreview(_ key: String, port: Int, expiresInSeconds: Int? = nil) async throws -> Preview {
        try await send(
            .POST, Self.workspacePath(key) + "/previews",
            body: try AgentBoxJSON.makeEncoder().encode(PreviewRequest(port: port, expiresInSeconds: expiresInSeconds)))
    }

    /// The workspace's unexpired previews.
    public func previews(_ key: String) async throws -> PreviewList {
        try await send(.GET, Self.workspacePath(key) + "/previews")
    }

    /// Revokes a preview: its URL answers 404 from now on.
    public func revokePreview(_ key: String, token: String) async throws {
        _ = try await perform(.DELETE, Self.workspacePath(key) + "/previews/" + (token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token))
    }

    /// Takes a snapshot of the workspace's persistent files (`/workspace`, `/home/agent`).
    public func createSnapshot(_ key: String) async throws -> Snapshot {
        try await send(.POST, Self.workspacePath(key) + "/snapshots")
    }

    public func snapshots(_ key: String) async throws -> SnapshotList {
        try await send(.GET, Self.workspacePath(key) + "/snapshots")
    }

    public func deleteSnapshot(_ key: String, _ id: String) async throws {
        _ = try await perform(.DELETE, Self.workspacePath(key) + "/snapshots/" + (id.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? id))
    }

    /// Creates the workspace `key` from a snapshot (a fork); fields of `config` override the snapshot's workspace's.
    public func forkWorkspace(_ key: String, fromSnapshot id: String, config: WorkspaceConfig = WorkspaceConfig()) async throws
        -> (workspace: Workspace, created: Bool)
    {
        var config = config
        config.fromSnapshot = id
        return try await putWorkspace(key, config: config)
    }

    private func upload<Reply: Decodable>(_ path: String, query: [(String, String)], contentType: String, body: HTTPClientRequest.Body) async throws -> Reply {
        var request = makeRequest(.PUT, path, query: query)
        if path.hasSuffix("/upload") { request.method = .POST }
        request.headers.add(name: "Content-Type", value: contentType)
        request.body = body
        let response = try await http.execute(request, timeout: .hours(24))
        guard (200..<300).contains(response.status.code) else { throw try await AgentBoxClientError(response: response) }
        return try decode(Reply.self, try await response.body.collect(upTo: 16 << 20))
    }

    // MARK: Plumbing

    static func workspacePath(_ key: String) -> String {
        "/v1/workspaces/" + (key.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? key)
    }

    func makeRequest(_ method: HTTPMethod, _ path: String, query: [(String, String)] = []) -> HTTPClientRequest {
        var components = URLComponents(url: endpoint, resolvingAgainstBaseURL: false)!
        components.percentEncodedPath = components.percentEncodedPath.trimmingSuffix("/") + path
        if !query.isEmpty { components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        var request = HTTPClientRequest(url: components.string!)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        return request
    }

    struct RawResponse {
        var status: HTTPResponseStatus
        var body: ByteBuffer
    }

    /// Sends a request and returns its status and whole body; throws ``AgentBoxClientError`` for a 4xx or 5xx.
    func perform(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: Data? = nil, timeout override: TimeAmount? = nil
    ) async throws -> RawResponse {
        var request = makeRequest(method, path, query: query)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await http.execute(request, timeout: override ?? timeout)
        guard (200..<300).contains(response.status.code) else {
            throw try await AgentBoxClientError(response: response)
        }
        return RawResponse(status: response.status, body: try await response.body.collect(upTo: 64 << 20))
    }

    func send<Reply: Decodable>(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: Data? = nil) async throws -> Reply {
        try decode(Reply.self, try await perform(method, path, query: query, body: body).body)
    }

    func decode<Reply: Decodable>(_ type: Reply.Type, _ buffer: ByteBuffer) throws -> Reply {
        try AgentBoxJSON.makeDecoder().decode(Reply.self, from: Data(buffer.readableBytesView))
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}

/// An error answer of the server: its status and problem document.
public struct AgentBoxClientError: Error, Sendable, CustomStringConvertible {
    public let status: Int
    public let problem: Problem

    init(response: HTTPClientResponse) async throws {
        status = Int(response.status.code)
        let body = try await response.body.collect(upTo: 1 << 20)
        if let problem = try? AgentBoxJSON.makeDecoder().decode(Problem.self, from: Data(body.readableBytesView)) {
            self.problem = problem
        } else {
            problem = Problem(
                title: response.status.reasonPhrase, status: status, detail: String(buffer: body))
        }
    }

    public var description: String { problem.detail.isEmpty ? problem.title : "\(problem.title): \(problem.detail)" }

    public init(status: Int, problem: Problem) {
        self.status = status
        self.problem = problem
    }
}

/// Server-Sent Events as they arrive, each decoded, as an `AsyncSequence`. Ends when the server ends the stream.
public struct ServerSentEventStream<Element: Sendable>: AsyncSequence, Sendable {
    let body: HTTPClientResponse.Body
    let decode: @Sendable (ServerSentEvent, JSONDecoder) throws -> Element

    public struct AsyncIterator: AsyncIteratorProtocol {
        var chunks: HTTPClientResponse.Body.AsyncIterator
        var parser = ServerSentEventParser()
        var pending: [ServerSentEvent] = []
        let decoder = AgentBoxJSON.makeDecoder()
        let decode: @Sendable (ServerSentEvent, JSONDecoder) throws -> Element

        public mutating func next() async throws -> Element? {
            while true {
                if !pending.isEmpty { return try decode(pending.removeFirst(), decoder) }
                guard let chunk = try await chunks.next() else { return nil }
                pending = parser.consume(chunk.readableBytesView)
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(chunks: body.makeAsyncIterator(), decode: decode)
    }
}

/// The events of a workspace (or of one process's output) as they arrive.
public typealias WorkspaceEventStream = ServerSentEventStream<WorkspaceEventEnvelope>

/// The changes a file watch reports as they happen; ends when the watched directory is gone or the server stops.
public typealias FileWatchStream = ServerSentEventStream<FileWatchEvent>

extension ServerSentEventStream where Element == WorkspaceEventEnvelope {
    init(body: HTTPClientResponse.Body) {
        self.init(body: body) { event, decoder in
            // Frames without an id (a process's output replayed from its buffer) carry seq 0.
            let id = event.id.flatMap { Int64($0) } ?? 0
            return WorkspaceEventEnvelope(seq: id, event: try WorkspaceEvent.decode(name: event.event, data: Data(event.data.utf8), using: decoder))
        }
    }
}

extension ServerSentEventStream where Element == FileWatchEvent {
    init(body: HTTPClientResponse.Body) {
        self.init(body: body) { event, decoder in try decoder.decode(FileWatchEvent.self, from: Data(event.data.utf8)) }
    }
}
