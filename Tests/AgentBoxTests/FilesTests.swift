import AgentBox
import AgentBoxAPI
import Foundation
import NIOCore
import Testing

/// A workspace-like pair of directories with a sibling "outside" holding a secret, for escape tests.
struct FileFixture {
    let base: URL
    let files: WorkspaceFiles
    var workspace: URL { base.appendingPathComponent("ws/workspace") }
    var outside: URL { base.appendingPathComponent("outside") }

    init(_ base: URL) throws {
        self.base = base
        for directory in ["ws/workspace", "ws/home", "outside"] {
            try FileManager.default.createDirectory(at: base.appendingPathComponent(directory), withIntermediateDirectories: true)
        }
        try "SECRET".write(to: base.appendingPathComponent("outside/secret"), atomically: true, encoding: .utf8)
        files = WorkspaceFiles(
            roots: [
                .init(path: try WorkspacePath("/workspace"), hostDirectory: base.appendingPathComponent("ws/workspace").path),
                .init(path: try WorkspacePath("/home/agent"), hostDirectory: base.appendingPathComponent("ws/home").path),
            ], owner: nil)
    }

    func read(_ path: String) async throws -> String {
        let (fd, _) = try files.openForReading(try WorkspacePath(path))
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = Glibc.read(fd, &buffer, buffer.count)
        return String(decoding: buffer[..<max(0, count)], as: UTF8.self)
    }

    func write(_ path: String, _ text: String) async throws {
        let chunks = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            continuation.yield(ByteBuffer(string: text))
            continuation.finish()
        }
        _ = try await files.write(try WorkspacePath(path), chunks: chunks)
    }
}

func expectCode(_ code: AgentBoxError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("expected \(code), got success", sourceLocation: sourceLocation)
    } catch let error as AgentBoxError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Workspace paths")
struct WorkspacePathTests {
    @Test(arguments: [
        ("a.txt", "/workspace/a.txt"), ("/workspace/./src//a", "/workspace/src/a"), ("src/../b", "/workspace/b"),
        ("/home/agent/.bashrc", "/home/agent/.bashrc"), ("/workspace/", "/workspace"),
    ])
    func normalises(raw: String, expected: String) throws {
        #expect(try WorkspacePath(raw).description == expected)
    }

    @Test(arguments: ["/..", "/workspace/../../etc", "../../../etc/passwd"])
    func climbingAboveTheRootIsForbidden(raw: String) async {
        await expectCode(.forbidden) { _ = try WorkspacePath(raw) }
    }

    @Test(arguments: ["", "a\0b", String(repeating: "a/", count: 2100), "/workspace/" + String(repeating: "n", count: 256)])
    func malformedPathsAreInvalid(raw: String) async {
        await expectCode(.invalidArgument) { _ = try WorkspacePath(raw) }
    }
}

@Suite("Workspace files")
struct FilesTests {
    @Test func roundTrips() async throws {
        try await withTemporaryDirectory { base in
            let fixture = try FileFixture(base)
            let files = fixture.files
            try await fixture.write("/workspace/src/deep/a.txt", "hello")
            #expect(try await fixture.read("src/deep/a.txt") == "hello")
            #expect(try files.stat(WorkspacePath("/workspace/src/deep/a.txt")).size == 5)
            #expect(try files.stat(WorkspacePath("/workspace/src")).type == .directory)
            #expect(try files.exists(WorkspacePath("/workspace/src/deep")))
            #expect(try !files.exists(WorkspacePath("/workspace/nope")))
            try files.makeDirectory(WorkspacePath("/workspace/m/n"), recursive: true)
            try files.makeDirectory(WorkspacePath("/workspace/m/n"), recursive: true)
            await expectCode(.conflict) { try files.makeDirectory(WorkspacePath("/workspace/m/n"), recursive: false) }
            await expectCode(.notFound) { try files.makeDirectory(WorkspacePath("/workspace/x/y"), recursive: false) }
            try files.move(from: WorkspacePath("/workspace/src/deep/a.txt"), to: WorkspacePath("/home/agent/b.txt"), overwrite: false)
            #expect(try await fixture.read("/home/agent/b.txt") == "hello")
            try await fixture.write("/workspace/c.txt", "c")
            await expectCode(.conflict) { try files.move(from: WorkspacePath("/workspace/c.txt"), to: WorkspacePath("/home/agent/b.txt"), overwrite: false) }
            try files.move(from: WorkspacePath("/workspace/c.txt"), to: WorkspacePath("/home/agent/b.txt"), overwrite: true)
            #expect(try await fixture.read("/home/agent/b.txt") == "c")
            let listing = try files.list(WorkspacePath("/workspace"), maxDepth: 10)
            #expect(listing.items.map(\.path) == ["/workspace/m", "/workspace/m/n", "/workspace/src", "/workspace/src/deep"])
            #expect(try files.list(WorkspacePath("/workspace"), maxDepth: 1).items.map(\.name) == ["m", "src"])
            await expectCode(.conflict) { try files.delete(WorkspacePath("/workspace/src"), recursive: false) }
            try files.delete(WorkspacePath("/workspace/src"), recursive: true)
            #expect(try !files.exists(WorkspacePath("/workspace/src")))
            await expectCode(.invalidArgument) { try files.delete(WorkspacePath("/workspace"), recursive: true) }
            await expectCode(.invalidArgument) { _ = try files.stat(WorkspacePath("/etc/passwd")) }
            await expectCode(.invalidArgument) { _ = try files.openForReading(WorkspacePath("/workspace/m")) }
        }
    }

