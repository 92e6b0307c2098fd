import AgentBox
import AgentBoxAPI
import AgentBoxStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// An error the server answers with an `application/problem+json` body.
///
/// Every problem has a stable `type` URI (``ProblemType``) that a client can branch on; its `detail` says what
/// happened in words meant for the caller. Internal failures say only that, with a reference to the server's log line
/// that holds the real error: problem details never carry internal error text or host paths.
public struct ProblemError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let type: String
    public let detail: String
    public let headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ detail: String, type: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.type = type ?? ProblemType.for(status)
        self.detail = detail
        self.headers = headers
    }

    public var problem: Problem {
        Problem(type: type, title: status.reasonPhrase, status: status.code, detail: detail)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try AgentBoxJSON.makeEncoder().encode(problem)
        var fields = headers
        fields[.contentType] = "application/problem+json"
        fields[.contentLength] = String(data.count)
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The same answer for a pipeline below the routes, on NIO's HTTP/1 types: its head, with `extra` headers, and
    /// its problem+json body.
    func http1Answer(adding extra: HTTPHeaders = [:]) -> (head: HTTPResponseHead, body: ByteBuffer) {
        let data = (try? AgentBoxJSON.makeEncoder().encode(problem)) ?? Data()
        var fields = HTTPHeaders(headers.map { ($0.name.rawName, $0.value) })
        fields.add(contentsOf: extra)
        fields.replaceOrAdd(name: "content-type", value: "application/problem+json")
        fields.replaceOrAdd(name: "content-length", value: String(data.count))
        let status = HTTPResponseStatus(statusCode: status.code, reasonPhrase: status.reasonPhrase)
        return (HTTPResponseHead(version: .http1_1, status: status, headers: fields), ByteBuffer(bytes: data))
    }

    /// Writes this problem as the answer on a connection below the routes (``http1Answer(adding:)``, with
    /// `connection: close`), then closes the connection once it is written.
    func answerAndClose(_ context: ChannelHandlerContext) {
        let (head, body) = http1Answer(adding: ["connection": "close"])
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    /// The problem that answers `error`: every error of the library and the framework maps to exactly one status.
    static func from(_ error: any Error, logger: Logger) -> ProblemError {
        switch error {
        case let error as ProblemError:
            return error
        case let error as AgentBoxError:
            let status = status(for: error.code)
            if status == .internalServerError { return internalProblem(error, logger: logger) }
            return ProblemError(status, error.message, type: ProblemType.for(error.code))
        case let error as StoreError where error.code == .notFound:
            // A workspace deleted while the request was under way.
            return ProblemError(.notFound, error.message)
        case let error as StoreError where error.code == .fenced:
            // Another node took the workspace over while this one answered: the client's retry is forwarded there.
            return ProblemError(.serviceUnavailable, "this node no longer serves the workspace (\(error.message)); try again", headers: [.retryAfter: "1"])
        case let error as StoreError where error.code == .closed:
            return ProblemError(.serviceUnavailable, "AgentBox is shutting down")
        case let error as InvalidWorkspaceKey:
            return ProblemError(.badRequest, error.reason)
        case let error as HTTPParserError:
            // A body that turned out not to be HTTP (a bad chunk size) while a route read it.
            return ProblemError(.badRequest, "the request is not valid HTTP/1.1 (\(error))")
        case is NIOTooManyBytesError:
            return ProblemError(.contentTooLarge, "the request body is too large for this route")
        case let error as DecodingError:
            return ProblemError(.badRequest, "malformed JSON body: \(AgentBoxRequestDecoder.describe(error))")
        case let error as HTTPError:
            let detail = error.body ?? defaultDetail(for: error.status)
            return ProblemError(error.status, detail, headers: error.headers)
        case let error as any HTTPResponseError:
            return ProblemError(error.status, defaultDetail(for: error.status))
        default:
            return internalProblem(error, logger: logger)
        }
    }

    /// A failure inside AgentBox: logged whole with a reference, answered with the reference only.
    static func internalProblem(_ error: any Error, logger: Logger) -> ProblemError {
        let reference = String((0..<12).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
        var metadata: Logger.Metadata = ["error": "\(error)", "problem.reference": "\(reference)"]
        if let underlying = (error as? AgentBoxError)?.underlyingError { metadata["error.underlying"] = "\(underlying)" }
        logger.error("request failed", metadata: metadata)
        return ProblemError(.internalServerError, "internal error (reference \(reference) in the server log)")
    }

    static func status(for code: AgentBoxError.Code) -> HTTPResponse.Status {
        switch code {
        case .invalidArgument: .badRequest
        case .notFound: .notFound
        case .conflict: .conflict
        case .unsupported: .notImplemented
        case .unavailable: .serviceUnavailable
        case .timeout: .requestTimeout
        case .forbidden: .forbidden
        case .unauthenticated: .unauthorized
        case .storageFull: HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")
        case .tooLarge: .contentTooLarge
        case .limitReached: .tooManyRequests
        case .badGateway: .badGateway
        case .gatewayTimeout: .gatewayTimeout
        default: .internalServerError
        }
    }

    private static func defaultDetail(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: "no such route"
        case .contentTooLarge: "the request body is too large"
        default: status.reasonPhrase
        }
    }
}

/// Turns every error thrown by a route, a middleware behind it, or the router (no such route) into problem+json.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return try ProblemError.from(error, logger: context.logger).response(from: request, context: context)
        }
    }
}

/// The stable `type` URIs of AgentBox's problems (RFC 9457 §3.1.1), one per kind of problem. They name kinds, not
/// pages: a client compares them as strings.
public enum ProblemType {
    public static let base = "https://agentbox.dev/problems/"

    public static let invalidArgument = base + "invalid-argument"
    public static let unauthorized = base + "unauthorized"
    public static let forbidden = base + "forbidden"
    public static let notFound = base + "not-found"
    public static let methodNotAllowed = base + "method-not-allowed"
    public static let conflict = base + "conflict"
    public static let tooLarge = base + "too-large"
    public static let unsupportedMediaType = base + "unsupported-media-type"
    public static let limitReached = base + "limit-reached"
    public static let timeout = base + "timeout"
    public static let upgradeRequired = base + "upgrade-required"
    public static let storageFull = base + "storage-full"
    public static let unsupported = base + "unsupported"
    public static let unavailable = base + "unavailable"
    public static let badGateway = base + "bad-gateway"
    public static let gatewayTimeout = base + "gateway-timeout"
    public static let internalError = base + "internal"
    /// Any other status.
    public static let other = "about:blank"

    static func `for`(_ code: AgentBoxError.Code) -> String {
        switch code {
        case .invalidArgument: invalidArgument
        case .notFound: notFound
        case .conflict: conflict
        case .unsupported: unsupported
        case .forbidden: forbidden
        case .unauthenticated: unauthorized
        case .storageFull: storageFull
        case .tooLarge: tooLarge
        case .limitReached: limitReached
        case .timeout: timeout
        case .unavailable: unavailable
        case .badGateway: badGateway
        case .gatewayTimeout: gatewayTimeout
        default: internalError
        }
    }

    static func `for`(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: invalidArgument
        case 401: unauthorized
        case 403: forbidden
        case 404: notFound
        case 405: methodNotAllowed
        case 408: timeout
        case 409: conflict
        case 413: tooLarge
        case 415: unsupportedMediaType
        case 426: upgradeRequired
        case 429: limitReached
        case 500: internalError
        case 501: unsupported
        case 502: badGateway
        case 503: unavailable
        case 504: gatewayTimeout
        case 507: storageFull
        default: other
        }
    }
}
