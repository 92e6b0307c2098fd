import AgentBox
import Foundation
import HTTPTypes
import Hummingbird

/// `GET /ui/`: the Inspector, a static web app (Sources/AgentBoxServer/Inspector) that calls the API from the browser.
///
/// The files are served as they are on disk: from `serve --ui-dir` when given (edit and reload, no rebuild), else from
/// the resources SwiftPM copies beside the binary (`agentbox_AgentBoxServer.resources/Inspector`). They hold no secret,
/// so the routes are open; the app asks for a token (or takes a login link's code) and sends it on each API call.
/// Answers carry a content security policy that allows the page's own scripts and its own origin only.
struct InspectorController {
    /// The folder of the app's files, or `nil` when none was found (the routes then answer 404 saying so).
    let root: URL?

    /// The Inspector's folder: `explicit` when given, else the one beside the running binary.
    static func locate(explicit: String?) -> URL? {
        if let explicit { return URL(fileURLWithPath: explicit, isDirectory: true) }
        let executable = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments.first ?? "")
        let beside = executable.deletingLastPathComponent().appendingPathComponent("agentbox_AgentBoxServer.resources/Inspector", isDirectory: true)
        return FileManager.default.fileExists(atPath: beside.appendingPathComponent("index.html").path) ? beside : nil
    }

    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy:
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; "
            + "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        .xContentTypeOptions: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        .cacheControl: "no-cache",
    ]

    func addRoutes(to registry: APIRouteRegistry) {
        let fileIO = FileIO()
        let root = root
        let open = APIDeclaration(access: .open, scope: .server)
        registry.declare(.get, "/ui", open)
        registry.declare(.get, "/ui/**", open)
        let serve: @Sendable (Request, AgentBoxRequestContext) async throws -> Response = { request, context in
            // `/ui` and `/ui/` are one route to the router; the page's relative links need the slash.
            if request.uri.path == "/ui" {
                return Response(status: .permanentRedirect, headers: [.location: "/ui/"])
            }
            guard let root else {
                throw ProblemError(.notFound, "the Inspector's files are not installed: copy agentbox_AgentBoxServer.resources beside the binary, or pass --ui-dir")
            }
            let parts = context.parameters.getCatchAll()
            guard parts.count <= 8, parts.allSatisfy(Self.isPlainName) else { throw ProblemError(.notFound, "no such file in the Inspector") }
            let relative = parts.isEmpty ? "index.html" : parts.joined(separator: "/")
            let file = root.appendingPathComponent(relative)
            // The resolved path must stay inside the folder (no symbolic link out of it), and be a regular file.
            let base = root.resolvingSymlinksInPath().path + "/"
            let resolved = file.resolvingSymlinksInPath().path
            var isDirectory: ObjCBool = false
            guard resolved.hasPrefix(base), FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw ProblemError(.notFound, "no such file in the Inspector")
            }
            var headers = Self.securityHeaders
            let fileExtension = (relative as NSString).pathExtension
            headers[.contentType] = Self.contentType(ofExtension: fileExtension)
            return Response(status: .ok, headers: headers, body: try await fileIO.loadFile(path: resolved, context: context))
        }
        registry.router.get("/ui", use: serve)
        registry.router.get("/ui/**", use: serve)
    }

    /// A path component the app's files could have: letters, digits, `-`, `_` and `.`, not starting with `.`.
    static func isPlainName(_ part: Substring) -> Bool {
        !part.isEmpty && part.count <= 100 && part.first != "."
            && part.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) }
    }

    static func contentType(ofExtension fileExtension: String) -> String {
        switch fileExtension.lowercased() {
        case "html": "text/html; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "json", "map": "application/json"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "ico": "image/x-icon"
        case "woff2": "font/woff2"
        case "txt", "md": "text/plain; charset=utf-8"
        default: "application/octet-stream"
        }
    }
}
