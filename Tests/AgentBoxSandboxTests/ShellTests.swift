import AgentBox
import AgentBoxAPI
import Foundation
import NIOCore
import Testing

@Suite("Shells", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct ShellTests {
    /// Reads the shell's output until it contains `text`; returns everything read.
    func read(_ output: AsyncStream<ShellOutput>.AsyncIterator, until text: String) async -> (String, AsyncStream<ShellOutput>.AsyncIterator) {
        var iterator = output
        var seen = ""
        while !seen.contains(text), let item = await iterator.next() {
            if case .data(let bytes) = item { seen += String(buffer: bytes) }
        }
        return (seen, iterator)
    }

    @Test func aRealTerminalWithResizeAndJobControl() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("tty"))
            let runtime = try await manager.runtime(for: key("tty"))
            let shell = try await runtime.openShell(ShellCreateRequest(command: "/bin/bash", args: ["--norc", "-i"], cols: 100, rows: 30))
            #expect(shell.status == .running && shell.cols == 100)
            let session = try await runtime.shell(shell.id)
            var output = session.attach().makeAsyncIterator()
            try session.write(ByteBuffer(string: "tty; stty size; echo MARK$((0+1))\n"))
            var seen: String
            (seen, output) = await read(output, until: "MARK1\r\n")
            #expect(seen.contains("/dev/pts/"), "tty names a terminal: \(seen)")
            #expect(seen.contains("30 100"), "\(seen)")

            try await session.resize(ShellResize(cols: 132, rows: 43))
            #expect(session.info.cols == 132)
            try session.write(ByteBuffer(string: "stty size; echo MARK$((0+2))\n"))
            (seen, output) = await read(output, until: "MARK2\r\n")
            #expect(seen.contains("43 132"), "\(seen)")

            // Ctrl-C interrupts the foreground job; the shell survives it.
            try session.write(ByteBuffer(string: "sleep 100\n"))
            try await Task.sleep(for: .milliseconds(300))
            try session.write(ByteBuffer(bytes: [3]))
            try session.write(ByteBuffer(string: "echo after-$((40+2))\n"))
            (seen, output) = await read(output, until: "after-42")
            #expect(seen.contains("after-42"))
            #expect(session.info.status == .running)

            try session.write(ByteBuffer(string: "exit 5\n"))
            var exit: Int32?
            while let item = await output.next() { if case .exit(let code) = item { exit = code } }
            #expect(exit == 5)
            #expect(try await runtime.shell(shell.id).info.exitCode == 5)
            await expectCode(.conflict) { try session.write(ByteBuffer(string: "x")) }
            await manager.shutdown()
        }
    }

    /// Input past what the terminal queues (its process not reading yet) waits and is all delivered once it reads.
    @Test func inputPastTheTerminalsQueueIsDeliveredWhenTheProcessReads() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("paste"))
            let runtime = try await manager.runtime(for: key("paste"))
            let shell = try await runtime.openShell(
                ShellCreateRequest(command: "/bin/bash", args: ["--norc", "-c", "stty raw -echo; echo READY; sleep 1; head -c 300000 | wc -c"]))
            let session = try await runtime.shell(shell.id)
            var output = session.attach().makeAsyncIterator()
            (_, output) = await read(output, until: "READY")
            // 300 kB at once, while the process sleeps: far more than a terminal's input queue holds.
            try session.write(ByteBuffer(repeating: UInt8(ascii: "x"), count: 300_000))
            let (seen, _) = await read(output, until: "300000")
            #expect(seen.contains("300000"), "\(seen)")
            await manager.shutdown()
        }
    }

    @Test func twoClientsSeeTheSameOutputAndALateOneGetsTheScrollback() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("multi"))
            let runtime = try await manager.runtime(for: key("multi"))
            let events = await runtime.events()
            let shell = try await runtime.openShell(ShellCreateRequest(command: "/bin/sh"))
            let session = try await runtime.shell(shell.id)
            let first = session.attach().makeAsyncIterator(), second = session.attach().makeAsyncIterator()
            try session.write(ByteBuffer(string: "echo shared-$((6*7))\n"))
            let (a, _) = await read(first, until: "shared-42")
            let (b, _) = await read(second, until: "shared-42")
            #expect(a.contains("shared-42") && b.contains("shared-42"))
            let (late, _) = await read(session.attach().makeAsyncIterator(), until: "shared-42")
            #expect(late.contains("shared-42"), "a late client sees what was on the screen")
            // The workspace stream carries it too.
            var text = ""
            for await envelope in events {
                if case .shellData(let data) = envelope.event, data.shellId == shell.id { text += String(decoding: data.bytes, as: UTF8.self) }
                if text.contains("shared-42") { break }
            }
            #expect(text.contains("shared-42"))
            await manager.shutdown()
        }
    }

    /// The shell's exit ends it, as in ssh: a background job still holding the terminal used to keep the shell
    /// running (and `agentbox shell` waiting after `exit`) until the job ended. What the shell wrote last arrives.
    @Test func theShellsExitEndsItThoughABackgroundJobHoldsTheTerminal() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("bg"))
            let runtime = try await manager.runtime(for: key("bg"))
            let shell = try await runtime.openShell(ShellCreateRequest(command: "/bin/bash", args: ["--norc", "-i"]))
            let session = try await runtime.shell(shell.id)
            var output = session.attach().makeAsyncIterator()
            try session.write(ByteBuffer(string: "sleep 1000 &\necho started-$((1+1))\n"))
            (_, output) = await read(output, until: "started-2")
            try session.write(ByteBuffer(string: "echo last-$((2+2)); exit 3\n"))
            var seen = "", exit: Int32?
            while let item = await output.next() {
                switch item {
                case .data(let bytes): seen += String(buffer: bytes)
                case .exit(let code): exit = code
                }
            }
            #expect(exit == 3 && seen.contains("last-4"), "\(seen)")
            #expect(try await runtime.shell(shell.id).info.status == .exited)
            await manager.shutdown()
        }
    }

    @Test func anOpenShellHoldsTheWorkspaceAwakeAndClosingKillsItsProcessGroup() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, idleGrace: .milliseconds(200))
            _ = try await manager.create(key: key("awake"))
            let runtime = try await manager.runtime(for: key("awake"))
            let shell = try await runtime.openShell(ShellCreateRequest(command: "/bin/sh"))
            let session = try await runtime.shell(shell.id)
            try session.write(ByteBuffer(string: "sleep 1000 & sleep 1001\n"))
            try await Task.sleep(for: .milliseconds(800))
            #expect(runtime.snapshot.state == .running, "an open shell holds the workspace awake")
            // Both jobs start (under load the shell may take a while to reach the second), bounded at 10 s.
            var before = try await runtime.exec(ExecRequest(command: "ps -eo args | grep -c '^sleep 100[01]'"))
            for _ in 0..<100 where before.stdout != "2\n" {
                try await Task.sleep(for: .milliseconds(100))
                before = try await runtime.exec(ExecRequest(command: "ps -eo args | grep -c '^sleep 100[01]'"))
            }
            #expect(before.stdout == "2\n", "\(before)")
            try await runtime.closeShell(shell.id)
            let after = try await runtime.exec(ExecRequest(command: "ps -eo args | grep -c '^sleep 100[01]' || true"))
            #expect(after.stdout == "0\n", "closing kills the shell's jobs: \(after)")
            await expectCode(.notFound) { _ = try await runtime.shell(shell.id) }
            // With nothing else holding it, it sleeps after the grace (waited for as an event, not a fixed time).
            for await envelope in await runtime.events(after: 0) where envelope.event == .vmShutdown(VMShutdown(reason: .sleep)) { break }
            #expect(runtime.snapshot.state == .sleeping)
            await manager.shutdown()
        }
    }

    @Test func badShellRequestsAreRefused() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("bad"))
            let runtime = try await manager.runtime(for: key("bad"))
            await expectCode(.invalidArgument) { _ = try await runtime.openShell(ShellCreateRequest(cols: 0)) }
            await expectCode(.invalidArgument) { _ = try await runtime.openShell(ShellCreateRequest(rows: 100_000)) }
            await expectCode(.invalidArgument) { _ = try await runtime.openShell(ShellCreateRequest(command: "/no/such/shell")) }
            await expectCode(.invalidArgument) { _ = try await runtime.openShell(ShellCreateRequest(cwd: "/workspace/absent")) }
            await expectCode(.notFound) { _ = try await runtime.shell("shell_0000000000000000") }
            let shell = try await runtime.openShell(ShellCreateRequest(command: "/bin/sh"))
            await expectCode(.invalidArgument) { try await runtime.shell(shell.id).resize(ShellResize(cols: -1, rows: 5)) }
            #expect(try await runtime.shell(shell.id).info.status == .running)
            await manager.shutdown()
        }
    }
}
