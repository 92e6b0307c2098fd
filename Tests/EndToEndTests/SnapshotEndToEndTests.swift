import AgentBoxAPI
import AgentBoxClient
import ChildProcessSupport
import Foundation
import Synchronization
import Testing

@Suite("Snapshots and watch through the real binary", .timeLimit(.minutes(3)))
struct SnapshotEndToEndTests {
    /// Security issue #17 (holes 8 and 9) through the real server, with its default disk pool.
    @Test(.enabled(if: canSandbox && FileManager.default.isExecutableFile(atPath: "/usr/sbin/mkfs.btrfs"), "needs root, bubblewrap and btrfs"))
    func aFullWorkspaceFailsItsWritesAndIsRefusedASnapshotWhileTheServerAndItsNeighbourWork() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--disk-pool-size", "1G"])
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("full", config: WorkspaceConfig(limits: WorkspaceLimits(diskMb: 64)))
            _ = try await client.putWorkspace("neighbour")
            let full = try await client.exec("full", command: "dd if=/dev/zero of=/workspace/big bs=1M count=100 2>&1; echo rc=$?; sync")
            #expect(full.stdout.contains("Disk quota exceeded") && !full.stdout.contains("rc=0"), "\(full)\n\(server.log)")

            #expect(try await client.exec("neighbour", command: "echo fine > /workspace/f && cat /workspace/f").stdout == "fine\n")
            #expect(try await client.health().status == "ok")
            do {
                _ = try await client.createSnapshot("full")
                Issue.record("a snapshot of a full workspace was taken")
            } catch let error as AgentBoxClientError {
                #expect(error.status == 409 && error.problem.detail.contains("disk quota"), "\(error)")
            }
            let table = try await client.exec("neighbour", command: "cat /proc/self/mountinfo")
            #expect(!table.stdout.contains(data.path), "\(table.stdout)\n\(server.log)")
            #expect(await server.stop() == 0)
        }
    }

    @Test func snapshotForkAndWatchWithTheClientAndTheCLI() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--sandbox", canSandbox ? "linux" : "unsandboxed"])
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let environment = ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!]
            func cli(_ arguments: String...) async throws -> (status: Int32, stdout: String, stderr: String) {
                try await AgentBoxBinary.run(arguments, environment: environment)
            }
            _ = try await client.putWorkspace("origin")

            // A watch sees a write through the API and one made by a process inside the workspace.
            let watch = try await client.watch("origin", path: "/workspace", recursive: true)
            _ = try await client.writeFile("origin", path: "/workspace/app/main.py", data: Data("print(1)\n".utf8))
            _ = try await client.exec("origin", command: "echo data > /workspace/app/data.txt")
            var seen: [String] = []
            for try await event in watch {
                seen.append("\(event.type.rawValue) \(event.path)")
                if event.path == "/workspace/app/data.txt", event.type == .modified { break }
            }
            #expect(seen.contains("created /workspace/app"), "\(seen)")
            // The file written through the API shows up: as `modified`, or, when its new directory was only watched
            // after the write (the watch adds a new directory and reports what it finds there), as `created`.
            #expect(seen.contains("modified /workspace/app/main.py") || seen.contains("created /workspace/app/main.py"), "\(seen)")

            // The CLI takes a snapshot, lists it, forks it and deletes it.
            let taken = try await cli("snapshots", "create", "origin")
            #expect(taken.status == 0, "\(taken.stderr)")
            let id = taken.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(id.hasPrefix("snap-"))
            let listed = try await cli("snapshots", "list", "origin")
            #expect(listed.stdout.contains(id) && listed.stdout.contains("ID"))
            let forked = try await cli("workspaces", "create", "copy", "--from-snapshot", id)
            #expect(forked.status == 0 && forked.stdout.contains("created copy"), "\(forked.stderr)")
            let cat = try await cli("fs", "cat", "copy", "/workspace/app/data.txt")
            #expect(cat.stdout == "data\n")
            #expect(try await client.snapshots("origin").items.map(\.id) == [id])
            #expect(try await cli("snapshots", "delete", "origin", id).status == 0)
            let missing = try await cli("workspaces", "create", "again", "--from-snapshot", id)
            #expect(missing.status == 1 && missing.stderr.contains("no snapshot"), "\(missing.stderr)")

            // `agentbox fs watch` prints one line per change.
            let watcher = ChildProcess()
            watcher.executableURL = URL(fileURLWithPath: AgentBoxBinary.path)
            watcher.arguments = ["fs", "watch", "copy", "/workspace", "--recursive"]
            watcher.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let out = Pipe()
            watcher.standardOutput = out
            try watcher.run()
            defer { watcher.terminate() }
            // The watch is in place once the server has answered; until a line shows up, make another change.
            let printed = LineFlag()
            let firstLine = Task { await onOwnThread { () -> String in
                var buffer = Data()
                while !buffer.contains(UInt8(ascii: "\n")) {
                    let chunk = out.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    buffer += chunk
                }
                printed.value.store(true, ordering: .relaxed)
                return String(decoding: buffer, as: UTF8.self)
            } }
            for attempt in 0..<50 where !printed.value.load(ordering: .relaxed) {
                _ = try await client.exec("copy", command: "mkdir -p /workspace/new\(attempt)")
                try await Task.sleep(for: .milliseconds(100))
            }
            let line = await firstLine.value
            #expect(line.hasPrefix("created /workspace/new"), "\(line)")
            await server.stop()
        }
    }
}

final class LineFlag: Sendable {
    let value = Atomic<Bool>(false)
}
