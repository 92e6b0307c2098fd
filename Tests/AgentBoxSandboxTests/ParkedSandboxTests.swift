@testable import AgentBox
import AgentBoxAPI
@testable import AgentBoxSandbox
import Foundation
import Testing

/// Parked sandboxes (issue 28): a sleeping workspace keeps its sandbox with no process in it, and its wake only starts
/// processes there. What the wake finds must be what a new sandbox has, but for the workspace's files; whatever cannot
/// be given back stops the sandbox as before; a parked sandbox goes with its workspace, a changed configuration, the
/// capacity, and the server.
@Suite("Parked sandboxes", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct ParkedSandboxTests {
    /// A manager with one pre-started sandbox kept ready and up to `parked` parked ones, its pool refilled by its
    /// background work while `body` runs; shut down afterwards.
    func withParkingManager<T>(
        _ directory: URL, parked: Int = 4, allowHostMounts: [String] = [], _ body: (WorkspaceManager, BubblewrapBackend) async throws -> T
    ) async throws -> T {
        let manager = try makeManager(
            directory, allowHostMounts: allowHostMounts, sandboxPool: 2, prestartedSandboxes: true, parkedSandboxes: parked)
        let backend = try #require(manager.configuration.sandbox as? BubblewrapBackend)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await manager.runBackgroundWork() }
            defer { group.cancelAll() }
            try await Self.waitForThePool(backend)
            let result = try await body(manager, backend)
            await manager.shutdown()
            return result
        }
    }

    /// Waits (by deadline) until the pool holds a pre-started sandbox: only those park, and a boot that finds the
    /// pool empty starts its own with bwrap.
    static func waitForThePool(_ backend: BubblewrapBackend) async throws {
        let pool = try #require(backend.pool)
        let deadline = ContinuousClock.now + .seconds(20)
        while pool.readyCount == 0 {
            guard ContinuousClock.now < deadline else {
                Issue.record("the pool is still empty after 20 s")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// The sandbox's PID namespace, as its processes see it: the same one after a wake means the parked sandbox.
    static let namespace = "readlink /proc/self/ns/pid"

    /// The inode of the socket listening on 127.0.0.1:3128 (the egress proxy's), from the sandbox's /proc/net/tcp.
    static let proxySocket = "awk '$2 == \"0100007F:0C38\" && $4 == \"0A\" { print $10 }' /proc/net/tcp"

    /// Asks the egress proxy (127.0.0.1:3128 in the sandbox) for a page; prints its status line.
    static let askTheProxy = """
        python3 -c "import socket; s = socket.create_connection(('127.0.0.1', 3128), timeout=5); \
        s.sendall(b'GET http://blocked.example/ HTTP/1.1\\r\\nHost: blocked.example\\r\\n\\r\\n'); print(s.recv(64).split(b'\\r')[0].decode())"
        """

    @Test func aWakeTakesBackTheSandboxWithNothingLeftOfTheLastBootButTheFiles() async throws {
        try await withTemporaryDirectory { directory in
            try await withParkingManager(directory) { manager, backend in
                let before = try await manager.run(
                    "p",
                    """
                    echo kept > /workspace/kept; echo x > /tmp/t; mkdir -p /run/a/b; touch /run/a/b/c /made-in-root /dev/shm/s /var/tmp/v
                    chmod 700 /tmp; chmod 700 /run; ln -s /workspace /tmp/link
                    setsid sh -c 'sleep 600 & sleep 600' </dev/null >/dev/null 2>&1 &
                    sleep 600 </dev/null >/dev/null 2>&1 &
                    \(Self.namespace)
                    """)
                #expect(before.exitCode == 0, "\(before.stderr)")
                let namespace = before.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(hostProcesses(inPIDNamespace: namespace).count >= 3, "the init and the sleeps run")

                _ = try await manager.sleep(key: key("p"))
                #expect(backend.parkedSandboxCount == 1, "the sleep parked the sandbox")
                let scraped = String(decoding: try #require(try await manager.prometheusText()), as: UTF8.self)
                #expect(scraped.contains("\nagentbox_parked_sandboxes 1"), "the gauge shows it")
                #expect(hostProcesses(inPIDNamespace: namespace).count == 1, "only its init is left: \(hostProcesses(inPIDNamespace: namespace))")

                let after = try await manager.run(
                    "p",
                    """
                    \(Self.namespace); for d in /tmp /run /dev/shm /var/tmp; do echo "$d:$(ls -A $d)"; done
                    stat -c '%a %U' /tmp /run /var/tmp; ls /made-in-root 2>&1
                    cat /workspace/kept; ps -e -o comm= | sort | tr '\\n' ' '
                    """)
                #expect(backend.parkedSandboxReuses == 1 && backend.parkedSandboxCount == 0, "the wake took it back")
                let lines = after.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                #expect(lines.first == namespace, "the same sandbox: \(after.stdout)")
                for empty in ["/tmp:", "/run:", "/dev/shm:", "/var/tmp:"] {
                    #expect(lines.contains(empty), "\(empty) is empty again: \(after.stdout)")
                }
                #expect(after.stdout.contains("1777 root\n755 root\n1777 root\n"), "modes as built: \(after.stdout)")
                #expect(after.stdout.contains("No such file"), "what was made in / is gone: \(after.stdout)")
                #expect(after.stdout.contains("kept\n"), "the workspace's files stay")
                #expect(!after.stdout.contains("sleep"), "nothing of the last boot runs: \(after.stdout)")

                // And it parks again, as often as it sleeps; the egress proxy's listening socket, kept with it across
                // the sleep, answers the next boot's processes (a refusal: the policy denies all).
                _ = try await manager.sleep(key: key("p"))
                let third = try await manager.run("p", "\(Self.namespace); \(Self.askTheProxy)")
                #expect(third.stdout.hasPrefix(namespace + "\n") && backend.parkedSandboxReuses == 2, "\(third.stdout)")
                #expect(third.stdout.contains("HTTP/1.1 403"), "\(third.stdout) \(third.stderr)")
                let listening = try await manager.run("p", Self.proxySocket).stdout
                #expect(!listening.isEmpty)
                _ = try await manager.sleep(key: key("p"))
                let fourth = try await manager.run("p", Self.askTheProxy)
                #expect(fourth.stdout.contains("HTTP/1.1 403") && backend.parkedSandboxReuses == 3, "\(fourth.stdout) \(fourth.stderr)")
                #expect(try await manager.run("p", Self.proxySocket).stdout == listening, "the very socket of the last boot")
            }
        }
    }

    /// POSIX message queues go at the park (through the mqueue file system the init mounted, detached); a host
    /// directory bound from a host tmpfs is the host's, never walked: what the workspace wrote there stays.
    @Test func messageQueuesGoAndHostTmpfsMountsStay() async throws {
        try await withTemporaryDirectory { directory in
            let shared = URL(fileURLWithPath: "/dev/shm/agentbox-park-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: shared, withIntermediateDirectories: true)
            chmod(shared.path, 0o777)
            defer { try? FileManager.default.removeItem(at: shared) }
            try await withParkingManager(directory, allowHostMounts: [shared.path]) { manager, backend in
                let config = WorkspaceConfig(mounts: [WorkspaceMount(type: .host, path: "/shared", hostPath: shared.path, readOnly: false)])
                let queue = "import ctypes, os; c = ctypes.CDLL(None, use_errno=True); q = c.mq_open(b'/kept', %s, 0o600, None); print(q >= 0)"
                let before = try await manager.run(
                    "m", "python3 -c \"\(queue.replacingOccurrences(of: "%s", with: "os.O_CREAT | os.O_RDWR"))\"; echo mine > /shared/written; \(Self.namespace)",
                    config: config)
                #expect(before.stdout.hasPrefix("True\n"), "\(before.stdout) \(before.stderr)")
                _ = try await manager.sleep(key: key("m"))
                #expect(backend.parkedSandboxCount == 1, "parked")
                let listing = (try? FileManager.default.contentsOfDirectory(atPath: shared.path)) ?? []
                #expect((try? String(contentsOf: shared.appendingPathComponent("written"), encoding: .utf8)) == "mine\n", "the host's file stays: \(listing) \(before.stdout) \(before.stderr)")
                let after = try await manager.run("m", "python3 -c \"\(queue.replacingOccurrences(of: "%s", with: "os.O_RDWR"))\"; \(Self.namespace)")
                #expect(backend.parkedSandboxReuses == 1)
                #expect(after.stdout.hasPrefix("False\n"), "the queue is gone: \(after.stdout) \(after.stderr)")
            }
        }
    }

    /// A tmpfs that a later mount hides (a host directory bound over its parent) is not the init's any more at its
    /// path: the sandbox does not park (it is stopped), and what the workspace wrote to the host there stays.
    @Test func aTmpfsHiddenByALaterHostMountIsNeverWalked() async throws {
        try await withTemporaryDirectory { directory in
            let host = directory.appendingPathComponent("hostdata", isDirectory: true)
            try FileManager.default.createDirectory(at: host.appendingPathComponent("x"), withIntermediateDirectories: true)
            chmod(host.path, 0o777)
            chmod(host.appendingPathComponent("x").path, 0o777)
            try await withParkingManager(directory, allowHostMounts: [host.path]) { manager, backend in
                let config = WorkspaceConfig(mounts: [
                    WorkspaceMount(type: .tmpfs, path: "/data/x", sizeMb: 4),
                    WorkspaceMount(type: .host, path: "/data", hostPath: host.path, readOnly: false),
                ])
                let run = try await manager.run("hidden", "echo mine > /data/x/written", config: config)
                #expect(run.exitCode == 0, "\(run.stderr)")
                _ = try await manager.sleep(key: key("hidden"))
                #expect(backend.parkedSandboxCount == 0, "not parked")
                #expect((try? String(contentsOf: host.appendingPathComponent("x/written"), encoding: .utf8)) == "mine\n")
            }
        }
    }

    /// Nothing starts in a parked sandbox: neither through the boot's sandbox that parked (a request that held it
    /// across the sleep), nor through its supervisor, until the next boot takes it back.
    @Test func aParkedSandboxStartsNothingUntilItsWorkspaceWakes() async throws {
        try await withTemporaryDirectory { directory in
            try await withParkingManager(directory) { manager, backend in
                _ = try await manager.run("n", "true")
                let runtime = try await manager.runtime(for: key("n"))
                let held = try #require(await runtime.sandbox as? LinuxSandbox)
                _ = try await manager.sleep(key: key("n"))
                #expect(backend.parkedSandboxCount == 1)
                let spec = SandboxProcessSpec(arguments: ["/bin/sleep", "600"], environment: [:], workingDirectory: "/")
                await #expect(throws: SandboxError.self) { _ = try await held.spawn(spec) }
                await #expect(throws: SandboxError.self) { _ = try await held.spawnTerminal(spec, cols: 80, rows: 24) }
                await #expect(throws: SandboxError.self) { _ = try await SandboxProcess.start(spec, supervisor: held.supervisor) }
                let woken = try await manager.run("n", "ps -e -o comm= | grep -c sleep || true")
                #expect(woken.stdout == "0\n", "the same sandbox, and nothing was started in it: \(woken.stdout)")
                #expect(backend.parkedSandboxReuses == 1)
                await #expect(throws: SandboxError.self) { _ = try await held.spawn(spec) }
            }
        }
    }

    /// System V IPC objects (which the sandbox's root may not remove) and a replaced entry of /dev cannot be given
    /// back: those sandboxes are stopped, and the wake binds a new one, which has neither.
    @Test(arguments: [
        "ipcmk -M 4096 >/dev/null", "rm /dev/stdout && ln -s /dev/null /dev/stdout",
        "rm /dev/fd && ln -s /proc/self/fd/9 /dev/fd",
        "python3 -c \"import os; os.setxattr('/tmp', 'user.kept', b'1')\"",
        "python3 -c 'import resource; resource.prlimit(1, resource.RLIMIT_NOFILE, (64, 64))'",
        "chmod 777 /dev/pts/ptmx",
        // /dev and /tmp are directories of the root's tmpfs, which its root may move: another one in their place is
        // not the one recorded, and the moved /dev cannot be removed (the devices bound in it).
        "mv /dev /dev.old && mkdir /dev && ln -s /dev.old/null /dev/null",
        "mv /tmp /tmp.old && mkdir -m 1777 /tmp",
        // A file that cannot be removed (its path is past PATH_MAX; 15 levels below /tmp, which the walk of the root
        // reaches 17 deep: glibc's nftw goes on past its 16 open directories)
        // whose name holds a newline and a reply: not given back. The park no longer names the file on the output pipe
        // (a name is the workspace's; this path is too long for a line anyway, and the sandbox used to be stopped as
        // compromised for it).
        "cd /tmp && python3 -c \"import os\nfor _ in range(15): os.mkdir('d' * 255); os.chdir('d' * 255)\nopen('y' * 246 + '\\nparked\\n', 'w').close()\"",
    ])
    func whatCannotBeGivenBackStopsTheSandbox(leftover: String) async throws {
        try await withTemporaryDirectory { directory in
            try await withParkingManager(directory) { manager, backend in
                let before = try await manager.run("q", "\(leftover); \(Self.namespace)")
                #expect(before.exitCode == 0, "\(before.stderr)")
                let namespace = before.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let stopped = SandboxProcesses(namespace)
                _ = try await manager.sleep(key: key("q"))
                #expect(backend.parkedSandboxCount == 0, "not parked")
                // Stopped, as before parking existed (the kernel ends the processes of a PID namespace whose init died
                // a moment after it).
                try await waitUntilGone(stopped)
                let after = try await manager.run("q", "\(Self.namespace); ipcs -m | grep -c 0x || true; readlink /dev/stdout")
                #expect(!after.stdout.hasPrefix(namespace), "a new sandbox")
                #expect(after.stdout.contains("\n0\n/proc/self/fd/1"), "with neither: \(after.stdout)")
                #expect(backend.parkedSandboxCount == 0 || backend.parkedSandboxReuses == 0)
            }
        }
    }

    /// A parked sandbox is for its own workspace only while the directories its root was built from are the same: one
    /// replaced while it slept (as a restore would) stops it, and the wake builds a new one. Limits changed while asleep
    /// are applied to it. Destroying the workspace, more parked sandboxes than the capacity, and the server's stop end
    /// parked sandboxes.
    @Test func aParkedSandboxGoesWhenItNoLongerFits() async throws {
        try await withTemporaryDirectory { directory in
            var last: SandboxProcesses?
            try await withParkingManager(directory, parked: 2) { manager, backend in
                let first = try await manager.run("r", Self.namespace)
                let namespace = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let stale = SandboxProcesses(namespace)
                _ = try await manager.sleep(key: key("r"))
                #expect(backend.parkedSandboxCount == 1)
                // New limits while asleep: the parked sandbox is used, with them (its cgroup's, read on the host).
                _ = try await manager.create(key: key("r"), config: WorkspaceConfig(limits: WorkspaceLimits(memoryMb: 300, pids: 77)))
                let limited = try await manager.run("r", Self.namespace)
                #expect(limited.stdout.hasPrefix(namespace), "\(limited.stdout)")
                let initPID = try #require(hostProcesses(inPIDNamespace: namespace).first)
                let cgroup = try #require(
                    KernelFile.read("/proc/\(initPID)/cgroup")?.split(separator: "\n").first { $0.contains(":pids:") || $0.hasPrefix("0::") })
                let path = cgroup.split(separator: ":", maxSplits: 2).last.map(String.init) ?? ""
                let pidsMax = KernelFile.read("/sys/fs/cgroup/pids\(path)/pids.max") ?? KernelFile.read("/sys/fs/cgroup\(path)/pids.max")
                #expect(pidsMax?.trimmingCharacters(in: .whitespacesAndNewlines) == "77", "\(cgroup): \(String(describing: pidsMax))")

                // Its /usr upper directory replaced while it sleeps: a new sandbox; the parked one is stopped.
                _ = try await manager.sleep(key: key("r"))
                try replaceSystemUpperDirectory(of: try await manager.runtime(for: key("r")).directory)
                try await Self.waitForThePool(backend)
                let replaced = try await manager.run("r", Self.namespace)
                #expect(replaced.exitCode == 0 && !replaced.stdout.hasPrefix(namespace), "\(replaced.stdout) \(replaced.stderr)")
                try await waitUntilGone(stale)  // the stale one is stopped off the boot's path

                // Capacity 2: the third parked sandbox pushes out the first.
                var sandboxes: [SandboxProcesses] = []
                for name in ["s1", "s2", "s3"] {
                    try await Self.waitForThePool(backend)
                    sandboxes.append(SandboxProcesses(try await manager.run(name, Self.namespace).stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
                    _ = try await manager.sleep(key: key(name))
                }
                #expect(backend.parkedSandboxCount == 2)
                try await waitUntilGone(sandboxes[0])
                #expect(!sandboxes[1].alive.isEmpty && !sandboxes[2].alive.isEmpty)

                // Destroyed while parked: stopped before destroy returns (its init gone; the kernel ends the rest of its
                // PID namespace a moment later).
                try await manager.destroy(key: key("s2"))
                #expect(backend.parkedSandboxCount == 1)
                try await waitUntilGone(sandboxes[1])
                last = sandboxes[2]
            }
            // The server's stop ended the parked sandboxes.
            try await waitUntilGone(try #require(last))
        }
    }

    /// Waits (by deadline) until none of the processes `sandbox` had is left: a sandbox pushed out is stopped off the
    /// parking sleep's path.
    func waitUntilGone(_ sandbox: SandboxProcesses) async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        while !sandbox.alive.isEmpty {
            guard ContinuousClock.now < deadline else {
                Issue.record("\(sandbox.namespace) still has processes after 15 s: \(sandbox.alive)")
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
