import AgentBoxAPI
import AgentBoxClient
import ChildProcessSupport
import Foundation
import Testing

@Suite("Processes through the real binary", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(5)))
struct ProcessEndToEndTests {
    @Test func fiftyWorkspacesTimesTwentyConcurrentExecs() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--pids", "256"])
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let workspaces = (0..<50).map { "load-\($0)" }
            for key in workspaces { _ = try await client.putWorkspace(key) }
            let failures = try await withThrowingTaskGroup(of: String?.self) { group in
                for key in workspaces {
                    for index in 0..<20 {
                        group.addTask {
                            do {
                                let result = try await client.exec(key, command: "echo \(key)-\(index)")
                                return result.exitCode == 0 && result.stdout == "\(key)-\(index)\n" ? nil : "\(key)/\(index): \(result)"
                            } catch {
                                return "\(key)/\(index): \(error)"
                            }
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { if let failure = $1 { $0.append(failure) } }
            }
            #expect(failures.isEmpty, "\(failures.count) of 1000 failed; first: \(failures.prefix(3))")
            let running = try await client.allWorkspaces().filter { $0.state == .running }.count
            #expect(running == 50)
            #expect(await server.stop() == 0)
        }
    }

    /// An exec's answer as large as its maxOutputBytes allows is read whole: 12 MB of NUL bytes is 72 MB of JSON
    /// (`\u0000`), past the 64 MiB the client read of any answer (it failed with a raw NIOTooManyBytesError).
    @Test func anExecAnswerAsLargeAsItsLimitAllowsIsRead() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("big")
            let result = try await client.exec("big", ExecRequest(command: "head -c 12000000 /dev/zero", maxOutputBytes: 32 << 20))
            #expect(result.stdoutBytes.count == 12_000_000 && !result.truncated)
            await server.stop()
        }
    }

    @Test func theCLIRunsCommandsAndControlsProcesses() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let environment = ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!]
            func cli(_ arguments: String...) async throws -> (status: Int32, stdout: String, stderr: String) {
                try await AgentBoxBinary.run(arguments, environment: environment)
            }
            _ = try await cli("workspaces", "create", "cli")
            let exec = try await cli("exec", "cli", "--env", "WHO=agent", "--", "echo hello $WHO; echo oops >&2; exit 5")
            #expect(exec.status == 5)
            #expect(exec.stdout == "hello agent\n" && exec.stderr.contains("oops"))
            let timedOut = try await cli("exec", "cli", "--timeout-ms", "300", "--", "sleep 30")
            #expect(timedOut.status == 137 && timedOut.stderr.contains("timed out"))

            let spawned = try await cli("spawn", "cli", "--", "sleep", "300")
            let id = spawned.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(spawned.status == 0 && id.hasPrefix("proc_"))
            let ps = try await cli("ps", "cli")
            #expect(ps.stdout.contains(id) && ps.stdout.contains("running") && ps.stdout.contains("sleep 300"))
            #expect(try await cli("kill", "cli", id, "--signal", "KILL").status == 0)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let killed = try await client.wait("cli", id, timeoutMs: 10_000)
            #expect(killed.signal == "KILL")
            let badSignal = try await cli("kill", "cli", id, "--signal", "NOPE")
            #expect(badSignal.status == 1 && badSignal.stderr.contains("signal must be one of"))
            let followed = try await cli("spawn", "cli", "--follow", "--", "sh", "-c", "echo streamed; exit 9")
            #expect(followed.status == 9 && followed.stdout == "streamed\n")
            await server.stop()
        }
    }

    /// At its most awake workspaces, the server puts the one idle longest to sleep for a wake, and refuses one with 503
    /// when each is in use (here, a shell holds it), rather than failing somewhere when its descriptors run out.
    @Test func aServerAtItsMostAwakeWorkspacesSleepsAnIdleOneOrRefusesWith503() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--max-awake", "1", "--idle-grace", "10m"])
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            for key in ["one", "two"] { _ = try await client.putWorkspace(key) }
            _ = try await client.exec("one", command: "true")
            // "one" is idle: "two"'s exec puts it to sleep first.
            #expect(try await client.exec("two", command: "echo woke").stdout == "woke\n")
            #expect(try await client.workspace("one").state == .sleeping)
            // A shell holds "two": "one" cannot wake, and the answer says why.
            let shell = try await client.openShell("two")
            let refused = await #expect(throws: AgentBoxClientError.self) { try await client.exec("one", command: "true") }
            #expect(refused?.status == 503)
            #expect(refused?.problem.detail.contains("at most 1 workspaces awake") == true, "\(refused?.problem.detail ?? "")")
            #expect(try await client.exec("two", command: "echo still").stdout == "still\n", "the awake one is untouched")
            try await client.closeShell("two", shell.id)
            #expect(try await client.exec("one", command: "echo back").stdout == "back\n")
            #expect(try await client.workspace("two").state == .sleeping)
            let invalid = try await AgentBoxBinary.run(["serve", "--max-awake", "0", "--data-dir", data.appendingPathComponent("other").path])
            #expect(invalid.status != 0 && invalid.stderr.contains("--max-awake"), "\(invalid.stderr)")
            await server.stop()
        }
    }

    /// The server raises its own limit on open files as far as it may (root: the kernel's most), since it bounds how
    /// many workspaces stay awake; a workspace's programs keep the limit the server was started with.
    @Test func theServerRaisesItsOpenFileLimitAndWorkspacesKeepTheOneItStartedWith() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            var start = rlimit()
            #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &start) == 0)
            let limits = try String(contentsOfFile: "/proc/\(server.process.processIdentifier)/limits", encoding: .utf8)
            let line = limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }.map(String.init) ?? ""
            let kernelMost = try String(contentsOfFile: "/proc/sys/fs/nr_open", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            // CAP_SYS_RESOURCE (root's, unless a container took it away) raises the hard limit too.
            let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
            let effective = status.split(separator: "\n").first { $0.hasPrefix("CapEff:") }.flatMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) } ?? 0
            let expected = effective & (1 << 24) != 0 ? String(min(Int(kernelMost)!, 1 << 20)) : String(start.rlim_max)
            #expect(Array(line.split(separator: " ").suffix(3).prefix(2)) == [Substring(expected), Substring(expected)], "\(line)")
            _ = try await client.putWorkspace("limits")
            let inside = try await client.exec("limits", command: "ulimit -n; ulimit -Hn")
            #expect(inside.stdout == "\(start.rlim_max)\n\(start.rlim_max)\n", "\(inside)")
            await server.stop()
        }
    }

    @Test func sleepingWorkspacesWakeForExecAndLeaveNothingRunning() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("nap")
            _ = try await client.exec("nap", command: "echo saved > /workspace/file; sleep 300 >/dev/null 2>&1 &")
            #expect(try await client.sleepWorkspace("nap").state == .sleeping)
            let result = try await client.exec("nap", command: "cat /workspace/file; pgrep -c -x sleep || true")
            #expect(result.stdout == "saved\n0\n", "files persist, processes do not: \(result)")
            await server.stop()
        }
    }
}
