import Foundation

/// A flat space of objects by key, `/` being an ordinary character: an S3 bucket (``S3BlobStore``) or a local
/// directory (``DirectoryBlobStore``).
///
/// ```swift
/// let store: any BlobStore = S3BlobStore(configuration: try S3Configuration(url: url))
/// try await store.put("notes/a.txt", data: Data("hello".utf8))
/// try await store.put("blobs/\(sha)", contentsOf: file, sha256: sha)   // streamed, never in memory
/// ```
/// Missing keys: ``get(_:maxBytes:)`` and ``get(_:into:)`` throw ``BlobError/Code/notFound``; ``head(_:)`` returns
/// nil; ``delete(_:)`` succeeds.
public protocol BlobStore: Sendable {
    /// Stores `data` under `key`, replacing what was there.
    func put(_ key: String, data: Data) async throws
    /// Stores a file's contents under `key`, streamed. With `sha256`, the store refuses (`.integrity`) content
    /// whose digest differs: a file that changed after it was hashed never lands under a content address.
    func put(_ key: String, contentsOf file: URL, sha256: String?) async throws
    /// The object's bytes; `.tooLarge` when it has more than `maxBytes`.
    func get(_ key: String, maxBytes: Int) async throws -> Data
    /// Streams the object into `file` (created or truncated, mode 0600); returns its size and SHA-256.
    @discardableResult
    func get(_ key: String, into file: URL) async throws -> BlobDownload
    /// The object's size, or nil when there is none.
    func head(_ key: String) async throws -> BlobInfo?
    /// Deletes the object, if there is one.
    func delete(_ key: String) async throws
    /// One page of the objects whose keys start with `prefix`, in key order; pass the page's `next` for the next.
    func list(prefix: String, continuation: String?) async throws -> BlobPage
    /// Deletes every object whose key starts with `prefix`; returns how many.
    @discardableResult
    func deleteAll(prefix: String) async throws -> Int
}

/// An object's key and size.
public struct BlobInfo: Sendable, Equatable, Hashable {
    public var key: String
    public var size: Int64

    public init(key: String, size: Int64) {
        self.key = key
        self.size = size
    }
}

/// A page of a listing.
public struct BlobPage: Sendable {
    public var objects: [BlobInfo]
    /// Where the next page starts; nil after the last.
    public var next: String?

    public init(objects: [BlobInfo], next: String?) {
        self.objects = objects
        self.next = next
    }
}

/// What a download wrote.
public struct BlobDownload: Sendable, Equatable {
    public var size: Int64
    /// The SHA-256 (lowercase hex) of the bytes written, for callers that check a content address.
    public var sha256: String

    public init(size: Int64, sha256: String) {
        self.size = size
        self.sha256 = sha256
    }
}

extension BlobStore {
    /// Every object under `prefix`, all pages.
    public func listAll(prefix: String) async throws -> [BlobInfo] {
        var all: [BlobInfo] = []
        var continuation: String?
        repeat {
            let page = try await list(prefix: prefix, continuation: continuation)
            all += page.objects
            continuation = page.next
        } while continuation != nil
        return all
    }

    /// `put(key, contentsOf: file, sha256: nil)`.
    public func put(_ key: String, contentsOf file: URL) async throws {
        try await put(key, contentsOf: file, sha256: nil)
    }
}
