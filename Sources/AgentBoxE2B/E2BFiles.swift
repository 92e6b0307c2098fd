import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOFoundationEssentialsCompat
import NIOPosix

/// envd's plain-HTTP `/files`: downloads stream from the workspace's files, uploads stream into them.
extension E2BService {
    /// The most bytes a multipart upload may carry (a raw upload streams, unbounded but for the disk quota).
    static let maxMultipartBytes = 256 << 20

    func downloadFile(_ request: Request, record: E2BSandboxRecord) async throws -> Response {
        guard let raw = request.uri.queryParameters.get("path"), !raw.isEmpty else { throw E2BError(.badRequest, "path is required") }
        let path = try E2BPaths.inside(raw)
        guard E2BPaths.isPersistent(path) else {
            let data = try await E2BCommandFiles(runtime: try await runtime(record)).read(path)
            return Response(
                status: .ok, headers: [.contentType: "application/octet-stream"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
        }
        let files = try await runtime(record).files()
        let stat = try files.stat(path)
        guard stat.type != .directory else { throw E2BError(.badRequest, "\(raw) is a directory") }
        let (fd, size) = try files.openForReading(path)
        return Response(
            status: .ok, headers: [.contentType: "application/octet-stream", .contentLength: String(size)],
            body: ResponseBody { writer in
                defer { close(fd) }
                // One chunk in memory while the last is sent: the disk and the socket both stay busy.
                @Sendable func read() async throws -> ByteBuffer {
                    try await NIOThreadPool.singleton.runIfActive { try WorkspaceFiles.readChunk(fd, maximum: 1 << 20) }
                }
                var chunk = try await read()
                while chunk.readableBytes > 0 {
                    async let next = read()
                    try await writer.write(chunk)
                    chunk = try await next
                }
                try await writer.finish(nil)
            })
    }

    func uploadFiles(_ request: Request, record: E2BSandboxRecord) async throws -> Response {
        let query = request.uri.queryParameters.get("path").flatMap { $0.isEmpty ? nil : $0 }
        if let encoding = request.headers[.contentEncoding], encoding.lowercased() != "identity" {
            throw E2BError(.unsupportedMediaType, "Content-Encoding \(encoding) is not supported: upload without gzip")
        }
        let contentType = request.headers[.contentType] ?? "application/octet-stream"
        let runtime = try await runtime(record)
        let files = try runtime.files()
        var written: [[String: String]] = []
        if contentType.lowercased().hasPrefix("multipart/form-data") {
            guard let boundary = Multipart.boundary(contentType) else { throw E2BError(.badRequest, "multipart/form-data without a boundary") }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: Self.maxMultipartBytes)
            } catch {
                throw E2BError(.contentTooLarge, "a multipart upload may carry at most \(Self.maxMultipartBytes >> 20) MiB: upload larger files raw")
            }
            let parts = try Multipart.parts(Array(body.readableBytesView), boundary: boundary)
            guard !parts.isEmpty else { throw E2BError(.badRequest, "the upload holds no file") }
            for part in parts {
                guard let destination = part.filename.flatMap({ $0.isEmpty ? nil : $0 }) ?? query else {
                    throw E2BError(.badRequest, "a file part names no path (filename) and the request no ?path=")
                }
                let path = try E2BPaths.inside(destination)
                if E2BPaths.isPersistent(path) {
                    let content = ByteBuffer(bytes: part.content)
                    _ = try await files.write(path, chunks: AsyncThrowingStream<ByteBuffer, any Error> { $0.yield(content); $0.finish() })
                } else {
                    try await E2BCommandFiles(runtime: runtime).write(path, Data(part.content))
                }
                written.append(Self.writeInfo(path))
            }
        } else {
            guard let query else { throw E2BError(.badRequest, "path is required") }
            let path = try E2BPaths.inside(query)
            if E2BPaths.isPersistent(path) {
                _ = try await files.write(path, chunks: request.body)
            } else {
                let body: ByteBuffer
                do {
                    body = try await request.body.collect(upTo: E2BCommandFiles.maxBytes)
                } catch {
                    throw E2BError(.contentTooLarge, "files outside /home/user and /workspace are written \(E2BCommandFiles.maxBytes >> 20) MiB at most at once")
                }
                try await E2BCommandFiles(runtime: runtime).write(path, Data(buffer: body))
            }
            written.append(Self.writeInfo(path))
        }
        return E2BJSON.response(written)
    }

    private static func writeInfo(_ path: WorkspacePath) -> [String: String] {
        let shown = E2BPaths.outside(path.description)
        return ["name": shown.split(separator: "/").last.map(String.init) ?? shown, "type": "file", "path": shown]
    }
}

/// Just enough of `multipart/form-data` for envd's uploads: each part's filename and content.
enum Multipart {
    struct Part {
        var filename: String?
        var content: [UInt8]
    }

    static func boundary(_ contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            let value = pair[1].hasPrefix("\"") && pair[1].hasSuffix("\"") && pair[1].count >= 2 ? String(pair[1].dropFirst().dropLast()) : pair[1]
            return (1...200).contains(value.utf8.count) ? value : nil
        }
        return nil
    }

    static func parts(_ body: [UInt8], boundary: String) throws -> [Part] {
        let delimiter = Array("--\(boundary)".utf8)
        let separator = Array("\r\n\r\n".utf8)
        guard var position = find(delimiter, in: body, from: 0) else { throw E2BError(.badRequest, "the multipart body has no boundary") }
        var parts: [Part] = []
        while true {
            position += delimiter.count
            // `--` after a delimiter ends the body.
            if position + 1 < body.count, body[position] == UInt8(ascii: "-"), body[position + 1] == UInt8(ascii: "-") { break }
            guard let headersEnd = find(separator, in: body, from: position) else { throw E2BError(.badRequest, "a multipart part has no headers' end") }
            let headers = String(decoding: body[position..<headersEnd], as: UTF8.self)
            let contentStart = headersEnd + separator.count
            guard let next = find(Array("\r\n".utf8) + delimiter, in: body, from: contentStart) else {
                throw E2BError(.badRequest, "a multipart part does not end")
            }
            parts.append(Part(filename: filename(headers), content: Array(body[contentStart..<next])))
            position = next + 2
            if parts.count > 10_000 { throw E2BError(.badRequest, "too many parts") }
        }
        return parts
    }

    /// The `filename` of a part's `Content-Disposition`.
    static func filename(_ headers: String) -> String? {
        for line in headers.split(whereSeparator: \.isNewline) where line.lowercased().hasPrefix("content-disposition:") {
            guard let range = line.range(of: "filename=\"") else { return nil }
            let rest = line[range.upperBound...]
            guard let end = rest.firstIndex(of: "\"") else { return nil }
            return String(rest[..<end])
        }
        return nil
    }

    /// Where `needle` first occurs in `haystack` at or after `start`: a scan for its first byte, then a compare.
    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, start >= 0, haystack.count - start >= needle.count else { return nil }
        let first = needle[0]
        var index = start
        let last = haystack.count - needle.count
        while index <= last {
            guard let found = haystack[index...last].firstIndex(of: first) else { return nil }
            if haystack[found..<(found + needle.count)].elementsEqual(needle) { return found }
            index = found + 1
        }
        return nil
    }
}
