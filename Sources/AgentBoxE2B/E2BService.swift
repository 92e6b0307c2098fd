import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// E2B's API over AgentBox: the control plane (`/sandboxes…`, `/v2/sandboxes…`, with `X-API-KEY: e2b_<token>`),
/// envd (`/process.Process/*`, `/filesystem.Filesystem/*`, `/files`, `/health`) and the code interpreter
/// (`/execute`, `/contexts…`), the last two for requests that name a sandbox in `E2b-Sandbox-Id` and carry its
/// access token. A sandbox is the workspace whose key is its id.
///
/// ```swift
/// let e2b = E2BService(manager: manager, serverToken: token)
/// if let response = await e2b.respond(to: request) { return response }  // else: AgentBox's own routes
/// ```
public final class E2BService: Sendable {
    let manager: WorkspaceManager
    let serverToken: String?
    let sandboxes: E2BSandboxes
    let processes = E2BProcessTable()
    let watchers = E2BWatchers()
    let kernels: E2BKernels
    let logger: Logger

    /// The envd version the SDKs are told: default user, `stdin` honoured, `close_stdin`, raw uploads (see E2B.md).
    static let envdVersion = "0.5.7"

    public init(manager: WorkspaceManager, serverToken: String?) {
        self.manager = manager
        self.serverToken = serverToken
        self.sandboxes = E2BSandboxes(manager: manager)
        self.kernels = E2BKernels(manager: manager)
        self.logger = manager.logger
        let sandboxes = self.sandboxes
        Task { await sandboxes.start() }
    }

    static let sandboxIDHeader = HTTPField.Name("E2b-Sandbox-Id")!
    static let apiKeyHeader = HTTPField.Name("X-API-KEY")!
    static let accessTokenHeader = HTTPField.Name("X-Access-Token")!
    static let trafficTokenHeader = HTTPField.Name("E2B-Traffic-Access-Token")!

    /// Whether `request` is E2B's: it names a sandbox, or its path is the control plane's.
    public static func handles(_ request: Request) -> Bool {
        if request.headers[sandboxIDHeader] != nil { return true }
        let path = request.uri.path
        return path == "/sandboxes" || path.hasPrefix("/sandboxes/") || path == "/v2/sandboxes" || path.hasPrefix("/v2/sandboxes/")
    }

    /// The answer to an E2B request, or `nil` when `request` is not one (AgentBox's own routes answer it).
    public func respond(to request: Request) async -> Response? {
        guard Self.handles(request) else { return nil }
        if let id = request.headers[Self.sandboxIDHeader] {
            return await dataPlane(request, sandboxID: id)
        }
        do {
            return try await controlPlane(request)
        } catch {
            let failure = E2BError(error)
            if failure.status == .internalServerError { logger.error("e2b control plane failed", metadata: ["error": "\(String(reflecting: error))"]) }
            return failure.response
        }
    }

    // MARK: Data plane

    private func dataPlane(_ request: Request, sandboxID: String) async -> Response {
        let path = request.uri.path
        let isRPC = path.hasPrefix("/process.Process/") || path.hasPrefix("/filesystem.Filesystem/")
        do {
            let record = try await authorizeDataPlane(request, sandboxID: sandboxID, path: path)
            await sandboxes.touch(sandboxID)
            if isRPC {
                return try await rpc(request, record: record, path: path)
            }
            switch (request.method, path) {
            case (.get, "/health"), (.head, "/health"): return Response(status: .noContent)
            case (.get, "/files"): return try await downloadFile(request, record: record)
            case (.post, "/files"): return try await uploadFiles(request, record: record)
            case (.post, "/execute"): return try await execute(request, record: record)
            default:
                if path == "/contexts" || path.hasPrefix("/contexts/") { return try await contexts(request, record: record, path: path) }
                throw E2BError(.notFound, "no route \(request.method) \(path)")
            }
        } catch {
            // A missing or paused sandbox is E2B's edge speaking (502, `{code, message}`), whatever the path.
            if isRPC, (error as? E2BError)?.status != .badGateway { return ConnectError(error).response }
            return E2BError(error).response
        }
    }

    /// The sandbox `sandboxID`, when the request carries its access token (`/contexts` may carry its traffic token).
    private func authorizeDataPlane(_ request: Request, sandboxID: String, path: String) async throws -> E2BSandboxRecord {
        guard let record = await sandboxes.record(sandboxID) else {
            // What E2B's edge answers for a sandbox that is not there; the SDK reads "not found" from it.
            throw E2BError(.badGateway, "The sandbox \(sandboxID) was not found")
        }
        let presented = request.headers[Self.accessTokenHeader]
        let traffic = request.headers[Self.trafficTokenHeader]
        let admitted =
            presented.map { constantTimeEquals($0, record.accessToken) } == true
            || ((path == "/contexts" || path.hasPrefix("/contexts/")) && traffic.map { constantTimeEquals($0, record.trafficToken) } == true)
        guard admitted else {
            throw E2BError(.unauthorized, presented == nil && traffic == nil ? "missing X-Access-Token" : "wrong access token for sandbox \(sandboxID)")
        }
        if record.paused { throw E2BError(.badGateway, "The sandbox \(sandboxID) is paused: connect to it to resume it") }
        return record
    }

    private func rpc(_ request: Request, record: E2BSandboxRecord, path: String) async throws -> Response {
        guard request.method == .post else { throw ConnectError(.unimplemented, "Connect RPCs are POSTs") }
        let parts = path.split(separator: "/")
        guard parts.count == 2 else { throw ConnectError(.unimplemented, "no procedure \(path)") }
        let (service, method) = (String(parts[0]), String(parts[1]))
        let context = E2BCallContext(service: self, record: record, request: request)
        switch service {
        case "process.Process": return try await E2BProcessService(context).call(method)
        case "filesystem.Filesystem": return try await E2BFilesystemService(context).call(method)
        default: throw ConnectError(.unimplemented, "no service \(service)")
        }
    }

    /// The workspace of a sandbox, loaded.
    func runtime(_ record: E2BSandboxRecord) async throws -> WorkspaceRuntime {
        try await manager.runtime(for: record.key)
    }
}

/// What one data-plane call needs: the service, the sandbox and the request.
struct E2BCallContext: Sendable {
    let service: E2BService
    let record: E2BSandboxRecord
    let request: Request

    /// The request's body, at most `limit` bytes (larger: `resource_exhausted`).
    func body(limit: Int = 4 << 20) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: limit)
        } catch {
            throw ConnectError(.resourceExhausted, "the request body is larger than \(limit) bytes")
        }
    }

    /// Whether the request is a Connect stream (`application/connect+json`), not a unary call.
    var isStreaming: Bool { request.headers[.contentType]?.lowercased().hasPrefix("application/connect+json") == true }
}

/// Compares two strings in time that depends only on their lengths.
func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
    let a = Array(lhs.utf8), b = Array(rhs.utf8)
    var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
    for index in 0..<max(a.count, b.count) {
        difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
    }
    return difference == 0 && a.count == b.count
}
