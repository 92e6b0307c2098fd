import AgentBox
import AgentBoxAPI
import AgentBoxSandbox
import Foundation
import Testing

/// The sandbox pool (issue 28): boots take whole sandboxes started ahead (or, with `prestarted: false`, network and
/// IPC namespaces made ahead), and every isolation property holds. Each test runs with both kinds.
@Suite("Sandbox pool", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct SandboxPoolTests {
    /// A manager whose backend keeps `size` namespaces ready, with its background work (which refills the pool)
    /// running while `body` runs.
    func withPooledManager<T>(
        _ directory: URL, size: Int, prestarted: Bool, _ body: (WorkspaceManager, SandboxPool?) async throws -> T
    ) async throws -> T {
        let manager = try makeManager(directory, sandboxPool: size, prestartedSandboxes: prestarted)
        if let pool = (manager.configuration.sandbox as? BubblewrapBackend)?.pool {
            #expect((pool.kind != .namespaces) == prestarted, "this host (root, cgroups, idmapped mounts) allows both kinds")
        }
        let pool = (manager.configuration.sandbox as? BubblewrapBackend)?.pool
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await manager.runBackgroundWork() }
            defer { group.cancelAll() }
            let result = try await body(manager, pool)
            await manager.shutdown()
            return result
        }
    }

    /// Waits (by deadline) until the pool holds `count` ready entries.
    func waitUntilReady(_ pool: SandboxPool, _ count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while pool.readyCount < count {
            guard ContinuousClock.now < deadline else {
                Issue.record("the pool holds \(pool.readyCount) of \(count) after 20 s")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// What a sandbox's network tells: its namespace's inode, and the first port any uid may bind (0 in a pooled
    /// namespace, 1024 in one bwrap made).
    static let networkProbe = "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; cat /proc/sys/net/ipv4/ip_unprivileged_port_start"

    @Test(arguments: [true, false]) func pooledSandboxesAreEachTheirWorkspacesOwn(prestarted: Bool) async throws {
        try await withTemporaryDirectory { directory in
            try await withPooledManager(directory, size: 2, prestarted: prestarted) { manager, pool in
                let pool = try #require(pool)
                try await waitUntilReady(pool, 2)
                let a = try await manager.run("a", "echo a-secret > /workspace/a-only.txt; id -u; stat -c %u /workspace/a-only.txt; " + Self.networkProbe + "; sleep 30 &")
                let b = try await manager.run("b", "N=a-only; ls /workspace; cat /workspace/$N.txt; find / -name \"$N*\" 2>/dev/null; " + Self.networkProbe)
                #expect(a.exitCode == 0, "\(a.stderr)")
                let aLines = a.stdout.split(separator: "\n").map(String.init)
                let bLines = b.stdout.split(separator: "\n").map(String.init)
                #expect(aLines.first == "0", "root of its own user namespace: \(aLines)")
                #expect(aLines.last == "0" && bLines.last == "0", "both booted from the pool: \(aLines) \(bLines)")
                #expect(!b.stdout.contains("a-only") && !b.stdout.contains("a-secret"), "b sees nothing of a: \(b.stdout)")
                // Each its own network and IPC namespace, neither the host's.
                let hostNet = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
                let hostIPC = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/ipc")
                let aNamespaces = Array(aLines.dropFirst(2).prefix(2))
                let bNamespaces = Array(bLines.suffix(3).prefix(2))
                #expect(aNamespaces.count == 2 && bNamespaces.count == 2)
                #expect(Set(aNamespaces).isDisjoint(with: bNamespaces), "\(aNamespaces) \(bNamespaces)")
                #expect(!aNamespaces.contains(hostNet) && !aNamespaces.contains(hostIPC))
                // a's files belong to a's own host uids; b's processes and a's do not meet.
                let aUID = try #require(UInt32(aLines[1]))
                #expect(aUID == 0)
                let aDirectory = try await manager.runtime(for: key("a")).directory
                let bDirectory = try await manager.runtime(for: key("b")).directory
                let owner = try FileManager.default.attributesOfItem(
                    atPath: aDirectory.appendingPathComponent("workspace/a-only.txt").path)[.ownerAccountID] as? NSNumber
                let bOwner = try FileManager.default.attributesOfItem(
                    atPath: bDirectory.appendingPathComponent("workspace").path)[.ownerAccountID] as? NSNumber
                #expect(owner != nil && bOwner != nil && owner != bOwner, "a's files are a's host uid, not b's: \(String(describing: owner)) \(String(describing: bOwner))")
                let processes = try await manager.run("b", "ps ax -o args=")
                #expect(!processes.stdout.contains("sleep 30"), "a's processes are not visible from b")
                // Root of the workspace binds a port below 1024 in its namespace, as it could in one of bwrap's.
                let low = try await manager.run("a", "python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 80)); print(\"bound\")'")
                #expect(low.stdout.contains("bound"), "\(low.stderr)")
            }
        }
    }

    @Test(arguments: [true, false]) func thePoolRefillsAndHandsEachEntryOnce(prestarted: Bool) async throws {
        try await withTemporaryDirectory { directory in
            try await withPooledManager(directory, size: 3, prestarted: prestarted) { manager, pool in
                let pool = try #require(pool)
                try await waitUntilReady(pool, 3)
                for name in ["r1", "r2", "r3", "r4"] { _ = try await manager.run(name, "true") }
                try await waitUntilReady(pool, 3)
                #expect(pool.readyCount == 3, "refilled after four boots")
                // Entries taken by hand are distinct namespaces, and gone from the pool.
                let first = try #require(pool.take())
                let second = try #require(pool.take())
                #expect(pool.readyCount <= 2)
                let inodes = { (entry: SandboxPool.Entry) -> [UInt64] in
                    switch entry {
                    case .namespaces(let namespaces):
                        return [namespaces.network, namespaces.ipc].map { fd in
                            var info = stat()
                            fstat(fd, &info)
                            return UInt64(info.st_ino)
                        }
                    case .sandbox(let sandbox):
                        return ["net", "ipc", "user", "mnt", "pid"].map { name in
                            var info = stat()
                            stat("/proc/\(sandbox.initPID)/ns/\(name)", &info)
                            return UInt64(info.st_ino)
                        }
                    }
                }
                let (firstInodes, secondInodes) = (inodes(first), inodes(second))
                #expect(!firstInodes.contains(0) && Set(firstInodes).isDisjoint(with: secondInodes), "\(firstInodes) \(secondInodes)")
                try await waitUntilReady(pool, 3)
            }
        }
    }

    @Test(arguments: [true, false]) func wakingFromSleepTakesFromThePool(prestarted: Bool) async throws {
        try await withTemporaryDirectory { directory in
            try await withPooledManager(directory, size: 1, prestarted: prestarted) { manager, pool in
                let pool = try #require(pool)
                try await waitUntilReady(pool, 1)
                let first = try await manager.run("sleeper", "echo kept > /workspace/kept.txt; " + Self.networkProbe)
                #expect(first.stdout.hasSuffix("\n0\n"), "\(first.stdout)")
                try await waitUntilReady(pool, 1)
                _ = try await manager.sleep(key: key("sleeper"))
                #expect(pool.readyCount == 1)
                let woken = try await manager.run("sleeper", "cat /workspace/kept.txt; " + Self.networkProbe)
                #expect(woken.stdout.hasPrefix("kept\n") && woken.stdout.hasSuffix("\n0\n"), "woke from the pool with its files: \(woken.stdout)")
                try await waitUntilReady(pool, 1)
            }
        }
    }

    /// With no entry ready (a pool of 0, or one emptied by a burst of boots) a boot makes its own namespaces.
    @Test(arguments: [0, 1], [true, false]) func aBootWithoutAPooledEntryMakesItsOwn(size: Int, prestarted: Bool) async throws {
        try await withTemporaryDirectory { directory in
            try await withPooledManager(directory, size: size, prestarted: prestarted) { manager, pool in
                #expect((pool == nil) == (size == 0))
                if let pool {
                    try await waitUntilReady(pool, 1)
                    _ = pool.take()
                    _ = pool.take()
                }
                let result = try await manager.run("own", Self.networkProbe + "; python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 80)); print(\"bound\")'")
                #expect(result.exitCode == 0, "\(result.stderr)")
                if size == 0 {
                    #expect(result.stdout.contains("\n1024\n"), "bwrap's own namespace: \(result.stdout)")
                }
                #expect(result.stdout.contains("bound"))
            }
        }
    }

    /// What a process sees of its sandbox, without what differs from one boot to the next (times, sizes, mount ids):
    /// its ids, the root's entries, the mounts (point, options, type), its capabilities and filters, /dev, its cgroups,
    /// working directory, umask and host name.
    static let systemProbe = """
        id; pwd; umask; hostname; ulimit -n
        ls -la / /dev /.agentbox /.agentbox/bin | awk 'NF > 3 { print $1, $3, $4, $NF }'
        awk '{ for (i = 7; $i != "-"; i++) {}; print $5, $6, $(i + 1) }' /proc/self/mountinfo | sort
        grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status
        grep -E '^(Cap|NoNewPrivs|Seccomp|Uid|Gid)' /proc/1/status
        cat /proc/self/cgroup; cat /proc/self/uid_map /proc/self/gid_map | awk '{ print $1, $3 }'
        touch /made-at-root && echo root-writable; ls -ld /tmp /var/tmp /run /workspace /home/agent | awk '{ print $1, $3, $4, $NF }'
        """

    /// A sandbox bound from the pool is the sandbox bwrap would have started: the same file system, mounts, ids,
    /// capabilities, seccomp filter, cgroups and host name. One difference is known: bwrap's `--dev` mounts a tmpfs of
    /// its own at /dev, where the pre-started sandbox's /dev is a directory of the root's tmpfs (one superblock fewer).
    @Test func aPrestartedSandboxIsTheSandboxBwrapStarts() async throws {
        try await withTemporaryDirectory { directory in
            let bwrapped = try await withPooledManager(directory.appendingPathComponent("bwrap"), size: 0, prestarted: false) { manager, _ in
                try await manager.run("same", Self.systemProbe)
            }
            let bound = try await withPooledManager(directory.appendingPathComponent("pool"), size: 1, prestarted: true) { manager, pool in
                try await waitUntilReady(try #require(pool), 1)
                let result = try await manager.run("same", Self.systemProbe)
                let pid1 = try await manager.run("same", "tr '\\0' ' ' < /proc/1/cmdline")
                #expect(pid1.stdout.contains("--prestarted"), "bound from the pool, not started by bwrap: \(pid1.stdout)")
                return result
            }
            #expect(bwrapped.exitCode == 0 && bound.exitCode == 0, "\(bwrapped.stderr) \(bound.stderr)")
            let bwrapsDev = "/dev rw,nosuid,nodev,relatime tmpfs"
            #expect(bwrapped.stdout.contains(bwrapsDev) && !bound.stdout.contains(bwrapsDev), "\(bound.stdout)")
            let (a, b) = (bwrapped.stdout.split(separator: "\n").filter { $0 != bwrapsDev }, bound.stdout.split(separator: "\n"))
            #expect(a == b, "bwrap's, then the pre-started one's, where they differ: \(a.filter { !b.contains($0) }) \(b.filter { !a.contains($0) })")
            #expect(bound.stdout.contains("Seccomp:\t2") && bound.stdout.contains("NoNewPrivs:\t1") && bound.stdout.contains("root-writable"))
        }
    }

    /// A wake uses the overlays of the workspace's last boot (the same file systems: `/usr`'s device is the same, what
    /// was installed is there), unless its upper directories were replaced while it slept: then it makes new ones on
    /// the directories it finds. A destroyed workspace's overlays are let go.
    @Test(arguments: [true, false]) func aWakeKeepsItsSystemLayerWhileItsDirectoriesAreTheSame(prestarted: Bool) async throws {
        try await withTemporaryDirectory { directory in
            try await withPooledManager(directory, size: prestarted ? 1 : 0, prestarted: prestarted) { manager, pool in
                let backend = try #require(manager.configuration.sandbox as? BubblewrapBackend)
                if let pool { try await waitUntilReady(pool, 1) }
                let probe = "cat /usr/local/kept 2>/dev/null || echo none; touch /var/touched /etc/touched"
                let first = try await manager.run("layer", "echo installed > /usr/local/kept; " + probe)
                #expect(first.exitCode == 0, "\(first.stderr)")
                #expect(backend.systemLayerReuses == 0 && backend.keptSystemLayerCount == 1)
                _ = try await manager.sleep(key: key("layer"))
                if let pool { try await waitUntilReady(pool, 1) }
                let woken = try await manager.run("layer", probe + "; ls /var/touched /etc/touched")
                #expect(backend.systemLayerReuses == 1, "the wake used the overlays of the first boot")
                #expect(woken.exitCode == 0 && woken.stdout.hasPrefix("installed\n"), "\(woken.stdout) \(woken.stderr)")

                // Its /usr upper directory replaced while it sleeps (as a restore would): new overlays, on the new one.
                _ = try await manager.sleep(key: key("layer"))
                try replaceSystemUpperDirectory(of: try await manager.runtime(for: key("layer")).directory)
                if let pool { try await waitUntilReady(pool, 1) }
                let replaced = try await manager.run("layer", probe)
                #expect(replaced.exitCode == 0, "\(replaced.stderr)")
                #expect(backend.systemLayerReuses == 1, "new overlays, on the directories found")
                #expect(replaced.stdout.hasPrefix("none\n"), "what the old upper directory held is not in the new one: \(replaced.stdout)")
                let again = try await manager.run("layer", "ls /var/touched /etc/touched")
                #expect(again.exitCode == 0, "/var and /etc kept what was written through them: \(again.stderr)")

                try await manager.destroy(key: key("layer"))
                #expect(backend.keptSystemLayerCount == 0, "a destroyed workspace's overlays are let go")
            }
        }
    }
}
