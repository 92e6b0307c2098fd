import AgentBox
import AgentBoxSandbox
import AgentBoxAPI
import Foundation
import Testing

@Suite("Processes", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct ProcessTests {
    /// A workspace's processes start with no signal blocked and none ignored: the server's own mask and handlers
    /// (it ignores SIGPIPE; a concurrency thread blocks some) never reach them through the spawn.
    @Test func workspaceProcessesStartWithNoSignalBlockedOrIgnored() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let result = try await manager.run("signals", "grep -E '^Sig(Blk|Ign)' /proc/self/status")
            #expect(result.stdout == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n", "\(result)")
            await manager.shutdown()
        }
    }

    @Test func execReturnsOutputAndExitCode() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let result = try await manager.run("exec", "echo out; echo err >&2; exit 7")
            #expect(result.stdout == "out\n" && result.stderr == "err\n" && result.exitCode == 7)
            #expect(!result.timedOut && !result.truncated && result.stdoutEncoding == nil)
            let runtime = try await manager.runtime(for: key("exec"))
            _ = try await runtime.exec(ExecRequest(command: "mkdir -p /workspace/sub"))
            let withInput = try await runtime.exec(ExecRequest(command: "tr a-z A-Z; echo; echo $GREETING; pwd", cwd: "sub", env: ["GREETING": "hey"], stdin: "shout"))
            #expect(withInput.stdout == "SHOUT\nhey\n/workspace/sub\n", "relative cwd resolves against /workspace: \(withInput)")
            await manager.shutdown()
        }
    }

    /// `stdinEncoding: base64` carries any bytes to the command (text used to be the only way, so a binary file
    /// piped to `agentbox exec --stdin` arrived with U+FFFD in place of its bytes); stdin that is not base64 is a 400.
    @Test func binaryStdinArrivesByteForByte() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.run("binin", "true")
            let runtime = try await manager.runtime(for: key("binin"))
            let bytes = (0...255).map(UInt8.init) + [0xFF, 0x00, 0xC3]
            let result = try await runtime.exec(
                ExecRequest(command: "cat", stdin: Data(bytes).base64EncodedString(), stdinEncoding: .base64))
            #expect(result.stdoutEncoding == .base64 && result.stdoutBytes == bytes)
            let text = try await runtime.exec(ExecRequest(command: "wc -c", stdin: "héllo", stdinEncoding: .utf8))
            #expect(text.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "6")
            await expectCode(.invalidArgument) { _ = try await runtime.exec(ExecRequest(command: "cat", stdin: "not base64!", stdinEncoding: .base64)) }
            await manager.shutdown()
        }
    }

    /// `lastActiveAt` is when the workspace last did something, not when its idle grace ran out and it slept (which
    /// it was, so that a workspace idle for an hour looked just used).
    @Test func lastActiveAtIsTheLastActivityNotTheSleep() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, idleGrace: .milliseconds(1500))
            _ = try await manager.run("idle", "true")
            let runtime = try await manager.runtime(for: key("idle"))
            let ended = Date()
            for await envelope in await runtime.events(after: 0) where envelope.event == .vmShutdown(VMShutdown(reason: .sleep)) { break }
            let slept = Date()
            let last = runtime.snapshot.lastActiveAt
            #expect(last <= ended && slept.timeIntervalSince(last) >= 1.0, "last active \(last), exec ended \(ended), slept \(slept)")
            #expect(try await manager.workspace(key: key("idle")).lastActiveAt == last)
            await manager.shutdown()
        }
    }

    @Test func binaryOutputIsBase64NotMangled() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let result = try await manager.run("bin", "printf '\\377\\376\\000A'")
            #expect(result.stdoutEncoding == .base64)
            #expect(result.stdoutBytes == [0xFF, 0xFE, 0x00, 0x41])
            let utf8 = try await manager.run("bin", "printf 'h\\303\\251llo'")
            #expect(utf8.stdout == "héllo" && utf8.stdoutEncoding == nil)
            await manager.shutdown()
        }
    }

    @Test func aTimeoutKillsTheWholeTree() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let result = try await manager.run("timeout", "sleep 100 & setsid sleep 101 & (sleep 102 &) ; sleep 103; echo never", timeoutMs: 500)
            #expect(result.timedOut)
            #expect(result.signal == "KILL" && result.exitCode == 137)
            #expect(!result.stdout.contains("never"))
            let left = try await manager.run("timeout", "ps -e -o args=")
            #expect(!left.stdout.contains("sleep 10"), "no grandchild survives: \(left.stdout)")
            await manager.shutdown()
        }
    }

    @Test func outputIsCappedNotBuffered() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let runtime = try await manager.runtime(for: try await manager.create(key: key("flood")).workspace.key)
            let result = try await runtime.exec(ExecRequest(command: "head -c 20000000 /dev/zero | tr '\\0' x", maxOutputBytes: 1000))
            #expect(result.truncated)
            #expect(result.stdout.utf8.count == 1000)
            #expect(result.exitCode == 0)
            await manager.shutdown()
        }
    }

    @Test func stdinWaitAndSignalRoundTrips() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let runtime = try await manager.runtime(for: try await manager.create(key: key("rt")).workspace.key)
            let cat = try await runtime.spawn(SpawnRequest(command: "cat"))
            #expect(cat.status == .running && cat.pid > 1)
            try await runtime.writeStdin(cat.id, data: Array("hello ".utf8), close: false)
            try await runtime.writeStdin(cat.id, data: Array("world".utf8), close: true)
            let exited = try await runtime.wait(cat.id, timeout: .seconds(10))
            #expect(exited.status == .exited && exited.exitCode == 0)
            #expect(try await runtime.output(cat.id).stdout == "hello world")
            await #expect(throws: AgentBoxError.self) { try await runtime.writeStdin(cat.id, data: [1], close: false) }

            let sleeper = try await runtime.spawn(SpawnRequest(command: "sleep", args: ["100"]))
            await #expect(throws: AgentBoxError.self) { try await runtime.wait(sleeper.id, timeout: .milliseconds(100)) }
            try await runtime.signal(sleeper.id, .TERM)
            let terminated = try await runtime.wait(sleeper.id, timeout: .seconds(10))
            #expect(terminated.signal == "TERM" && terminated.exitCode == 143)
            #expect(try await runtime.processList().items.map(\.id).contains(sleeper.id))
            await #expect(throws: AgentBoxError.self) { try await runtime.signal(sleeper.id, .KILL) }
            await manager.shutdown()
        }
    }

    /// A workspace remembers its latest exited processes (here 3), forgetting the earliest exited first, and lists them
    /// with the running ones in start order, however many execs went before.
    @Test func theLatestExitedProcessesAreRemembered() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory) { $0.exitedProcessMemory = 3 }
            let runtime = try await manager.runtime(for: try await manager.create(key: key("memory")).workspace.key)
            let sleeper = try await runtime.spawn(SpawnRequest(command: "sleep", args: ["100"]))
            var execs: [String] = []
            for index in 1...40 { execs.append(try await runtime.exec(ExecRequest(command: "echo \(index)")).processId) }
            var listed = await runtime.processList().items
            #expect(listed.map(\.command) == ["sleep", "echo 38", "echo 39", "echo 40"])
            #expect(listed.first?.status == .running)
            await #expect(throws: AgentBoxError.self) { try await runtime.process(execs[36]) }
            try await runtime.signal(sleeper.id, .KILL)
            _ = try await runtime.wait(sleeper.id, timeout: .seconds(10))
            listed = await runtime.processList().items
            #expect(listed.map(\.command) == ["sleep", "echo 39", "echo 40"], "the sleeper exited last, so it is kept")
            await manager.shutdown()
        }
    }

    @Test func spawnedServersShareTheWorkspaceNetworkAndPIDs() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let runtime = try await manager.runtime(for: try await manager.create(key: key("net")).workspace.key)
            let server = try await runtime.spawn(SpawnRequest(command: "python3", args: ["-m", "http.server", "8123"]))
            let probe = try await runtime.exec(ExecRequest(command: """
                for i in $(seq 50); do python3 -c 'import urllib.request;print(urllib.request.urlopen("http://127.0.0.1:8123/").status)' 2>/dev/null && break; sleep 0.1; done; ps -e -o args=
                """))
            #expect(probe.stdout.hasPrefix("200"), "\(probe)")
            #expect(probe.stdout.contains("http.server 8123"), "exec sees the spawned server in ps")
            try await runtime.signal(server.id, .KILL)
            _ = try await runtime.wait(server.id, timeout: .seconds(10))
            await manager.shutdown()
        }
    }

    @Test func followReplaysThenStreamsUntilExit() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let runtime = try await manager.runtime(for: try await manager.create(key: key("follow")).workspace.key)
            let process = try await runtime.spawn(SpawnRequest(command: "sh", args: ["-c", "echo first; read line; echo $line; exit 3"]))
            // Wait until the first line is buffered, then follow: it comes from the buffer, the rest live.
            var buffered = ""
            for _ in 0..<100 where buffered.isEmpty {
                buffered = try await runtime.output(process.id).stdout
                if buffered.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            }
            let stream = try await runtime.followOutput(process.id)
            try await runtime.writeStdin(process.id, data: Array("second\n".utf8), close: true)
            var text = ""
            var exit: ProcessExitEvent?
            for await item in stream {
                switch item.event {
                case .processOutput(let output): text += output.data
                case .processExit(let event): exit = event
                default: break
                }
            }
            #expect(text == "first\nsecond\n")
            #expect(exit?.exitCode == 3)
            await manager.shutdown()
        }
    }

    /// A follower that keeps up gets every byte and the exit; one that reads slower than the process writes is ended
    /// once it is `ProcessFollow.byteLimit` behind, marked `lost`, without an exit (it used to get a stream with the
    /// newest chunks dropped silently, and then the exit, so E2B's commands.run said "ok" over a hole in its output).
    @Test func aFollowerThatFallsTooFarBehindIsEndedAndSaysSo() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let runtime = try await manager.runtime(for: try await manager.create(key: key("behind")).workspace.key)
            /// Follows a process that writes `bytes`; a `slow` follower reads nothing until the process has written
            /// them all and exited (no fixed pause: a loaded machine may write slower than any pause assumes).
            func follow(bytes: Int, slow: Bool) async throws -> (bytes: Int, exited: Bool, lost: Bool) {
                let process = try await runtime.spawn(SpawnRequest(command: "sh", args: ["-c", "sleep 0.2; head -c \(bytes) /dev/zero | tr '\\0' a"]))
                let follow = try await runtime.followOutput(process.id)
                if slow { _ = try await runtime.wait(process.id, timeout: .seconds(60)) }
                var received = 0, exited = false
                for await item in follow {
                    switch item.event {
                    case .processOutput(let chunk): received += chunk.data.utf8.count
                    case .processExit: exited = true
                    default: break
                    }
                }
                return (received, exited, follow.lost)
            }
            let fast = try await follow(bytes: 24 << 20, slow: false)
            #expect(fast.bytes == 24 << 20 && fast.exited && !fast.lost, "\(fast)")
            let slow = try await follow(bytes: 48 << 20, slow: true)
            #expect(slow.lost && !slow.exited && slow.bytes < 48 << 20, "\(slow)")
            await manager.shutdown()
        }
    }

    @Test func outputAndExitEventsReachTheWorkspaceStream() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("events"))
            let events = try await manager.events(key: key("events"))
            let result = try await manager.run("events", "echo hi")
            var names: [String] = []
            for await envelope in events {
                names.append(envelope.event.name)
                if case .processOutput(let output) = envelope.event { #expect(output.data == "hi\n" && output.processId == result.processId) }
                if case .processExit(let exit) = envelope.event { #expect(exit.processId == result.processId && exit.exitCode == 0); break }
            }
            #expect(names == ["vmBooted", "processOutput", "processExit"])
            await manager.shutdown()
        }
    }

    @Test func badInputIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let runtime = try await manager.runtime(for: try await manager.create(key: key("bad")).workspace.key)
            for request in [
                SpawnRequest(command: "no-such-program"), SpawnRequest(command: "ls", cwd: "/does/not/exist"),
                SpawnRequest(command: "ls", env: ["A=B": "1"]), SpawnRequest(command: ""), SpawnRequest(command: "echo", args: ["a\0b"]),
            ] {
                await #expect(throws: AgentBoxError.self, "\(request)") { try await runtime.spawn(request) }
            }
            for request in [
                ExecRequest(command: ""), ExecRequest(command: "true", timeoutMs: 0), ExecRequest(command: "true", maxOutputBytes: -1),
                ExecRequest(command: "true", cwd: "/nope"),
            ] {
                await #expect(throws: AgentBoxError.self, "\(request)") { try await runtime.exec(request) }
            }
            await #expect(throws: AgentBoxError.self) { try await runtime.process("proc_doesnotexist") }
            #expect(try await runtime.exec(ExecRequest(command: "no-such-program")).exitCode == 127, "a shell reports a missing command as 127")
            await manager.shutdown()
        }
    }
}

