import AgentBox
import AgentBoxAPI
import AgentBoxStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOHTTP1

/// An error the server answers with an `application/problem+json` body.
public struct ProblemError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let detail: String
    public let headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ detail: String, headers: HTTPFields = [:]) {
        self.status = status
        self.detail = detail
        self.headers = headers
    }

    public var problem: Problem {
        Problem(title: status.reasonPhrase, status: status.code, detail: detail)
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

    /// The problem that answers `error`: every error of the library and the framework maps to exactly one status.
    static func from(_ error: any Error, logger: Logger) -> ProblemError {
        switch error {
        case let error as ProblemError:
            return error
        case let error as AgentBoxError:
            return ProblemError(status(for: error.code), error.message)
        case let error as InvalidWorkspaceKey:
            return ProblemError(.badRequest, error.reason)
        case let error as DecodingError:
            return ProblemError(.badRequest, "malformed JSON body: \(AgentBoxRequestDecoder.describe(error))")
        case let error as HTTPError:
            let detail = error.body ?? defaultDetail(for: error.status)
            return ProblemError(error.status, detail, headers: error.headers)
        case let error as any HTTPResponseError:
            return ProblemError(error.status, defaultDetail(for: error.status))
        default:
            logger.error("request failed", metadata: ["error": "\(error)"])
            return ProblemError(.internalServerError, "internal error: \(error)")
        }
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
        case .storageFull: HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")
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
