import AsyncHTTPClient
import Foundation
import Logging

/// A ``BlobStore`` in an S3 bucket, through ``S3Client``.
///
/// ```swift
/// let store = S3BlobStore(configuration: try S3Configuration(url: "s3://KEY:SECRET@127.0.0.1:8333/agentbox"))
/// try await store.client.createBucket()
/// ```
public struct S3BlobStore: BlobStore {
    public let client: S3Client

    public init(client: S3Client) { self.client = client }

    public init(configuration: S3Configuration, httpClient: HTTPClient = .shared, logger: Logger? = nil) {
        client = S3Client(configuration: configuration, httpClient: httpClient, logger: logger)
    }

    public func put(_ key: String, data: Data) async throws {
        try await client.putObject(key, data: data)
    }

    public func put(_ key: String, contentsOf file: URL, sha256: String?) async throws {
        try await client.putObject(key, contentsOf: file, sha256: sha256)
    }

    public func get(_ key: String, maxBytes: Int) async throws -> Data {
        try await client.getObject(key, maxBytes: maxBytes)
    }

    @discardableResult
    public func get(_ key: String, into file: URL) async throws -> BlobDownload {
        let got = try await client.getObject(key, into: file)
        return BlobDownload(size: got.size, sha256: got.sha256)
    }

    public func head(_ key: String) async throws -> BlobInfo? {
        try await client.headObject(key).map { BlobInfo(key: $0.key, size: $0.size) }
    }

    public func delete(_ key: String) async throws {
        try await client.deleteObject(key)
    }

    public func list(prefix: String, continuation: String?) async throws -> BlobPage {
        let page = try await client.listObjectsV2(prefix: prefix, continuationToken: continuation)
        return BlobPage(objects: page.objects.map { BlobInfo(key: $0.key, size: $0.size) }, next: page.nextContinuationToken)
    }

    @discardableResult
    public func deleteAll(prefix: String) async throws -> Int {
        try await client.deleteObjects(prefix: prefix)
    }
}
