import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOFoundationEssentialsCompat

/// The file watches that sync clients poll (`CreateWatcher`, `GetWatcherEvents`, `RemoveWatcher`): each a task
/// reading the library's watch into a bounded queue (the oldest events go when a client does not poll).
actor E2BWatchers {
    struct Watch {
        var sandbox: String
        var task: Task<Void, Never>?
        var events: [[String: String]] = []
    }

    private var watches: [String: Watch] = [:]
    static let queueCapacity = 4096

    /// Registers a watch before its reader starts, so that no early event finds it missing.
    func reserve(id: String, sandbox: String) {
        watches[id] = Watch(sandbox: sandbox)
    }

    func attach(_ task: Task<Void, Never>, to id: String) {
        guard watches[id] != nil else { return task.cancel() }
        watches[id]?.task = task
    }

    func append(_ event: [String: String], to id: String) {
        guard var watch = watches[id] else { return }
        if watch.events.count >= Self.queueCapacity { watch.events.removeFirst(watch.events.count - Self.queueCapacity + 1) }
        watch.events.append(event)
        watches[id] = watch
    }

    func take(id: String, sandbox: String) -> [[String: String]]? {
        guard var watch = watches[id], watch.sandbox == sandbox else { return nil }
        let events = watch.events
        watch.events = []
        watches[id] = watch
        return events
    }

    func remove(id: String, sandbox: String) -> Bool {
        guard let watch = watches[id], watch.sandbox == sandbox else { return false }
        watch.task?.cancel()
        watches[id] = nil
        return true
    }

    func forget(sandbox: String) {
        for (id, watch) in watches where watch.sandbox == sandbox {
            watch.task?.cancel()
            watches[id] = nil
        }
    }
}

/// envd's `filesystem.Filesystem` service over the library's `WorkspaceFiles` and file watches.
struct E2BFilesystemService {
    let context: E2BCallContext

    init(_ context: E2BCallContext) { self.context = context }

    struct PathRequest: Decodable {
        var path: String?
        var depth: ProtoInt?
        var recursive: Bool?
    }

    struct MoveRequest: Decodable {
        var source: String?
        var destination: String?
    }

    struct WatcherRequest: Decodable {
        var watcherId: String?
    }

    func call(_ method: String) async throws -> Response {
        switch method {
        case "Stat": return try await stat()
        case "ListDir": return try await listDir()
        case "MakeDir": return try await makeDir()
        case "Move": return try await move()
        case "Remove": return try await remove()
        case "CreateWatcher": return try await createWatcher()
        case "GetWatcherEvents": return try await watcherEvents()
        case "RemoveWatcher": return try await removeWatcher()
        case "WatchDir": return try await watchDir()
        default: throw ConnectError(.unimplemented, "filesystem.Filesystem has no method \(method)")
        }
    }

    private func message<T: Decodable>(_ type: T.Type) async throws -> T {
        let body = try await context.body()
        let data = context.isStreaming ? try ConnectEnvelope.single(body) : Data(buffer: body)
        do {
            return try E2BJSON.decode(type, from: data)
        } catch {
            throw ConnectError(.invalidArgument, error.message)
        }
    }

    private func path(_ raw: String?) throws -> WorkspacePath {
        guard let raw, !raw.isEmpty else { throw ConnectError(.invalidArgument, "path is required") }
        return try E2BPaths.inside(raw)
    }

    private func files() async throws -> WorkspaceFiles {
        try await context.service.runtime(context.record).files()
    }

    private func commandFiles() async throws -> E2BCommandFiles {
        E2BCommandFiles(runtime: try await context.service.runtime(context.record))
    }

    /// The entry at `path`, from the persistent files or from inside the sandbox.
    private func stat(_ path: WorkspacePath) async throws -> FileStat {
        E2BPaths.isPersistent(path) ? try await files().stat(path) : try await commandFiles().stat(path)
    }

