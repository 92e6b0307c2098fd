import AgentBox
import AgentBoxAPI
import AgentBoxSandbox
import Foundation
import Testing

@Suite("Sandbox limits", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(3)))
struct LimitsTests {
    @Test func anOutOfMemoryKillStaysInsideTheWorkspace() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let small = WorkspaceConfig(limits: WorkspaceLimits(memoryMb: 256))
            let hog = try await manager.run("hog", "python3 -c 'b = bytearray(3 << 30); print(len(b))'", config: small)
            #expect(hog.exitCode != 0, "a 3 GB allocation cannot succeed in 256 MB: \(hog)")
            #expect(!hog.stdout.contains("3221225472"))
            // The workspace itself survives (its supervisor is spared by the OOM killer) and so does the server.
            let after = try await manager.run("hog", "echo still here")
            #expect(after.stdout == "still here\n")
            #expect(try await manager.run("neighbour", "echo fine").stdout == "fine\n")
            await manager.shutdown()
        }
    }

    @Test func aForkBombIsContainedWhileANeighbourKeepsWorking() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.create(key: key("bomb"), config: WorkspaceConfig(limits: WorkspaceLimits(cpuPercent: 50, pids: 64)))
            _ = try await manager.run("calm", "true")
            let bomb = Task {
                try await manager.runtime(for: key("bomb")).exec(ExecRequest(command: "(bomb() { bomb | bomb & }; bomb) 2>/dev/null & exec sleep 5", timeoutMs: 4000))
            }
            try await Task.sleep(for: .milliseconds(800))
            for _ in 0..<5 {
                let neighbour = try await manager.run("calm", "echo alive")
                #expect(neighbour.stdout == "alive\n" && neighbour.exitCode == 0)
            }
            let count = try await manager.run("bomb", "ls /proc | grep -c '^[0-9]'")
            #expect((Int(count.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) <= 64, "pids limit holds: \(count)")
            let result = try await bomb.value
            // The shell forks once, before the bomb fills the pids limit, then execs sleep (dash exits when one of its
            // own forks fails, which under the bomb happened now and then): the timeout, not the bomb, ends it.
            #expect(result.timedOut, "\(result)")
            let after = try await manager.run("bomb", "echo recovered")
            #expect(after.stdout == "recovered\n", "\(after)")
            await manager.shutdown()
        }
    }
}

@Suite("Descriptor limit", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct DescriptorLimitTests {
    /// The server raises its own limit on open files (root: to the kernel's most), which bounds how many workspaces it
    /// keeps awake; the workspaces' programs keep the limit the process started with.
    @Test func theServerRaisesItsLimitAndItsWorkspacesKeepTheOneItStartedWith() async throws {
        var start = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &start) == 0)
        let outcome = DescriptorLimit.raise()
        let kernelMost = Int(try String(contentsOfFile: "/proc/sys/fs/nr_open", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        // Raising the hard limit takes CAP_SYS_RESOURCE, which root has unless its container takes it away (as this
        // project's machine does); without it, the soft limit goes up to the hard one.
        let expected = hasCapability(24) ? max(Int(start.rlim_max), min(kernelMost, 1 << 20)) : Int(start.rlim_max)
        #expect(outcome.limit == expected, "\(outcome)")
        #expect(outcome.sandboxes == Int(start.rlim_max))
        var now = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &now) == 0)
        #expect(Int(now.rlim_cur) == outcome.limit && Int(now.rlim_max) == outcome.limit)
        // Called again (a second server in one process), it changes nothing and says the same.
        let again = DescriptorLimit.raise()
        #expect(again.before == outcome.limit && again.limit == outcome.limit && again.sandboxes == outcome.sandboxes, "\(again)")
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let limits = try await manager.run("limits", "ulimit -n; ulimit -Hn")
            #expect(limits.stdout == "\(start.rlim_max)\n\(start.rlim_max)\n", "\(limits)")
            await manager.shutdown()
        }
    }
}

/// Whether this process has capability `bit` in its effective set (`CapEff` of /proc/self/status).
func hasCapability(_ bit: Int) -> Bool {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("CapEff:") }
    let mask = line.flatMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) } ?? 0
    return mask & (1 << UInt64(bit)) != 0
}
