import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small S3 client: the operations AgentBox needs, each request signed with ``SigV4Signer``, path-style URLs.
///
/// ```swift
/// let s3 = S3Client(configuration: try S3Configuration(url: "s3://KEY:SECRET@127.0.0.1:8333/checkpoints"))
/// try await s3.createBucket()
/// try await s3.putObject("a/b.txt", data: Data("hello".utf8))
/// let page = try await s3.listObjectsV2(prefix: "a/")
/// ```
/// Every error answer becomes a ``BlobError`` carrying the HTTP status and S3's `Code` (`.notFound` for 404,
/// `.accessDenied` for 403).
public struct S3Client: Sendable {
    public let configuration: S3Configuration
    let signer: SigV4Signer
    let http: HTTPClient
    let logger: Logger?

    /// - Parameters:
    ///   - httpClient: the client requests go through; AsyncHTTPClient's shared one by default (nothing to shut down).
    public init(configuration: S3Configuration, httpClient: HTTPClient = .shared, logger: Logger? = nil) {
        self.configuration = configuration
        self.signer = SigV4Signer(
            accessKey: configuration.accessKey, secretKey: configuration.secretKey, region: configuration.region, service: "s3")
        self.http = httpClient
        self.logger = logger
    }

    /// What a HEAD or a listing says of an object.
    public struct ObjectInfo: Sendable, Equatable {
        public var key: String
        public var size: Int64
        public var etag: String?
    }

    /// One page of ``listObjectsV2(prefix:continuationToken:maxKeys:)``.
    public struct ListPage: Sendable {
        public var objects: [ObjectInfo]
        /// The token of the next page; nil on the last one.
        public var nextContinuationToken: String?
    }

    // MARK: Buckets

    /// Creates the bucket; one that already exists and is ours is fine.
    public func createBucket() async throws {
        var body: ByteBuffer?
        if configuration.region != "us-east-1" {
            body = ByteBuffer(
                string: "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(configuration.region.xmlEscaped)</LocationConstraint></CreateBucketConfiguration>"
            )
        }
        do {
            _ = try await send("PUT", key: nil, body: body.map { .bytes($0) } ?? .none)
        } catch let error as BlobError where error.s3Code == "BucketAlreadyOwnedByYou" {
            return
        }
    }

    // MARK: Objects

    /// Puts an object from bytes in memory.
    public func putObject(_ key: String, data: Data, contentType: String? = nil) async throws {
        var headers: [(String, String)] = []
        if let contentType { headers.append(("content-type", contentType)) }
        _ = try await send("PUT", key: key, headers: headers, body: .bytes(ByteBuffer(bytes: data)))
    }

    /// Puts an object streamed from a file, never holding it in memory.
    ///
    /// The request is signed with the file's SHA-256: `sha256` when the caller knows it (a content address), else
    /// one first pass over the file computes it. The bytes sent are hashed again on the way, and a difference (the
    /// file changed in between) aborts the upload with `.integrity`, so the object is never created with them.
    public func putObject(_ key: String, contentsOf file: URL, sha256: String? = nil) async throws {
        let path = file.path
        let expected: (sha256: String, size: Int64)
        if let sha256 {
            let size = try await NIOThreadPool.singleton.runIfActive { try LocalFile.openForReading(path).size() }
            expected = (sha256, size)
        } else {
            expected = try await NIOThreadPool.singleton.runIfActive { try LocalFile.openForReading(path).digestBlocking() }
        }
        let body = HTTPClientRequest.Body.stream(FileChunks(path: path, expected: expected), length: .known(expected.size))
        _ = try await send("PUT", key: key, body: .stream(body, payloadHash: expected.sha256, size: expected.size))
    }

