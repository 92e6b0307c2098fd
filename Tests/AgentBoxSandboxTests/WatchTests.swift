import AgentBox
import AgentBoxAPI
import Foundation
import Testing

@Suite("File watch", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct WatchTests {
    /// Reads events until `done` says so (or the stream ends); fails the test after `timeout`.
    func collect(
        _ events: AsyncStream<FileWatchEvent>, timeout: Duration = .seconds(10), until done: @escaping @Sendable ([FileWatchEvent]) -> Bool
    ) async -> [FileWatchEvent] {
        await withTaskGroup(of: [FileWatchEvent]?.self) { group in
            group.addTask {
                var seen: [FileWatchEvent] = []
                for await event in events {
                    seen.append(event)
                    if done(seen) { break }
                }
                return seen
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? []
        }
    }

    @Test func reportsWhatTheWorkspacesProcessesChange() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("w"))
            let runtime = try await manager.runtime(for: key("w"))
            let events = try runtime.watch(WorkspacePath("/workspace"), recursive: true)
            #expect(runtime.snapshot.state == .sleeping, "watching does not boot")
            // In three steps, each awaited: a change made before a new directory's watch is in place is reported by
            // a scan (as created), so one burst would make the expected lines depend on timing.
            var lines: [String] = []
            var seen: [FileWatchEvent] = []
            var iterator = events.makeAsyncIterator()
            func step(_ command: String, until last: String) async throws {
                #expect(try await manager.run("w", command).exitCode == 0)
                while let event = await iterator.next() {
                    seen.append(event)
                    lines.append("\(event.type.rawValue) \(event.from.map { "\($0) -> " } ?? "")\(event.path)")
                    if lines.last!.hasSuffix(last) { return }
                }
            }
            try await step("echo hi > a.txt; mkdir -p d/e; echo x > d/e/f", until: " /workspace/d/e/f")
            try await step("mv a.txt b.txt; mv d moved; echo y > moved/e/g", until: "modified /workspace/moved/e/g")
            try await step("rm b.txt", until: "deleted /workspace/b.txt")
            // d/e/f may be written before the watch of d/e is in place: then it is announced as created.
            #expect(lines.contains("modified /workspace/d/e/f") || lines.contains("created /workspace/d/e/f"), "\(lines)")
            for expected in [
                "created /workspace/a.txt", "modified /workspace/a.txt", "created /workspace/d", "created /workspace/d/e",
                "moved /workspace/a.txt -> /workspace/b.txt", "moved /workspace/d -> /workspace/moved",
                "modified /workspace/moved/e/g", "deleted /workspace/b.txt",
            ] {
                #expect(lines.contains(expected), "missing '\(expected)' in \(lines)")
            }
            #expect(seen.first { $0.path == "/workspace/d" }?.isDirectory == true)
            await manager.shutdown()
        }
    }

    /// A file the fs API makes is `created` and one it replaces `modified`, each once (a new file used to show as
    /// two `modified`: the rename, then the close of its descriptor under the new name).
    @Test func aShallowWatchSeesOnlyItsDirectoryAndApiWritesShowAsCreatedThenModified() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("s"))
            let runtime = try await manager.runtime(for: key("s"))
            let files = try runtime.files()
            try files.makeDirectory(WorkspacePath("/workspace/sub"), recursive: true)
            let events = try runtime.watch(WorkspacePath("/workspace"), recursive: false)
            try await FileFixtureWriter.write(files, "/workspace/sub/inner.txt", "no")
            try await FileFixtureWriter.write(files, "/workspace/top.txt", "yes")
            try await FileFixtureWriter.write(files, "/workspace/top.txt", "again")
            try await FileFixtureWriter.write(files, "/workspace/end.txt", "")
            let seen = await collect(events) { $0.contains { $0.path == "/workspace/end.txt" } }
            // A replaced file may show a second `modified`: a process the server forks meanwhile (a sandbox for the
            // pool) holds the written file's descriptor until it executes, and its close then names the file's new name.
            let top = seen.filter { $0.path == "/workspace/top.txt" }.map(\.type)
            #expect(top.first == .created && top.count >= 2 && top.dropFirst().allSatisfy { $0 == .modified }, "\(seen)")
            #expect(seen.filter { $0.path == "/workspace/end.txt" }.map(\.type) == [.created], "\(seen)")
            #expect(seen.allSatisfy { $0.path == "/workspace/top.txt" || $0.path == "/workspace/end.txt" }, "\(seen)")
            #expect(try files.stat(WorkspacePath("/workspace/top.txt")).size == 5)
            await manager.shutdown()
        }
    }

    @Test func badPathsAreRefusedAndTheStreamEndsWithTheWorkspace() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.run("b", "ln -s /etc /workspace/etc; touch /workspace/file")
            let runtime = try await manager.runtime(for: key("b"))
            await expectCode(.forbidden) { _ = try runtime.watch(WorkspacePath("/workspace/etc"), recursive: false) }
            await expectCode(.notFound) { _ = try runtime.watch(WorkspacePath("/workspace/absent"), recursive: false) }
            await expectCode(.invalidArgument) { _ = try runtime.watch(WorkspacePath("/workspace/file"), recursive: false) }
            await expectCode(.invalidArgument) { _ = try runtime.watch(WorkspacePath("/etc"), recursive: false) }

            var open: [AsyncStream<FileWatchEvent>] = []
            for _ in 0..<WorkspaceRuntime.maxWatchers { open.append(try runtime.watch(WorkspacePath("/workspace"), recursive: false)) }
            await expectCode(.conflict) { _ = try runtime.watch(WorkspacePath("/workspace"), recursive: false) }

            try await manager.destroy(key: key("b"))
            for stream in open {
                for await _ in stream {}  // each ends: the workspace is gone
            }
            await manager.shutdown()
        }
    }
}
