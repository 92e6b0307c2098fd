import AgentBoxAPI
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A typed client of the AgentBox HTTP API.
///
/// One value names a server and a token; its methods are grouped by resource, one file each: workspaces,
/// events, files, processes, shells, networking, snapshots, sessions and agents. An error answer throws
/// ``AgentBoxClientError``; event streams are `AsyncSequence`s.
///
/// ```swift
/// let client = AgentBoxClient(endpoint: URL(string: "http://127.0.0.1:2468")!, token: token)
/// let (workspace, created) = try await client.putWorkspace("demo")
/// for try await event in try await client.events("demo") { print(event.seq, event.event.name) }
/// ```
public struct AgentBoxClient: Sendable {
    /// The server's base URL, such as `http://127.0.0.1:2468`.
    public let endpoint: URL
    /// The bearer token sent with every request, if any.
    public let token: String?
    let http: HTTPClient
    /// How long a request may take to get its response head.
    public var timeout: TimeAmount = .seconds(60)

    /// A client of the server at `endpoint`, authenticating with `token`, over `httpClient` (by default one shared by
    /// every AgentBoxClient: ``defaultHTTPClient``).
    public init(endpoint: URL, token: String? = nil, httpClient: HTTPClient = AgentBoxClient.defaultHTTPClient) {
        self.endpoint = endpoint
        self.token = token
        self.http = httpClient
    }

    /// The HTTP client AgentBoxClients use unless given one: AsyncHTTPClient's shared configuration without its read
    /// timeout. An exec or a wait answers nothing until its command ends, and the shared client's 90 s of silence ended
    /// such a call however long its command was allowed; each call's own deadline bounds it instead (``timeout``, or
    /// the command's `timeoutMs` and a minute). Never shut down, like `HTTPClient.shared`.
    public static let defaultHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration.singletonConfiguration
        configuration.timeout = .init(connect: .seconds(30), read: nil)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    // MARK: Server

    /// The server's health and version.
    ///
    /// ```swift
    /// print(try await client.health().version)
    /// ```
    public func health() async throws -> Health {
        try await send(.GET, "/v1/health")
    }

    /// The server's OpenAPI document, as JSON.
    public func openAPIDocument() async throws -> JSONValue {
        try await send(.GET, "/v1/openapi.json")
    }
}

// MARK: Request plumbing

extension AgentBoxClient {
    /// The path of workspace `key`; every resource of a workspace lives below it.
    static func workspacePath(_ key: String) -> String {
        "/v1/workspaces/" + (key.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? key)
    }

    /// `text` as one path segment (ids, tokens: letters and digits pass, the rest is percent-encoded).
    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    /// The endpoint with `path` appended and `query` encoded, as a URL string.
    func url(_ path: String, query: [(String, String)] = [], scheme: String? = nil) -> String {
        var components = URLComponents(url: endpoint, resolvingAgainstBaseURL: false)!
        if let scheme { components.scheme = scheme }
        components.percentEncodedPath = components.percentEncodedPath.trimmingSuffix("/") + path
        if !query.isEmpty { components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        return components.string!
    }

    /// A request to `path` with the bearer token.
    func makeRequest(_ method: HTTPMethod, _ path: String, query: [(String, String)] = []) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url(path, query: query))
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
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: Data? = nil, timeout override: TimeAmount? = nil,
        responseLimit: Int = 64 << 20
    ) async throws -> RawResponse {
        var request = makeRequest(method, path, query: query)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await execute(request, timeout: override ?? timeout)
        do {
            return RawResponse(status: response.status, body: try await response.body.collect(upTo: responseLimit))
        } catch is NIOTooManyBytesError {
            throw AgentBoxResponseTooLarge(limit: responseLimit, path: path)
        }
    }

    /// Sends a request whose answer is decoded as `Reply`.
    func send<Reply: Decodable>(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: Data? = nil) async throws -> Reply {
        try decode(Reply.self, try await perform(method, path, query: query, body: body).body)
    }

    /// Sends a request with `value` as its JSON body, and returns the whole answer.
    func perform(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], json value: some Encodable, timeout override: TimeAmount? = nil,
        responseLimit: Int = 64 << 20
    ) async throws -> RawResponse {
        try await perform(method, path, query: query, body: try AgentBoxJSON.makeEncoder().encode(value), timeout: override, responseLimit: responseLimit)
    }

    /// Sends a request with `value` as its JSON body, and decodes the answer as `Reply`.
    func send<Reply: Decodable>(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], json value: some Encodable) async throws -> Reply {
        try await send(method, path, query: query, body: try AgentBoxJSON.makeEncoder().encode(value))
    }

    /// Sends a request whose body is raw bytes (`application/octet-stream`), expecting no answer body.
    func sendBytes(_ path: String, query: [(String, String)] = [], _ bytes: [UInt8]) async throws {
        var request = makeRequest(.POST, path, query: query)
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        request.body = .bytes(ByteBuffer(bytes: bytes))
        _ = try await execute(request, timeout: timeout)
    }

    /// Opens a `text/event-stream` answer and returns its body once the server has answered 200.
    func openEventStream(
        _ path: String, query: [(String, String)] = [], method: HTTPMethod = .GET, lastEventID: Int64? = nil, json value: (some Encodable)? = nil as Int?,
        timeout override: TimeAmount? = nil
    ) async throws -> HTTPClientResponse.Body {
        var request = makeRequest(method, path, query: query)
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let value {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try AgentBoxJSON.makeEncoder().encode(value)))
        }
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: String(lastEventID)) }
        return try await execute(request, timeout: override ?? timeout).body
    }

    /// Executes `request`; a status outside 2xx throws ``AgentBoxClientError`` with the server's problem document.
    func execute(_ request: HTTPClientRequest, timeout: TimeAmount) async throws -> HTTPClientResponse {
        let response = try await http.execute(request, timeout: timeout)
        guard (200..<300).contains(response.status.code) else { throw try await AgentBoxClientError(response: response) }
        return response
    }

    /// Decodes a whole answer body.
    func decode<Reply: Decodable>(_ type: Reply.Type, _ buffer: ByteBuffer) throws -> Reply {
        try AgentBoxJSON.makeDecoder().decode(Reply.self, from: Data(buffer.readableBytesView))
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
