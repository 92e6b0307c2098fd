import AgentBox
import AgentBoxAPI
import AgentBoxSandbox
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import Synchronization

/// The file routes: read, write, list, stat, exists, mkdir, move, delete, tar upload and archive.
///
/// Reads, listings and writes go straight to the workspace's files on the host and never boot it; upload and
/// archive run tar inside the workspace and boot it.
struct FileController {
    let manager: WorkspaceManager

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        let pathParameter = APIOperation.Parameter(
            name: "path", location: .query, schema: Schema.string,
            description: "A path in the workspace's view: absolute, or relative to /workspace.", required: true)
        let recursive = APIOperation.Parameter(name: "recursive", location: .query, schema: Schema.boolean, description: "Descend into directories", required: false)
        let notFound = APIOperation.Reply(status: 404, description: "No such workspace or path", body: .init(contentType: "application/problem+json", schema: Schema.ref("Problem")))
        let forbidden = APIOperation.Reply(status: 403, description: "The path leads outside the workspace", body: .init(contentType: "application/problem+json", schema: Schema.ref("Problem")))
        let problems = [notFound, forbidden] + Schema.problemReplies
        let binary = APIOperation.Body(contentType: "application/octet-stream", schema: ["type": "string", "format": "binary"])
        let tar = APIOperation.Body(contentType: "application/x-tar", schema: ["type": "string", "format": "binary"])

        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/fs/file", operationID: "readFile", summary: "A file's bytes (never boots)",
                tag: "files", parameters: [Schema.workspaceKey, pathParameter], replies: [.init(status: 200, description: "The file", body: binary)] + problems)
        ) { request, context in
            let files = try await Self.files(manager, context)
            let (fd, size) = try files.openForReading(try Self.path(request, "path"))
            return Response(
                status: .ok, headers: [.contentType: "application/octet-stream", .contentLength: String(size)],
                body: ResponseBody { writer in
                    defer { close(fd) }
                    // Reads 1 MiB at a time on the thread pool, the next while the last is being sent: at most two
                    // chunks in memory, and the disk and the socket both stay busy.
                    @Sendable func read() async throws -> ByteBuffer {
                        try await NIOThreadPool.singleton.runIfActive { try WorkspaceFiles.readChunk(fd, maximum: 1 << 20) }
                    }
                    var chunk = try await read()
                    while chunk.readableBytes > 0 {
                        async let following = read()
                        try await writer.write(chunk)
                        chunk = try await following
                    }
                    try await writer.finish(nil)
                })
        }
        registry.add(
            APIOperation(
                method: .put, path: "/v1/workspaces/{key}/fs/file", operationID: "writeFile",
                summary: "Write a file from the raw body (parents created; replaced atomically; never boots)", tag: "files",
                parameters: [Schema.workspaceKey, pathParameter], requestBody: binary,
                replies: [.init(status: 200, description: "Written and on disk", body: Schema.json("FileWriteResult"))] + problems)
        ) { request, context in
            let files = try await Self.files(manager, context)
            let path = try Self.path(request, "path")
            let written = try await files.write(path, chunks: request.body)
            return FileWriteResult(path: path.description, bytesWritten: written)
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/fs/entries", operationID: "listFiles",
                summary: "A directory's entries, sorted by name (never boots)", tag: "files",
                parameters: [
                    Schema.workspaceKey, pathParameter, recursive,
                    .init(name: "maxDepth", location: .query, schema: Schema.integer, description: "How deep to descend (default 1, or 32 with recursive)", required: false),
                ],
                replies: [.init(status: 200, description: "The entries", body: Schema.json("FileEntryList"))] + problems)
        ) { request, context in
            let files = try await Self.files(manager, context)
            let deep = try ProcessController.flag(request, "recursive")
            var depth = deep ? 32 : 1
            if let text = request.uri.queryParameters.get("maxDepth") {
                guard let value = Int(text), (1...64).contains(value) else { throw ProblemError(.badRequest, "maxDepth must be 1...64, not '\(text)'") }
                depth = value
            }
            return try files.list(try Self.path(request, "path"), maxDepth: depth)
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/fs/stat", operationID: "statFile", summary: "An entry's metadata (never boots)",
                tag: "files", parameters: [Schema.workspaceKey, pathParameter],
                replies: [.init(status: 200, description: "The metadata", body: Schema.json("FileStat"))] + problems)
        ) { request, context in
            try await Self.files(manager, context).stat(try Self.path(request, "path"))
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/fs/exists", operationID: "fileExists", summary: "Whether a path exists (never boots)",
                tag: "files", parameters: [Schema.workspaceKey, pathParameter],
                replies: [.init(status: 200, description: "The answer", body: Schema.json("FileExists"))] + problems)
        ) { request, context in
            FileExists(exists: try await Self.files(manager, context).exists(try Self.path(request, "path")))
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/fs/mkdir", operationID: "makeDirectory", summary: "Create a directory (never boots)",
                tag: "files", parameters: [Schema.workspaceKey], requestBody: Schema.json("MkdirRequest"),
                replies: [.init(status: 204, description: "Created"), .init(status: 409, description: "It exists")] + problems)
        ) { request, context in
            let body = try await request.decode(as: MkdirRequest.self, context: context)
            try await Self.files(manager, context).makeDirectory(try WorkspacePath(body.path), recursive: body.recursive ?? false)
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/fs/move", operationID: "moveFile", summary: "Rename or move an entry (never boots)",
                tag: "files", parameters: [Schema.workspaceKey], requestBody: Schema.json("MoveRequest"),
                replies: [.init(status: 204, description: "Moved"), .init(status: 409, description: "The destination exists")] + problems)
        ) { request, context in
            let body = try await request.decode(as: MoveRequest.self, context: context)
            try await Self.files(manager, context).move(
                from: try WorkspacePath(body.from), to: try WorkspacePath(body.to), overwrite: body.overwrite ?? false)
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .delete, path: "/v1/workspaces/{key}/fs/entry", operationID: "deleteFile",
                summary: "Delete an entry; a non-empty directory only with recursive=true (never boots)", tag: "files",
                parameters: [Schema.workspaceKey, pathParameter, recursive],
                replies: [.init(status: 204, description: "Deleted"), .init(status: 409, description: "A non-empty directory without recursive")] + problems)
        ) { request, context in
            try await Self.files(manager, context).delete(try Self.path(request, "path"), recursive: try ProcessController.flag(request, "recursive"))
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/fs/watch", operationID: "watchFiles",
                summary: "Server-Sent Events of changes below a directory: created, modified, deleted, moved, overflow (never boots)",
                tag: "files",
                parameters: [
                    Schema.workspaceKey, pathParameter, recursive,
                ],
                replies: [
                    .init(status: 200, description: "An endless stream; each event's data is a FileWatchEvent", body: .init(contentType: "text/event-stream", schema: Schema.ref("FileWatchEvent"))),
                    .init(status: 409, description: "The workspace has the most open watches it may have", body: Schema.problem),
                ] + problems, access: .stream)
        ) { request, context in
            let runtime = try await manager.runtime(for: WorkspaceController.key(context))
            let events = try runtime.watch(try Self.path(request, "path"), recursive: try ProcessController.flag(request, "recursive"))
            let encoder = AgentBoxJSON.makeEncoder()
            let counter = SSECounter()
            return ServerSentEvents.response(events, until: context.revocation) { event in
                ServerSentEvents.frame(id: counter.next(), event: event.type.rawValue, data: try encoder.encode(event))
            }
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/fs/upload", operationID: "uploadTar",
                summary: "Unpack a tar body under path, inside the workspace (boots it)", tag: "files",
                parameters: [Schema.workspaceKey, pathParameter], requestBody: tar,
                replies: [.init(status: 200, description: "Unpacked", body: Schema.json("UploadResult"))] + problems)
        ) { request, context in
            let runtime = try await manager.runtime(for: WorkspaceController.key(context))
            return try await runtime.upload(to: try Self.path(request, "path"), tar: request.body)
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/fs/archive", operationID: "archiveDirectory",
                summary: "A tar of a directory's contents, made inside the workspace (boots it)", tag: "files",
                parameters: [Schema.workspaceKey, pathParameter], replies: [.init(status: 200, description: "The archive", body: tar)] + problems)
        ) { request, context in
            let runtime = try await manager.runtime(for: WorkspaceController.key(context))
            let process = try await runtime.archive(try Self.path(request, "path"))
            return Response(
                status: .ok, headers: [.contentType: "application/x-tar"],
                body: ResponseBody { writer in
                    // tar's messages are drained so it never blocks on them; the archive streams with backpressure.
                    async let errors: Void = { try? await process.stderr.executeThenClose { inbound, _ in for try await _ in inbound {} } }()
                    do {
                        try await process.stdout.executeThenClose { inbound, _ in
                            for try await chunk in inbound { try await writer.write(chunk) }
                        }
                    } catch {
                        process.killTree()
                        throw error
                    }
                    await errors
                    try await writer.finish(nil)
                })
        }
    }

    static func files(_ manager: WorkspaceManager, _ context: AgentBoxRequestContext) async throws -> WorkspaceFiles {
        try await manager.runtime(for: WorkspaceController.key(context)).files()
    }

    static func path(_ request: Request, _ name: String) throws -> WorkspacePath {
        guard let raw = request.uri.queryParameters.get(name) else { throw ProblemError(.badRequest, "missing query parameter '\(name)'") }
        return try WorkspacePath(raw)
    }
}

/// Numbers the frames of one stream that has no sequence of its own.
final class SSECounter: Sendable {
    private let value = Atomic<Int64>(0)
    func next() -> Int64 { value.add(1, ordering: .relaxed).newValue }
}

extension FileEntryList: ResponseEncodable {}
extension FileStat: ResponseEncodable {}
extension FileExists: ResponseEncodable {}
extension FileWriteResult: ResponseEncodable {}
extension UploadResult: ResponseEncodable {}