    @Test func aSymlinkPlantedTowardsTheHostIsRefused() async throws {
        try await withTemporaryDirectory { base in
            let fixture = try FileFixture(base)
            let files = fixture.files
            // As a process in the workspace would: `ln -s /abs/outside x`, and a relative one that climbs out.
            try FileManager.default.createSymbolicLink(atPath: fixture.workspace.appendingPathComponent("x").path, withDestinationPath: fixture.outside.path)
            try FileManager.default.createSymbolicLink(atPath: fixture.workspace.appendingPathComponent("up").path, withDestinationPath: "../../outside")
            try FileManager.default.createSymbolicLink(atPath: fixture.workspace.appendingPathComponent("etc").path, withDestinationPath: "/etc")
            for path in ["/workspace/x/secret", "/workspace/up/secret", "/workspace/etc/shadow", "/workspace/etc/passwd"] {
                await expectCode(.forbidden) { _ = try await fixture.read(path) }
                await expectCode(.forbidden) { _ = try files.stat(WorkspacePath(path)) }
            }
            await expectCode(.forbidden) { try await fixture.write("/workspace/x/planted", "pwned") }
            await expectCode(.forbidden) { try await fixture.write("/workspace/up/new/planted", "pwned") }
            await expectCode(.forbidden) { try files.makeDirectory(WorkspacePath("/workspace/x/dir"), recursive: true) }
            await expectCode(.forbidden) { _ = try files.list(WorkspacePath("/workspace/x"), maxDepth: 1) }
            await expectCode(.forbidden) { try files.delete(WorkspacePath("/workspace/x/secret"), recursive: false) }
            await expectCode(.forbidden) { try files.move(from: WorkspacePath("/workspace/x/secret"), to: WorkspacePath("/workspace/stolen"), overwrite: false) }
            #expect(!FileManager.default.fileExists(atPath: fixture.outside.appendingPathComponent("planted").path))
            #expect(!FileManager.default.fileExists(atPath: fixture.outside.appendingPathComponent("dir").path))
            #expect(try String(contentsOf: fixture.outside.appendingPathComponent("secret"), encoding: .utf8) == "SECRET")
            // The link itself can be inspected and removed; its target is untouched.
            #expect(try files.stat(WorkspacePath("/workspace/x")).type == .symlink)
            #expect(try files.list(WorkspacePath("/workspace"), maxDepth: 5).items.first { $0.name == "x" }?.target == fixture.outside.path)
            try files.delete(WorkspacePath("/workspace/x"), recursive: true)
            #expect(FileManager.default.fileExists(atPath: fixture.outside.appendingPathComponent("secret").path))
            // Overwriting a symlink with a file replaces the link, never writes through it.
            try await fixture.write("/workspace/up", "plain")
            #expect(try files.stat(WorkspacePath("/workspace/up")).type == .file)
            #expect(try String(contentsOf: fixture.outside.appendingPathComponent("secret"), encoding: .utf8) == "SECRET")
        }
    }

    @Test func symlinksThatStayInsideWork() async throws {
        try await withTemporaryDirectory { base in
            let fixture = try FileFixture(base)
            try await fixture.write("/workspace/real/f", "inside")
            try FileManager.default.createSymbolicLink(atPath: fixture.workspace.appendingPathComponent("alias").path, withDestinationPath: "real")
            #expect(try await fixture.read("/workspace/alias/f") == "inside")
        }
    }

    @Test func aSymlinkSwappedDuringRequestsNeverLeaks() async throws {
        try await withTemporaryDirectory { base in
            let fixture = try FileFixture(base)
            try await fixture.write("/workspace/safe/secret", "safe")
            let link = fixture.workspace.appendingPathComponent("flip").path
            let staging = fixture.workspace.appendingPathComponent("flip.tmp").path
            let stop = ManagedAtomicFlag()
            // A process in the workspace flipping a symlink between a safe directory and the host, as fast as it can.
            let flipper = Thread {
                var outside = false
                while !stop.isSet {
                    unlink(staging)
                    symlink(outside ? fixture.outside.path : "safe", staging)
                    rename(staging, link)
                    outside.toggle()
                }
            }
            flipper.start()
            defer { stop.set() }
            var safeReads = 0
            for _ in 0..<3000 {
                do {
                    let text = try await fixture.read("/workspace/flip/secret")
                    #expect(text == "safe", "a read through a swapped symlink reached the host")
                    safeReads += 1
                } catch let error as AgentBoxError {
                    #expect(error.code == .forbidden || error.code == .notFound, "\(error)")
                }
            }
            #expect(safeReads > 0)
        }
    }
}

/// A flag set once from one thread and read from another.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
