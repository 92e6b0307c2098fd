import AgentBoxBlobs
import Foundation
import Testing

/// The local-directory store, and the checkpoint scenarios against it (no server needed: these always run).
@Suite struct DirectoryBlobStoreTests {
    @Test func putGetHeadDeleteList() async throws {
        let directory = try TemporaryDirectory("store")
        defer { directory.remove() }
        let store = try DirectoryBlobStore(root: directory.url, durable: false)
        try await store.put("a/b c+=ü.txt", data: Data("one".utf8))
        try await store.put("a/two", data: Data("two!".utf8))
        try await store.put("b", data: Data())
        #expect(try await store.get("a/b c+=ü.txt", maxBytes: 10) == Data("one".utf8))
        #expect(try await store.head("a/two") == BlobInfo(key: "a/two", size: 4))
        #expect(try await store.head("a/none") == nil)
        #expect(try await store.listAll(prefix: "a/").map(\.key) == ["a/b c+=ü.txt", "a/two"])
        #expect(try await store.listAll(prefix: "").map(\.key) == ["a/b c+=ü.txt", "a/two", "b"])
        #expect(try await store.listAll(prefix: "a/t").map(\.key) == ["a/two"])
        await #expect(throws: BlobError.self) { try await store.get("a/two", maxBytes: 3) }
        do {
            _ = try await store.get("missing", maxBytes: 10)
            Issue.record("a missing key was read")
        } catch let error as BlobError {
            #expect(error.code == .notFound)
        }
        try await store.delete("a/two")
        try await store.delete("a/two")
        #expect(try await store.head("a/two") == nil)
        #expect(try await store.deleteAll(prefix: "a/") == 1)
        #expect(try await store.listAll(prefix: "").map(\.key) == ["b"])
        await #expect(throws: BlobError.self) { try await store.put("../escape", data: Data()) }
        await #expect(throws: BlobError.self) { try await store.put("a//b", data: Data()) }
    }

    @Test func pagesOfAThousand() async throws {
        let directory = try TemporaryDirectory("store")
        defer { directory.remove() }
        let store = try DirectoryBlobStore(root: directory.url, durable: false)
        for index in 0..<1_050 { try await store.put(String(format: "k/%05d", index), data: Data()) }
        let first = try await store.list(prefix: "k/", continuation: nil)
        #expect(first.objects.count == 1000)
        let second = try await store.list(prefix: "k/", continuation: first.next)
        #expect(second.objects.count == 50 && second.next == nil)
        #expect(second.objects.first?.key == "k/01000")
    }

    @Test func fileContentIsCheckedAgainstItsAddress() async throws {
        let directory = try TemporaryDirectory("store")
        defer { directory.remove() }
        let store = try DirectoryBlobStore(root: directory.url, durable: false)
        let file = directory.url.appendingPathComponent("source")
        try Data("content".utf8).write(to: file)
        try await store.put("blobs/good", contentsOf: file, sha256: sha256Hex(Data("content".utf8)))
        do {
            try await store.put("blobs/bad", contentsOf: file, sha256: sha256Hex(Data("other".utf8)))
            Issue.record("a mismatching digest was accepted")
        } catch let error as BlobError {
            #expect(error.code == .integrity)
        }
        #expect(try await store.head("blobs/bad") == nil)
        let copy = directory.url.appendingPathComponent("copy")
        let got = try await store.get("blobs/good", into: copy)
        #expect(got == BlobDownload(size: 7, sha256: sha256Hex(Data("content".utf8))))
    }

    @Test func checkpointRoundTrip() async throws {
        let directory = try TemporaryDirectory("store")
        defer { directory.remove() }
        try await CheckpointScenarios.roundTrip(try DirectoryBlobStore(root: directory.url, durable: false))
    }

    @Test func checkpointIncremental() async throws {
        let directory = try TemporaryDirectory("store")
        defer { directory.remove() }
        try await CheckpointScenarios.incremental(try DirectoryBlobStore(root: directory.url, durable: false))
    }

    @Test func checkpointMissing() async throws {
        let directory = try TemporaryDirectory("store")
        defer { directory.remove() }
        try await CheckpointScenarios.missing(try DirectoryBlobStore(root: directory.url))
    }

    @Test func manifestIsVersioned() throws {
        let manifest = CheckpointManifest(
            id: "20261204T031502.123Z-1a2b3c", createdAt: Date(timeIntervalSince1970: 1_796_354_103), parent: nil,
            entries: [.init(path: ".", kind: .directory, mode: 0o755, uid: 0, gid: 0, mtime: 5)])
        let data = try manifest.encoded()
        #expect(!String(decoding: data, as: UTF8.self).contains("\n"))
        #expect(try CheckpointManifest.decode(data) == manifest)
        var newer = manifest
        newer.version = CheckpointManifest.currentVersion + 1
        #expect(throws: BlobError.self) { try CheckpointManifest.decode(try newer.encoded()) }
    }
}
