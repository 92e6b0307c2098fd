import AgentBoxAPI
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The changes a file watch reports as they happen; ends when the watched directory is gone or the server stops.
public typealias FileWatchStream = ServerSentEventStream<FileWatchEvent>

/// A workspace's files: `/v1/workspaces/{key}/fs/...`. None of these boot the workspace.
extension AgentBoxClient {
    /// A file's bytes, as a stream of chunks (bounded memory for any size).
    ///
    /// ```swift
    /// for try await chunk in try await client.readFile("demo", path: "/workspace/big.bin") { total += chunk.readableBytes }
    /// ```
    public func readFile(_ key: String, path: String) async throws -> HTTPClientResponse.Body {
        try await execute(makeRequest(.GET, Self.workspacePath(key) + "/fs/file", query: [("path", path)]), timeout: timeout).body
    }

    /// Copies a file's bytes into `handle` (a local file, a pipe, standard output) as they arrive; returns how
    /// many were written.
    ///
    /// ```swift
    /// try await client.readFile("demo", path: "/workspace/notes.txt", to: .standardOutput)
    /// ```
    @discardableResult
    public func readFile(_ key: String, path: String, to handle: FileHandle) async throws -> Int64 {
        try await readFile(key, path: path) { handle }
    }

    /// Copies a file's bytes into the handle that `destination` opens once the server has answered, so that an
    /// error (no such file) leaves nothing created or emptied locally; returns how many bytes were written.
    ///
    /// ```swift
    /// try await client.readFile("demo", path: "/workspace/report.pdf") {
    ///     FileManager.default.createFile(atPath: "report.pdf", contents: nil)
    ///     return FileHandle(forWritingAtPath: "report.pdf")!
    /// }
    /// ```
    @discardableResult
    public func readFile(_ key: String, path: String, to destination: () throws -> FileHandle) async throws -> Int64 {
        let body = try await readFile(key, path: path)
        return try await LocalBytes.write(body, to: try destination())
    }

    /// A file's bytes, collected (at most `limit`).
    public func readFileData(_ key: String, path: String, limit: Int = 64 << 20) async throws -> Data {
        Data(try await readFile(key, path: path).collect(upTo: limit).readableBytesView)
    }

    /// The first `maxBytes` bytes of a file, and its whole size, without reading the rest (for answers that must stay
    /// bounded, such as the MCP `read_file` tool of `agentbox mcp`).
    ///
    /// ```swift
    /// let head = try await client.readFileHead("demo", path: "/workspace/log.txt", maxBytes: 4096)
    /// ```
    public func readFileHead(_ key: String, path: String, maxBytes: Int) async throws -> (bytes: Data, size: Int64) {
        let response = try await execute(makeRequest(.GET, Self.workspacePath(key) + "/fs/file", query: [("path", path)]), timeout: timeout)
        var bytes = Data()
        for try await chunk in response.body {
            bytes.append(contentsOf: chunk.readableBytesView.prefix(maxBytes - bytes.count))
            // Leaving the loop drops the rest of the body (the connection is closed rather than drained).
            if bytes.count >= maxBytes { break }
        }
        let size = response.headers.first(name: "content-length").flatMap { Int64($0) } ?? Int64(bytes.count)
        return (bytes, size)
    }

    /// Writes a file from bytes (its parents are created).
    ///
    /// ```swift
    /// _ = try await client.writeFile("demo", path: "/workspace/hello.txt", data: Data("hello\n".utf8))
    /// ```
    public func writeFile(_ key: String, path: String, data: Data) async throws -> FileWriteResult {
        try await writeFile(key, path: path, body: .bytes(ByteBuffer(bytes: data)))
    }

    /// Writes a file streamed from `body` (for large files: bounded memory).
    public func writeFile(_ key: String, path: String, body: HTTPClientRequest.Body) async throws -> FileWriteResult {
        try await upload(.PUT, Self.workspacePath(key) + "/fs/file", query: [("path", path)], contentType: "application/octet-stream", body: body)
    }

    /// Writes a file from everything `handle` reads until its end (a local file, a pipe, standard input), read
    /// one 256 KiB chunk at a time as the server takes them.
    ///
    /// ```swift
    /// _ = try await client.writeFile("demo", path: "/workspace/data.csv", from: FileHandle(forReadingAtPath: "data.csv")!)
    /// ```
    public func writeFile(_ key: String, path: String, from handle: FileHandle) async throws -> FileWriteResult {
        try await writeFile(key, path: path, body: .stream(LocalBytes.Chunks(handle: handle), length: .unknown))
    }

    /// The entries of the directory `path` (with `recursive`, of its subdirectories too, down to `maxDepth`).
    public func listFiles(_ key: String, path: String, recursive: Bool = false, maxDepth: Int? = nil) async throws -> FileEntryList {
        var query = [("path", path)]
        if recursive { query.append(("recursive", "true")) }
        if let maxDepth { query.append(("maxDepth", String(maxDepth))) }
        return try await send(.GET, Self.workspacePath(key) + "/fs/entries", query: query)
    }

