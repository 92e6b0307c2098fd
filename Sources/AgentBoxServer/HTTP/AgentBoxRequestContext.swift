import AgentBox
import AgentBoxAPI
import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOFoundationEssentialsCompat

/// The request context of every AgentBox route: JSON in and out with AgentBox's date format, and a decoder that
/// answers a wrong content type with 415 and a malformed body with 400.
public struct AgentBoxRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Where a WebSocket route leaves its handler for the upgrade.
    public let webSocket: WebSocketHandlerReference<AgentBoxRequestContext>
    /// Who made the request, once ``AuthMiddleware`` has checked its token (the server's own token, or none on a
    /// server without one: admin of everything).
    public var principal = AccessPrincipal.server
    /// Ends when the request's API token is revoked: streams opened with it end then (see ``ServerSentEvents``).
    public var revocation: AsyncStream<Never>?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
    }

    /// JSON bodies are small; file and tar uploads stream instead of being collected.
    public var maxUploadSize: Int { 1 << 20 }
    public var requestDecoder: AgentBoxRequestDecoder { AgentBoxRequestDecoder() }
    public var responseEncoder: JSONEncoder { AgentBoxJSON.makeEncoder() }

    /// The path parameter `name` as the client meant it: the router hands over the segment as sent, so `a%3Ab` is
    /// decoded to `a:b`.
    func pathParameter(_ name: String) -> String {
        let raw = parameters.get(name) ?? ""
        return raw.removingPercentEncoding ?? raw
    }
}

/// Decodes JSON request bodies, refusing what is not JSON with a problem that says why.
public struct AgentBoxRequestDecoder: RequestDecoder {
    public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        try await decode(type, from: request, limit: context.maxUploadSize)
    }

    /// As ``decode(_:from:context:)``, with a body of at most `limit` bytes.
    public func decode<T: Decodable>(_ type: T.Type, from request: Request, limit: Int) async throws -> T {
        if let contentType = request.headers[.contentType] {
            let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard mediaType == "application/json" || (mediaType?.hasSuffix("+json") ?? false) else {
                throw ProblemError(.unsupportedMediaType, "expected Content-Type application/json, not '\(contentType)'")
            }
        }
        // A declared length past the limit is refused before a byte of it is read (a stalled body would otherwise
        // just time out, unanswered).
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
            throw ProblemError(.contentTooLarge, "this JSON body has at most \(limit) bytes, not \(declared)")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw ProblemError(.contentTooLarge, "this JSON body has at most \(limit) bytes")
        }
        // An empty body means "no fields": every request type whose fields are all optional accepts it.
        return try Self.decode(type, body: buffer.readableBytes == 0 ? Data("{}".utf8) : Data(buffer: buffer))
    }

    /// A JSON body decoded as `type`, or a 400 problem that says what is wrong with it. The body is strict RFC 8259
    /// JSON with no key given twice in an object (checked by ``JSONValue``'s reader first: Foundation's decoder
    /// takes the first of two values for one key, so `{"command": "ls", "command": "rm"}` meant what a reader of it
    /// would not guess).
    static func decode<T: Decodable>(_ type: T.Type, body data: Data) throws -> T {
        do {
            _ = try JSONValue.parse(data, rejectingDuplicateKeys: true)
        } catch let error as JSONValue.ParseError {
            throw ProblemError(.badRequest, "malformed JSON body: \(error)")
        }
        do {
            return try AgentBoxJSON.makeDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw ProblemError(.badRequest, "malformed JSON body: \(Self.describe(error, body: data))")
        }
    }

    /// ``describe(_:)``, told apart for a body that is valid JSON: Foundation's decoder calls a number that does not
    /// fit its field (`1e30` or `1.5` for an integer) "not valid JSON", naming no field; the body is read again here
    /// to name the numbers that may be why.
    static func describe(_ error: DecodingError, body: Data) -> String {
        guard case .dataCorrupted(let context) = error, context.codingPath.isEmpty, let parsed = try? JSONValue.parse(body) else {
            return describe(error)
        }
        // A hostile body may hold a million numbers under long keys: the walk stops at the first few suspects or
        // after so many values, and keeps each path as its parts, cut short, until it names one.
        var suspects: [String] = []
        var visited = 0
        func visit(_ value: JSONValue, _ path: [Substring]) {
            guard suspects.count < 3, visited < 10_000 else { return }
            visited += 1
            switch value {
            case .number(let number) where number.rounded() != number || abs(number) >= 9.2e18:
                let text = path.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
                suspects.append("'\(text.prefix(200))' (\(number))")
            case .object(let fields):
                for (key, field) in fields { visit(field, path + [key.prefix(64)]) }
            case .array(let items):
                for (index, item) in items.enumerated() { visit(item, path + ["[\(index)]"]) }
            default: break
            }
        }
        visit(parsed, [])
        guard !suspects.isEmpty else { return "a value does not fit its field (the JSON itself is valid)" }
        return "a number does not fit its field: \(suspects.joined(separator: ", ")) (integer fields take whole numbers in range)"
    }

    /// A one-line account of a decoding error, naming the field it is about.
    static func describe(_ error: DecodingError) -> String { error.summary }
}
