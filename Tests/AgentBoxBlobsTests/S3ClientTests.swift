import AgentBoxBlobs
import Crypto
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The S3 client and the checkpoints against a real S3-compatible server (SeaweedFS), which verifies every
/// signature. Skipped without AGENTBOX_WEED.
@Suite(.serialized, .enabled(if: WeedServer.binary != nil, Comment(rawValue: WeedServer.skipMessage)), .timeLimit(.minutes(5)))
struct S3ClientTests {
    @Test func putGetHeadDelete() async throws {
        let s3 = S3Client(configuration: try await WeedServer.running().newBucket())
        try await s3.createBucket()  // again: already ours is fine
        try await s3.putObject("dir/hello.txt", data: Data("hello".utf8), contentType: "text/plain")
        #expect(try await s3.getObject("dir/hello.txt", maxBytes: 100) == Data("hello".utf8))
        #expect(try await s3.headObject("dir/hello.txt")?.size == 5)
        #expect(try await s3.headObject("dir/missing") == nil)
        do {
            _ = try await s3.getObject("dir/missing", maxBytes: 100)
            Issue.record("a missing key was read")
        } catch let error as BlobError {
            #expect(error.code == .notFound && error.httpStatus == 404 && error.s3Code == "NoSuchKey")
        }
        do {
            _ = try await s3.getObject("dir/hello.txt", maxBytes: 3)
            Issue.record("the cap was ignored")
        } catch let error as BlobError {
            #expect(error.code == .tooLarge)
        }
        try await s3.deleteObject("dir/hello.txt")
        try await s3.deleteObject("dir/hello.txt")
        #expect(try await s3.headObject("dir/hello.txt") == nil)
    }

    @Test func aWrongSecretIsRefused() async throws {
        let server = try await WeedServer.running()
        let good = try await server.newBucket()
        var bad = good
        bad.secretKey = "not-the-secret"
        do {
            try await S3Client(configuration: bad).putObject("x", data: Data("x".utf8))
            Issue.record("a request signed with a wrong secret was accepted")
        } catch let error as BlobError {
            #expect(error.code == .accessDenied && error.httpStatus == 403)
            #expect(error.s3Code == "SignatureDoesNotMatch")
        }
        #expect(try await S3Client(configuration: good).headObject("x") == nil)
    }

    @Test(arguments: ["with space.txt", "ünïcödé/✓ café.bin", "a+b=c&d?e#f.txt", "~tilde/(paren)/'quote'!*.txt", "100% done"])
    func keysThatNeedEncoding(_ key: String) async throws {
        let s3 = S3Client(configuration: try await WeedServer.running().newBucket())
        let content = Data("content of \(key)".utf8)
        try await s3.putObject(key, data: content)
        #expect(try await s3.getObject(key, maxBytes: 1000) == content)
        #expect(try await s3.headObject(key)?.size == Int64(content.count))
        let listed = try await s3.listObjectsV2(prefix: String(key.prefix(3)))
        #expect(listed.objects.map(\.key) == [key])
        try await s3.deleteObject(key)
        #expect(try await s3.headObject(key) == nil)
    }

    @Test func listingMoreThanAThousandKeys() async throws {
        let s3 = S3Client(configuration: try await WeedServer.running().newBucket())
        let keys = (0..<1_050).map { String(format: "many/%05d", $0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = keys.makeIterator()
            for _ in 0..<16 {
                if let key = next.next() { group.addTask { try await s3.putObject(key, data: Data(key.utf8)) } }
            }
            while try await group.next() != nil {
                if let key = next.next() { group.addTask { try await s3.putObject(key, data: Data(key.utf8)) } }
            }
        }
        try await s3.putObject("other/x", data: Data())
        let first = try await s3.listObjectsV2(prefix: "many/")
        #expect(first.objects.count == 1000)
        let token = try #require(first.nextContinuationToken)
        let second = try await s3.listObjectsV2(prefix: "many/", continuationToken: token)
        #expect(second.nextContinuationToken == nil)
        #expect((first.objects + second.objects).map(\.key) == keys)

        let store = S3BlobStore(client: s3)
        #expect(try await store.listAll(prefix: "many/").count == 1_050)
        #expect(try await store.deleteAll(prefix: "many/") == 1_050)
        #expect(try await store.listAll(prefix: "").map(\.key) == ["other/x"])
    }

    /// 50 MiB up from a file and down to a file, streamed: the process's peak memory grows by less than the file.
    @Test func aLargeFileStreamsBothWays() async throws {
        let s3 = S3Client(configuration: try await WeedServer.running().newBucket())
        let directory = try TemporaryDirectory("large")
        defer { directory.remove() }
        let source = directory.url.appendingPathComponent("source.bin")
        let size = 50 * 1024 * 1024
        do {
            let handle = try LocalTestFile(path: source.path)
            var block = [UInt8](repeating: 0, count: 1 << 20)
            for index in 0..<(size >> 20) {
                for offset in stride(from: 0, to: block.count, by: 4096) { block[offset] = UInt8(truncatingIfNeeded: index &+ offset) }
                try handle.write(block)
            }
        }
        let before = peakResidentBytes()
        try await s3.putObject("large/source.bin", contentsOf: source)
        #expect(try await s3.headObject("large/source.bin")?.size == Int64(size))
        let copy = directory.url.appendingPathComponent("copy.bin")
        let got = try await s3.getObject("large/source.bin", into: copy)
        let growth = peakResidentBytes() - before
        #expect(got.size == Int64(size))
        #expect(got.sha256 == (try fileSHA256(source.path)))
        // The whole process's peak, which other suites running at the same time may raise too: the bound is just under
        // the file's size, which a transfer holding the file (or a copy of it) in memory would exceed. Alone, the
        // growth measured here is under 30 MiB.
        #expect(growth < 48 * 1024 * 1024, "peak RSS grew by \(growth / 1024 / 1024) MiB for a 50 MiB file")

        // A file whose content is not what the caller says is never stored.
        do {
            try await s3.putObject("large/wrong", contentsOf: source, sha256: String(repeating: "0", count: 64))
            Issue.record("content with another digest was stored")
        } catch let error as BlobError {
            #expect(error.code == .integrity)
        }
        #expect(try await s3.headObject("large/wrong") == nil)
    }

    @Test func checkpointRoundTrip() async throws {
        try await CheckpointScenarios.roundTrip(S3BlobStore(configuration: try await WeedServer.running().newBucket()))
    }

    @Test func checkpointIncremental() async throws {
        try await CheckpointScenarios.incremental(S3BlobStore(configuration: try await WeedServer.running().newBucket()))
    }

    @Test func checkpointMissing() async throws {
        try await CheckpointScenarios.missing(S3BlobStore(configuration: try await WeedServer.running().newBucket()))
    }
}

/// Writes a file block by block (the test's own writer, so that the 50 MB never sit in memory).
final class LocalTestFile {
    let fd: Int32
    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BlobError(.io, "create \(path)") }
    }
    deinit { close(fd) }
    func write(_ bytes: [UInt8]) throws {
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw BlobError(.io, "short write") }
    }
}

func fileSHA256(_ path: String) throws -> String {
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    var hasher = SHA256()
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}

/// The process's peak resident set (getrusage's ru_maxrss, in KiB on Linux), in bytes.
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
}