    /// Gets an object into memory; `.tooLarge` past `maxBytes`, `.notFound` when there is none.
    public func getObject(_ key: String, maxBytes: Int) async throws -> Data {
        let response = try await send("GET", key: key, collectBody: false)
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > maxBytes {
            throw BlobError(.tooLarge, "\(key) has \(length) bytes, more than \(maxBytes)")
        }
        do {
            let buffer = try await response.body.collect(upTo: maxBytes)
            return Data(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw BlobError(.tooLarge, "\(key) has more than \(maxBytes) bytes")
        }
    }

    /// Streams an object into a file (created, or truncated), chunk by chunk; returns its size and SHA-256.
    @discardableResult
    public func getObject(_ key: String, into file: URL) async throws -> (size: Int64, sha256: String) {
        let response = try await send("GET", key: key, collectBody: false)
        let path = file.path
        let output = try await NIOThreadPool.singleton.runIfActive { try LocalFile.create(path) }
        var hasher = SHA256()
        var size: Int64 = 0
        for try await chunk in response.body {
            chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            size += Int64(chunk.readableBytes)
            try await output.writeChunk(chunk)
        }
        if let length = response.headers.first(name: "content-length").flatMap(Int64.init), length != size {
            throw BlobError(.integrity, "\(key): \(size) bytes received of \(length)")
        }
        return (size, Hex.encode(hasher.finalize()))
    }

    /// The object's size and ETag, or nil when there is none.
    public func headObject(_ key: String) async throws -> ObjectInfo? {
        do {
            let response = try await send("HEAD", key: key)
            let size = response.headers.first(name: "content-length").flatMap(Int64.init) ?? 0
            return ObjectInfo(key: key, size: size, etag: response.headers.first(name: "etag"))
        } catch let error as BlobError where error.code == .notFound {
            return nil
        }
    }

    /// Deletes an object; S3 answers success for a key that does not exist, and so does this.
    public func deleteObject(_ key: String) async throws {
        do {
            _ = try await send("DELETE", key: key)
        } catch let error as BlobError where error.code == .notFound && error.s3Code != "NoSuchBucket" {
            return
        }
    }

    /// One page (at most `maxKeys`, S3's cap being 1,000) of the objects whose keys start with `prefix`, in key order.
    public func listObjectsV2(prefix: String, continuationToken: String? = nil, maxKeys: Int = 1000) async throws -> ListPage {
        var query: [(String, String)] = [("list-type", "2"), ("prefix", prefix), ("max-keys", String(maxKeys))]
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        let response = try await send("GET", key: nil, query: query)
        let root = try S3XMLElement.parse(response.data)
        guard root.name == "ListBucketResult" else {
            throw BlobError(.invalidResponse, "expected ListBucketResult, got \(root.name)")
        }
        let objects = try root.all("Contents").map { entry -> ObjectInfo in
            guard let key = entry.text("Key") else { throw BlobError(.invalidResponse, "a listing entry without a Key") }
            return ObjectInfo(key: key, size: entry.text("Size").flatMap(Int64.init) ?? 0, etag: entry.text("ETag"))
        }
        let truncated = root.text("IsTruncated") == "true"
        let next = root.text("NextContinuationToken").flatMap { $0.isEmpty ? nil : $0 }
        if truncated && next == nil { throw BlobError(.invalidResponse, "a truncated listing without NextContinuationToken") }
        return ListPage(objects: objects, nextContinuationToken: truncated ? next : nil)
    }

    /// Deletes up to 1,000 keys in one request (S3's `DeleteObjects`); a key that does not exist counts as deleted.
    public func deleteObjects(_ keys: [String]) async throws {
        guard !keys.isEmpty else { return }
        precondition(keys.count <= 1000, "DeleteObjects takes at most 1,000 keys")
        var xml = "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
        for key in keys { xml += "<Object><Key>\(key.xmlEscaped)</Key></Object>" }
        xml += "</Delete>"
        let data = Data(xml.utf8)
        let md5 = Data(Insecure.MD5.hash(data: data)).base64EncodedString()
        let response = try await send(
            "POST", key: nil, query: [("delete", "")], headers: [("content-md5", md5), ("content-type", "application/xml")],
            body: .bytes(ByteBuffer(bytes: data)))
        let root = try S3XMLElement.parse(response.data)
        if let failure = root.all("Error").first(where: { $0.text("Code") != "NoSuchKey" }) {
            throw BlobError(
                .server, "could not delete \(failure.text("Key") ?? "?"): \(failure.text("Message") ?? "")", httpStatus: 200,
                s3Code: failure.text("Code"))
        }
    }

    /// Deletes every object whose key starts with `prefix`, a page (≤ 1,000 keys) per request; returns how many.
    @discardableResult
    public func deleteObjects(prefix: String) async throws -> Int {
        var deleted = 0
        // Always the first page: what was deleted no longer lists, so no continuation token is needed.
        while true {
            let page = try await listObjectsV2(prefix: prefix)
            if page.objects.isEmpty { return deleted }
            try await deleteObjects(page.objects.map(\.key))
            deleted += page.objects.count
            if page.nextContinuationToken == nil { return deleted }
        }
    }

    // MARK: Requests

    enum RequestBody {
        case none
        case bytes(ByteBuffer)
        case stream(HTTPClientRequest.Body, payloadHash: String, size: Int64)
    }

    struct Answer {
        var headers: HTTPHeaders
        var data: Data
        var body: HTTPClientResponse.Body
    }

    /// The path of a key (or of the bucket), unencoded: `/bucket/key`.
    func path(_ key: String?) -> String {
        guard let key else { return "/\(configuration.bucket)" }
        return "/\(configuration.bucket)/\(key)"
    }

    /// Signs and sends one request. A non-2xx answer throws; otherwise the body is collected (error and XML
    /// answers are small) unless `collectBody` is false, for a GET that streams.
    func send(
        _ method: String, key: String?, query: [(String, String)] = [], headers extra: [(String, String)] = [],
        body: RequestBody = .none, collectBody: Bool = true
    ) async throws -> Answer {
        if let key { try Self.validate(key) }
        let now = Date()
        let payloadHash: String
        var length: Int64 = 0
        var requestBody: HTTPClientRequest.Body?
        switch body {
        case .none:
            payloadHash = SigV4Signer.emptyPayloadHash
        case .bytes(let buffer):
            payloadHash = buffer.withUnsafeReadableBytes { Hex.encode(SHA256.hash(data: $0)) }
            length = Int64(buffer.readableBytes)
            requestBody = .bytes(buffer)
        case .stream(let stream, let hash, let size):
            payloadHash = hash
            length = size
            requestBody = stream
        }
        var signed: [(String, String)] = [
            ("host", configuration.hostHeader), ("x-amz-date", SigV4Signer.amzDate(now)), ("x-amz-content-sha256", payloadHash),
        ]
        signed += extra
        let canonicalPath = SigV4Signer.canonicalURI(path(key))
        let queryString = SigV4Signer.canonicalQuery(query)
        var request = HTTPClientRequest(
            url: configuration.endpoint.absoluteString.trimmingSuffix("/") + canonicalPath + (queryString.isEmpty ? "" : "?" + queryString))
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in signed { request.headers.add(name: name, value: value) }
        request.headers.add(
            name: "authorization",
            value: signer.authorization(method: method, path: path(key), query: query, headers: signed, payloadHash: payloadHash, date: now))
        if let requestBody {
            request.body = requestBody
        } else if method == "PUT" || method == "POST" {
            request.body = .bytes(ByteBuffer())
        }
        // A generous deadline that grows with the body: 60 s, plus a second per 4 MiB.
        let timeout = TimeAmount.seconds(60 + length / (4 << 20))
        let response = try await http.execute(request, timeout: timeout, logger: logger)
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            var data = Data()
            if method != "HEAD", let buffer = try? await response.body.collect(upTo: 1 << 20) { data = Data(buffer.readableBytesView) }
            throw Self.error(status: status, body: data, method: method, key: key ?? "")
        }
        var data = Data()
        if collectBody && method != "HEAD" {
            data = Data(try await response.body.collect(upTo: 64 << 20).readableBytesView)
        }
        return Answer(headers: response.headers, data: data, body: response.body)
    }

    /// The ``BlobError`` of an error answer: S3's `<Error><Code>…</Code><Message>…</Message></Error>` when there is
    /// one (a HEAD has no body: its status alone decides).
    static func error(status: Int, body: Data, method: String, key: String) -> BlobError {
        var code: String?
        var message = "\(method) \(key): HTTP \(status)"
        if !body.isEmpty, let root = try? S3XMLElement.parse(body), root.name == "Error" {
            code = root.text("Code")
            if let text = root.text("Message") { message = "\(method) \(key): \(text)" }
        }
        let kind: BlobError.Code =
            switch status {
            case 404: .notFound
            case 401, 403: .accessDenied
            default: code == "BadDigest" || code == "XAmzContentSHA256Mismatch" ? .integrity : .server
            }
        return BlobError(kind, message, httpStatus: status, s3Code: code)
    }

    /// S3 keys are 1–1024 bytes of UTF-8.
    static func validate(_ key: String) throws {
        guard !key.isEmpty, key.utf8.count <= 1024 else {
            throw BlobError(.invalidArgument, "an S3 key has 1–1024 bytes: \(key.prefix(80))")
        }
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