    /// An entry's metadata (a 404 error when there is none).
    public func stat(_ key: String, path: String) async throws -> FileStat {
        try await send(.GET, Self.workspacePath(key) + "/fs/stat", query: [("path", path)])
    }

    /// Whether an entry exists at `path`.
    public func exists(_ key: String, path: String) async throws -> Bool {
        let answer: FileExists = try await send(.GET, Self.workspacePath(key) + "/fs/exists", query: [("path", path)])
        return answer.exists
    }

    /// Creates a directory (with `recursive`, its parents too, and no error when it exists).
    public func makeDirectory(_ key: String, path: String, recursive: Bool = false) async throws {
        _ = try await perform(.POST, Self.workspacePath(key) + "/fs/mkdir", json: MkdirRequest(path: path, recursive: recursive))
    }

    /// Moves or renames an entry (with `overwrite`, replacing an existing destination).
    public func move(_ key: String, from: String, to: String, overwrite: Bool = false) async throws {
        _ = try await perform(.POST, Self.workspacePath(key) + "/fs/move", json: MoveRequest(from: from, to: to, overwrite: overwrite))
    }

    /// Deletes a file, a symlink or (with `recursive`) a directory and its contents.
    public func delete(_ key: String, path: String, recursive: Bool = false) async throws {
        var query = [("path", path)]
        if recursive { query.append(("recursive", "true")) }
        _ = try await perform(.DELETE, Self.workspacePath(key) + "/fs/entry", query: query)
    }

    /// Unpacks a tar stream under `path` in the workspace.
    public func uploadTar(_ key: String, path: String, body: HTTPClientRequest.Body) async throws -> UploadResult {
        try await upload(.POST, Self.workspacePath(key) + "/fs/upload", query: [("path", path)], contentType: "application/x-tar", body: body)
    }

    /// Unpacks under `path` in the workspace the tar stream that `handle` reads (such as the output of a local
    /// `tar -c`), read one chunk at a time as the server takes them.
    ///
    /// ```swift
    /// let tar = Process()  // tar -c -f - -C ./src .
    /// let pipe = Pipe()
    /// tar.standardOutput = pipe
    /// try tar.run()
    /// let result = try await client.uploadTar("demo", path: "/workspace/src", from: pipe.fileHandleForReading)
    /// ```
    public func uploadTar(_ key: String, path: String, from handle: FileHandle) async throws -> UploadResult {
        try await uploadTar(key, path: path, body: .stream(LocalBytes.Chunks(handle: handle), length: .unknown))
    }

    /// A tar stream of a directory's contents.
    public func archive(_ key: String, path: String) async throws -> HTTPClientResponse.Body {
        try await execute(makeRequest(.GET, Self.workspacePath(key) + "/fs/archive", query: [("path", path)]), timeout: timeout).body
    }

    /// Copies a tar stream of a directory's contents into the handle that `destination` opens once the server
    /// has answered (such as the input of a local `tar -x`, started only then); returns how many bytes were written.
    @discardableResult
    public func archive(_ key: String, path: String, to destination: () throws -> FileHandle) async throws -> Int64 {
        let body = try await archive(key, path: path)
        return try await LocalBytes.write(body, to: try destination())
    }

    /// Changes below the directory `path` as they happen (with `recursive`, in its subdirectories too). Returns
    /// once the server watches, so no change after this call is missed.
    ///
    /// ```swift
    /// for try await change in try await client.watch("demo", path: "/workspace", recursive: true) {
    ///     print(change.type, change.path)
    /// }
    /// ```
    public func watch(_ key: String, path: String, recursive: Bool = false) async throws -> FileWatchStream {
        var query = [("path", path)]
        if recursive { query.append(("recursive", "true")) }
        return FileWatchStream(body: try await openEventStream(Self.workspacePath(key) + "/fs/watch", query: query))
    }

    /// Sends a streamed body (a file, a tar) and decodes the answer; waits up to a day for large bodies.
    private func upload<Reply: Decodable>(
        _ method: HTTPMethod, _ path: String, query: [(String, String)], contentType: String, body: HTTPClientRequest.Body
    ) async throws -> Reply {
        var request = makeRequest(method, path, query: query)
        request.headers.add(name: "Content-Type", value: contentType)
        request.body = body
        let response = try await execute(request, timeout: .hours(24))
        return try decode(Reply.self, try await response.body.collect(upTo: 16 << 20))
    }
}

extension ServerSentEventStream where Element == FileWatchEvent {
    init(body: HTTPClientResponse.Body) {
        self.init(body: body) { event, decoder in try decoder.decode(FileWatchEvent.self, from: Data(event.data.utf8)) }
    }
}
