import Foundation
import HTTPTypes
import Hummingbird

/// Cross-origin access for browsers, for the origins `serve --cors-origin` lists and no others.
///
/// A request from a listed origin gets `Access-Control-Allow-Origin: <that origin>` (and `Vary: Origin`) on its answer,
/// errors included; a preflight (`OPTIONS` with `Access-Control-Request-Method`) from a listed origin is answered 204
/// here, before authentication (browsers send no credentials with it), with the methods and headers the API uses. An
/// unlisted origin gets no CORS header at all, so the browser keeps its page out. No cookies are used, so credentials
/// are not allowed: a page sends the token in `Authorization` itself.
///
/// Written here rather than with Hummingbird's `CORSMiddleware`, whose list of origins is variadic only (a list read
/// from the command line cannot be passed) and which answers preflights of unlisted origins with the allowed methods
/// and headers.
struct OriginCORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let origins: Set<String>

    static var allowedMethods: String { "GET, HEAD, POST, PUT, PATCH, DELETE" }
    static var allowedHeaders: String { "authorization, content-type, accept, last-event-id, mcp-session-id, mcp-protocol-version" }
    static var exposedHeaders: String { "location, mcp-session-id, x-agentbox-truncated, content-disposition" }

    /// Whether `text` is an origin as browsers send it: `scheme://host[:port]`, no path, no trailing slash.
    static func isOrigin(_ text: String) -> Bool {
        guard let schemeEnd = text.range(of: "://") else { return false }
        let scheme = text[..<schemeEnd.lowerBound], rest = text[schemeEnd.upperBound...]
        return (scheme == "http" || scheme == "https") && !rest.isEmpty && !rest.contains("/") && !rest.contains("?") && !rest.contains("#")
            && !rest.contains("@") && rest.allSatisfy { $0.isASCII && !$0.isWhitespace }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], origins.contains(origin) else { return try await next(request, context) }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            return Response(
                status: .noContent,
                headers: [
                    .accessControlAllowOrigin: origin, .vary: "Origin", .accessControlAllowMethods: Self.allowedMethods,
                    .accessControlAllowHeaders: Self.allowedHeaders, .accessControlMaxAge: "600",
                ])
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlExposeHeaders] = Self.exposedHeaders
        response.headers.append(HTTPField(name: .vary, value: "Origin"))
        return response
    }
}