    private static func ok(_ object: [String: Any]) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: ConnectStream.json(object))))
    }

    /// envd's EntryInfo.
    static func entry(path: String, type: FileType, size: Int64, mode: Int?, modifiedAt: Date, target: String?) -> [String: Any] {
        let shown = E2BPaths.outside(path)
        let name = shown.split(separator: "/").last.map(String.init) ?? "/"
        let mode = mode ?? (type == .directory ? 0o755 : 0o644)
        var entry: [String: Any] = [
            "name": name, "path": shown, "size": size, "mode": mode, "permissions": permissions(type: type, mode: mode),
            "owner": "user", "group": "user", "modifiedTime": E2BJSON.time(modifiedAt),
            "type": type == .directory ? "FILE_TYPE_DIRECTORY" : type == .symlink ? "FILE_TYPE_SYMLINK" : "FILE_TYPE_FILE",
        ]
        if let target { entry["symlinkTarget"] = E2BPaths.outside(target) }
        return entry
    }

    /// `drwxr-xr-x`.
    static func permissions(type: FileType, mode: Int) -> String {
        let kind = type == .directory ? "d" : type == .symlink ? "l" : "-"
        let letters = Array("rwxrwxrwx")
        return kind + String((0..<9).map { mode & (0o400 >> $0) != 0 ? letters[$0] : "-" })
    }

    private static func entry(_ stat: FileStat) -> [String: Any] {
        entry(path: stat.path, type: stat.type, size: stat.size, mode: stat.mode, modifiedAt: stat.modifiedAt, target: stat.target)
    }

    private func stat() async throws -> Response {
        let request = try await message(PathRequest.self)
        return Self.ok(["entry": Self.entry(try await stat(try path(request.path)))])
    }

    private func listDir() async throws -> Response {
        let request = try await message(PathRequest.self)
        let depth = Int(clamping: request.depth?.value ?? 1)
        guard (0...64).contains(depth) else { throw ConnectError(.invalidArgument, "depth must be 1...64") }
        let directory = try path(request.path)
        guard E2BPaths.isPersistent(directory) else {
            let entries = try await commandFiles().list(directory, depth: max(1, depth)).map {
                Self.entry(path: $0.path, type: $0.type, size: $0.size, mode: $0.mode, modifiedAt: $0.modifiedAt, target: $0.target)
            }
            return Self.ok(["entries": entries])
        }
        let files = try await files()
        guard try files.stat(directory).type == .directory else { throw ConnectError(.invalidArgument, "\(request.path ?? "") is not a directory") }
        let list = try files.list(directory, maxDepth: max(1, depth))
        let entries = list.items.map {
            Self.entry(path: $0.path, type: $0.type, size: $0.size, mode: nil, modifiedAt: $0.modifiedAt, target: $0.target)
        }
        return Self.ok(["entries": entries])
    }

    private func makeDir() async throws -> Response {
        let request = try await message(PathRequest.self)
        let directory = try path(request.path)
        guard E2BPaths.isPersistent(directory) else {
            try await commandFiles().makeDirectory(directory)
            return Self.ok(["entry": Self.entry(try await commandFiles().stat(directory))])
        }
        let files = try await files()
        if try files.exists(directory) { throw ConnectError(.alreadyExists, "\(request.path ?? "") already exists") }
        try files.makeDirectory(directory, recursive: true)
        return Self.ok(["entry": Self.entry(try files.stat(directory))])
    }

    private func move() async throws -> Response {
        let request = try await message(MoveRequest.self)
        let source = try path(request.source)
        let destination = try path(request.destination)
        if E2BPaths.isPersistent(source), E2BPaths.isPersistent(destination) {
            try await files().move(from: source, to: destination, overwrite: true)
        } else {
            try await commandFiles().move(source, to: destination)
        }
        return Self.ok(["entry": Self.entry(try await stat(destination))])
    }

    private func remove() async throws -> Response {
        let request = try await message(PathRequest.self)
        let target = try path(request.path)
        if E2BPaths.isPersistent(target) {
            try await files().delete(target, recursive: true)
        } else {
            try await commandFiles().remove(target)
        }
        return Self.ok([:])
    }

    /// A library watch event as envd's FilesystemEvent: the name relative to the watched directory.
    static func event(_ event: FileWatchEvent, watched: WorkspacePath) -> [[String: String]] {
        let prefix = watched.description == "/" ? "/" : watched.description + "/"
        func name(_ path: String) -> String { path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : E2BPaths.outside(path) }
        switch event.type {
        case .created: return [["name": name(event.path), "type": "EVENT_TYPE_CREATE"]]
        case .modified: return [["name": name(event.path), "type": "EVENT_TYPE_WRITE"]]
        case .deleted: return [["name": name(event.path), "type": "EVENT_TYPE_REMOVE"]]
        case .moved:
            return (event.from.map { [["name": name($0), "type": "EVENT_TYPE_RENAME"]] } ?? []) + [["name": name(event.path), "type": "EVENT_TYPE_CREATE"]]
        case .overflow: return []
        }
    }

    /// Watches reach the persistent files only (they are inotify watches of the host's).
    private func watchable(_ raw: String?) throws -> WorkspacePath {
        let directory = try path(raw)
        guard E2BPaths.isPersistent(directory) else {
            throw ConnectError(.invalidArgument, "watch_dir watches directories under /home/user and /workspace, not \(raw ?? "")")
        }
        return directory
    }

    private func createWatcher() async throws -> Response {
        let request = try await message(PathRequest.self)
        let directory = try watchable(request.path)
        let runtime = try await context.service.runtime(context.record)
        guard try runtime.files().stat(directory).type == .directory else {
            throw ConnectError(.invalidArgument, "\(request.path ?? "") is not a directory")
        }
        let events = try runtime.watch(directory, recursive: request.recursive ?? false)
        let id = "w_" + E2BSandboxes.randomString(16)
        let watchers = context.service.watchers
        await watchers.reserve(id: id, sandbox: context.record.sandboxID)
        let task = Task {
            for await event in events {
                for item in Self.event(event, watched: directory) { await watchers.append(item, to: id) }
            }
        }
        await watchers.attach(task, to: id)
        return Self.ok(["watcherId": id])
    }

    private func watcherEvents() async throws -> Response {
        let request = try await message(WatcherRequest.self)
        guard let id = request.watcherId, let events = await context.service.watchers.take(id: id, sandbox: context.record.sandboxID) else {
            throw ConnectError(.notFound, "watcher \(request.watcherId ?? "") not found")
        }
        return Self.ok(["events": events])
    }

    private func removeWatcher() async throws -> Response {
        let request = try await message(WatcherRequest.self)
        guard let id = request.watcherId, await context.service.watchers.remove(id: id, sandbox: context.record.sandboxID) else {
            throw ConnectError(.notFound, "watcher \(request.watcherId ?? "") not found")
        }
        return Self.ok([:])
    }

    private func watchDir() async throws -> Response {
        guard context.isStreaming else { throw ConnectError(.invalidArgument, "WatchDir is a server stream: send application/connect+json") }
        let request = try await message(PathRequest.self)
        let directory = try watchable(request.path)
        let runtime = try await context.service.runtime(context.record)
        guard try runtime.files().stat(directory).type == .directory else {
            throw ConnectError(.invalidArgument, "\(request.path ?? "") is not a directory")
        }
        let events = try runtime.watch(directory, recursive: request.recursive ?? false)
        return ConnectStream.response(
            request: context.request, keepalive: ConnectStream.json(["keepalive": [String: Any]()]),
            activity: (context.service.sandboxes, context.record.sandboxID)
        ) { send in
            await send(ConnectStream.json(["start": [String: Any]()]))
            for await event in events {
                for item in Self.event(event, watched: directory) { await send(ConnectStream.json(["filesystem": item])) }
            }
            return nil
        }
    }
}