@Suite("Sandbox lifecycle", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct SandboxLifecycleTests {
    @Test func aRunningProcessHoldsTheWorkspaceAwake() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, idleGrace: .milliseconds(100))
            let runtime = try await manager.runtime(for: try await manager.create(key: key("awake")).workspace.key)
            let events = await runtime.events()
            let process = try await runtime.spawn(SpawnRequest(command: "sleep", args: ["1"]))
            try await Task.sleep(for: .milliseconds(500))
            #expect(runtime.snapshot.state == .running, "the process holds it awake past the grace")
            _ = try await runtime.wait(process.id, timeout: .seconds(10))
            for await envelope in events where envelope.event.name == "vmShutdown" { break }
            #expect(runtime.snapshot.state == .sleeping, "an exited process no longer holds it")
            await manager.shutdown()
        }
    }

    @Test func sleepKillsEveryProcessAndLeavesNoOrphan() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.run("orphans", "touch /workspace/marker; (setsid sleep 300 &); nohup sleep 301 >/dev/null 2>&1 &")
            let runtime = try await manager.runtime(for: key("orphans"))
            // Its processes run as its range's root on the host (root inside).
            let root = runtime.hostUID - WorkspaceIDs.agent
            #expect(!hostProcesses(uid: root).isEmpty)
            _ = try await manager.sleep(key: key("orphans"))
            // On a pool, the sandbox may be parked: then its init waits, alone, for the next wake.
            let left = hostProcesses(uid: root).filter { !(KernelFile.read("/proc/\($0)/cmdline") ?? "").hasPrefix("/.agentbox/init\0") }
            #expect(left.isEmpty, "nothing of the workspace runs on the host after sleep")
            // Files persist and the next action wakes it.
            let again = try await manager.run("orphans", "ls /workspace")
            #expect(again.stdout.contains("marker"))
            await manager.shutdown()
            #expect(hostProcesses(uid: root).isEmpty, "nor after shutdown")
        }
    }

    @Test func filesSurviveSleepAndARestart() async throws {
        try await withTemporaryDirectory { directory in
            do {
                let manager = try makeManager(directory)
                _ = try await manager.run("persist", "echo kept > /workspace/a; echo home > ~/b")
                await manager.shutdown()
            }
            let manager = try makeManager(directory)
            let result = try await manager.run("persist", "cat /workspace/a ~/b")
            #expect(result.stdout == "kept\nhome\n")
            await manager.shutdown()
        }
    }

    @Test func theUnsandboxedBackendRunsProcessesAndKillsThemOnSleep() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, kind: .unsandboxed)
            let result = try await manager.run("dev", "echo $HOME; pwd; sleep 200 & echo $!")
            #expect(result.stdout.contains(directory.path), "runs in the workspace's host directory: \(result.stdout)")
            let pid = Int32(result.stdout.split(separator: "\n").last.map(String.init) ?? "") ?? -1
            #expect(pid > 0 && isAlive(pid))
            _ = try await manager.sleep(key: key("dev"))
            #expect(!isAlive(pid), "the background process died with the workspace")
            #expect(kill(getpid(), 0) == 0, "and nothing else did")
            await manager.shutdown()
        }
    }
}
