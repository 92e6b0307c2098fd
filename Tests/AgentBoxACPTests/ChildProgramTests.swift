import Foundation
import Subprocess
import Testing

@testable import AgentBoxACP

/// The adapter's children (Claude Code, Codex's app server, stdio MCP servers): started with no signal blocked,
/// whatever thread asks, so that `terminate()` ends them; their stdio on pipes; their end and status seen once.
struct ChildProgramTests {
    @Test(.timeLimit(.minutes(1))) func aChildStartsWithNoSignalBlockedAndTerminateEndsIt() async throws {
        // A Swift concurrency thread blocks SIGTERM among others: the child must not keep that mask.
        let child = try await ChildProgram.start(path: "/bin/sleep", arguments: ["30"], environment: [:])
        let procStatus = try String(contentsOfFile: "/proc/\(child.processIdentifier)/status", encoding: .utf8)
        let lines = procStatus.split(separator: "\n")
        #expect(lines.first { $0.hasPrefix("SigBlk:") } == "SigBlk:\t0000000000000000")
        // SIGPIPE, ignored in this process, is at its default there (glibc keeps its own two signals, 32 and 33).
        let ignored = lines.first { $0.hasPrefix("SigIgn:") }.flatMap { UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) }
        #expect(ignored.map { $0 & (1 << (UInt64(SIGPIPE) - 1)) } == 0)
        // A process group of its own, as Foundation's Process gave: a signal to the adapter's group does not reach it.
        #expect(getpgid(child.processIdentifier) == child.processIdentifier)
        #expect(child.isRunning)
        child.signal(SIGTERM)
        let status = await child.exit()
        #expect(status == .signaled(SIGTERM))
        #expect(!child.isRunning)
    }

    @Test(.timeLimit(.minutes(1))) func itsStdioEnvironmentAndDirectoryAreTheOnesAskedFor() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString)")
            .resolvingSymlinksInPath().path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let child = try await ChildProgram.start(
            path: "/bin/sh", arguments: ["-c", "read line; echo \"$line $GREETING $(pwd)\"; echo oops >&2; ls /proc/self/fd; exit 3"],
            environment: ["GREETING": "hello"], workingDirectory: directory, capturesErrors: true)
        try child.input.write(contentsOf: Data("ping\n".utf8))
        // Blocking reads, on a thread of their own.
        let (output, errors) = await withCheckedContinuation { (read: CheckedContinuation<(String, String), Never>) in
            Thread.detachNewThread {
                let output = String(decoding: child.output.readDataToEndOfFile(), as: UTF8.self)
                let errors = String(decoding: child.errors!.readDataToEndOfFile(), as: UTF8.self)
                read.resume(returning: (output, errors))
            }
        }
        let status = await child.exit()
        let lines = output.split(separator: "\n")
        #expect(lines.first == "ping hello \(directory)")
        // Descriptors 0, 1, 2 and the one `ls` opens to list them: nothing of this process's leaks into the child.
        #expect(lines.dropFirst().sorted() == ["0", "1", "2", "3"])
        #expect(errors == "oops\n")
        #expect(status == .exited(3))
    }

    @Test(.timeLimit(.minutes(1))) func aRelativePathIsFromThisProcesssDirectoryNotTheChilds() async throws {
        // /bin/true by way of as many `..` as this process's directory is deep; from the child's directory, deeper
        // still, the same path names nothing.
        let here = FileManager.default.currentDirectoryPath.split(separator: "/").count
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString)").path
        let deeper = root + String(repeating: "/d", count: here + 1)
        try FileManager.default.createDirectory(atPath: deeper, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let child = try await ChildProgram.start(
            path: String(repeating: "../", count: here) + "bin/true", arguments: [], environment: [:], workingDirectory: deeper)
        #expect(await child.exit() == .exited(0))
        #expect(!child.isRunning)
    }

    @Test(.timeLimit(.minutes(1))) func aProgramThatCannotStartThrows() async throws {
        await #expect(throws: (any Error).self) {
            _ = try await ChildProgram.start(path: "/nonexistent/program", arguments: [], environment: [:])
        }
    }

    @Test(.timeLimit(.minutes(1))) func waitingWithATimeoutOnARunningChildSaysItHasNotEnded() async throws {
        let child = try await ChildProgram.start(path: "/bin/sleep", arguments: ["30"], environment: [:])
        #expect(await !child.exit(within: .milliseconds(100)))
        // A cancelled wait returns at once.
        let waiting = Task { await child.exit() }
        waiting.cancel()
        #expect(await waiting.value == nil)
        child.signal(SIGKILL)
        #expect(await child.exit(within: .seconds(30)))
        #expect(await child.exit() == .signaled(SIGKILL))
    }

    @Test(.timeLimit(.minutes(1))) func aGracePeriodIsGivenInFullToACancelledCaller() async throws {
        // `sh` ends 0.5 s after its stdin closes; a cancelled caller of `exit(within: 10 s)` still waits for that.
        let child = try await ChildProgram.start(path: "/bin/sh", arguments: ["-c", "read line; sleep 0.5"], environment: [:])
        try child.input.close()
        let waiting = Task { await child.exit(within: .seconds(10)) }
        waiting.cancel()
        #expect(await waiting.value)
        #expect(await child.exit() == .exited(0))
    }
}
