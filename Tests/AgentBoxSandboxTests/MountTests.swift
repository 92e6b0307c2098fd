import AgentBox
import AgentBoxAPI
@testable import AgentBoxSandbox
import Foundation
import NIOCore
import Testing

@Suite("Mounts", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct MountTests {
    /// /tmp, /run and /dev are directories of the root's tmpfs (sticky and world-writable, 755, 755), not file
    /// systems of their own: every superblock of a sandbox costs each memory cgroup of the host a shrinker slot, so
    /// fewer of them per sandbox is less kernel memory per awake workspace. /var/tmp, under the /var layer, keeps its
    /// own tmpfs. /dev's devices and terminals still work from it.
    @Test(arguments: [false, true]) func tmpRunAndDevAreDirectoriesOfTheRootsTmpfs(prestarted: Bool) async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, sandboxPool: prestarted ? 1 : 0, prestartedSandboxes: prestarted)
            if prestarted { try #require((manager.configuration.sandbox as? BubblewrapBackend)?.pool).fillNow() }
            let result = try await manager.run(
                "roots",
                """
                stat -c '%d %a %U' / /tmp /run /var/tmp /dev; cat /proc/1/cmdline | tr '\\0' ' '; echo
                setpriv --reuid 1000 --regid 1000 --clear-groups sh -c 'echo hi > /tmp/mine && cat /tmp/mine && head -c 4 /dev/zero | wc -c && script -qc "tty" /dev/null | grep -c /dev/pts/'
                """)
            let lines = result.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(lines.count == 9, "\(result)")
            guard lines.count == 9 else { return }
            #expect(lines[5].contains("--prestarted") == prestarted, "the path under test: \(lines[5])")
            #expect(lines[1][0] == lines[0][0] && lines[2][0] == lines[0][0], "/tmp and /run on the root's file system: \(result.stdout)")
            #expect(lines[3][0] != lines[0][0], "/var/tmp its own: \(result.stdout)")
            #expect(lines[1][1...] == ["1777", "root"] && lines[2][1...] == ["755", "root"], "\(result.stdout)")
            // bwrap's --dev always mounts a tmpfs; the pre-started sandbox's /dev is a directory of the root's.
            #expect((lines[4][0] == lines[0][0]) == prestarted && lines[4][1...] == ["755", "root"], "/dev: \(result.stdout)")
            #expect(lines[6] == ["hi"], "an unprivileged user writes to /tmp: \(result)")
            #expect(lines[7] == ["4"], "/dev/zero reads: \(result)")
            #expect(lines[8] == ["1"], "a terminal on /dev/pts: \(result)")
            await manager.shutdown()
        }
    }

    @Test func aTmpfsMountIsSizedAndEmptyAfterSleep() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let config = WorkspaceConfig(mounts: [WorkspaceMount(type: .tmpfs, path: "/scratch", sizeMb: 8)])
            let first = try await manager.run("tmp", "echo kept > /scratch/a && cat /scratch/a && head -c 16000000 /dev/zero > /scratch/big; echo status=$?", config: config)
            #expect(first.stdout.hasPrefix("kept\n"))
            #expect(first.stdout.contains("status=1") && first.stderr.contains("No space left"), "\(first)")
            _ = try await manager.sleep(key: key("tmp"))
            let after = try await manager.run("tmp", "ls -A /scratch | wc -l")
            #expect(after.stdout == "0\n", "in memory: empty after sleep")
            let files = try await manager.runtime(for: key("tmp")).files()
            await #expect(throws: AgentBoxError.self) { _ = try files.stat(WorkspacePath("/scratch/a")) }
            await manager.shutdown()
        }
    }

    @Test func hostMountsAreReadOnlyByDefaultAndLimitedToAllowedPrefixes() async throws {
        try await withTemporaryDirectory { directory in
            let shared = directory.appendingPathComponent("shared")
            try FileManager.default.createDirectory(at: shared.appendingPathComponent("data"), withIntermediateDirectories: true)
            try "from the host".write(to: shared.appendingPathComponent("data/readme"), atomically: true, encoding: .utf8)
            chmod(shared.appendingPathComponent("data/readme").path, 0o644)
            let manager = try makeManager(directory, allowHostMounts: [shared.path])
            let readOnly = WorkspaceConfig(mounts: [WorkspaceMount(type: .host, path: "/data", hostPath: shared.appendingPathComponent("data").path)])
            let result = try await manager.run("ro", "cat /data/readme; touch /data/x 2>&1", config: readOnly)
            #expect(result.stdout.hasPrefix("from the host"))
            #expect(result.stdout.contains("Read-only file system"))
            // The fs routes reach the mount too, read-only.
            let files = try await manager.runtime(for: key("ro")).files()
            #expect(try files.stat(WorkspacePath("/data/readme")).size == 13)
            await #expect(throws: AgentBoxError.self) { try files.makeDirectory(WorkspacePath("/data/new"), recursive: true) }

            // A writable host mount is written as the workspace's own host uid: the host directory must let it.
            chmod(shared.appendingPathComponent("data").path, 0o777)
            let writable = WorkspaceConfig(mounts: [WorkspaceMount(type: .host, path: "/mnt/out", hostPath: shared.appendingPathComponent("data").path, readOnly: false)])
            _ = try await manager.run("rw", "echo written > /mnt/out/result", config: writable)
            #expect(try String(contentsOf: shared.appendingPathComponent("data/result"), encoding: .utf8) == "written\n")

            // Refusals: outside the allowed prefix (also through a symlink), reserved places, malformed.
            try FileManager.default.createSymbolicLink(atPath: shared.appendingPathComponent("escape").path, withDestinationPath: "/etc")
            let refused: [(WorkspaceMount, AgentBoxError.Code)] = [
                (WorkspaceMount(type: .host, path: "/data", hostPath: "/etc"), .forbidden),
                (WorkspaceMount(type: .host, path: "/data", hostPath: shared.appendingPathComponent("escape").path), .forbidden),
                (WorkspaceMount(type: .host, path: "/data", hostPath: shared.path + "/../.."), .forbidden),
                (WorkspaceMount(type: .host, path: "/data", hostPath: "relative/path"), .invalidArgument),
                (WorkspaceMount(type: .host, path: "/data", hostPath: shared.appendingPathComponent("absent").path), .invalidArgument),
                (WorkspaceMount(type: .host, path: "/data"), .invalidArgument),
                (WorkspaceMount(type: .tmpfs, path: "/usr/local"), .invalidArgument),
                (WorkspaceMount(type: .tmpfs, path: "/etc"), .invalidArgument),
                (WorkspaceMount(type: .tmpfs, path: "/workspace"), .invalidArgument),
                (WorkspaceMount(type: .tmpfs, path: "/.agentbox/init"), .invalidArgument),
                (WorkspaceMount(type: .tmpfs, path: "scratch"), .invalidArgument),
                (WorkspaceMount(type: .tmpfs, path: "/scratch", sizeMb: 0), .invalidArgument),
            ]
            for (mount, code) in refused {
                do {
                    _ = try await manager.create(key: key("refused"), config: WorkspaceConfig(mounts: [mount]))
                    Issue.record("accepted \(mount)")
                } catch let error as AgentBoxError {
                    #expect(error.code == code, "\(mount): \(error)")
                }
            }
            let twice = WorkspaceConfig(mounts: [WorkspaceMount(type: .tmpfs, path: "/a"), WorkspaceMount(type: .tmpfs, path: "/a/")])
            await #expect(throws: AgentBoxError.self) { _ = try await manager.create(key: key("twice"), config: twice) }
            await manager.shutdown()
        }
    }

    /// Hole 5 of #17: the allowed directory is swapped for a symlink to `/` while the workspace sleeps (by anyone who
    /// can write beside it: here the test, standing in for a workspace with a writable mount of the parent). The next
    /// boot refuses the mount instead of following the symlink, and says why with a 409.
    @Test func aHostMountSwappedForASymlinkWhileAsleepIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let shared = directory.appendingPathComponent("shared")
            let data = shared.appendingPathComponent("data")
            try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
            try "mine".write(to: data.appendingPathComponent("readme"), atomically: true, encoding: .utf8)
            chmod(data.appendingPathComponent("readme").path, 0o644)
            let manager = try makeManager(directory, allowHostMounts: [shared.path])
            let config = WorkspaceConfig(mounts: [WorkspaceMount(type: .host, path: "/data", hostPath: data.path)])
            #expect(try await manager.run("swap", "cat /data/readme", config: config).stdout == "mine")
            _ = try await manager.sleep(key: key("swap"))
            try FileManager.default.moveItem(at: data, to: shared.appendingPathComponent("moved"))
            try FileManager.default.createSymbolicLink(atPath: data.path, withDestinationPath: "/")
            do {
                let escaped = try await manager.run("swap", "ls /data/etc/shadow /data/root 2>&1")
                Issue.record("booted with the symlink followed: \(escaped.stdout)")
            } catch let error as AgentBoxError {
                #expect(error.code == .conflict, "\(error)")
                #expect(error.message.contains("host mount"), "\(error)")
            }
            // A symlink higher up the path is refused the same way.
            try FileManager.default.removeItem(at: data)
            try FileManager.default.moveItem(at: shared.appendingPathComponent("moved"), to: data)
            #expect(try await manager.run("swap", "cat /data/readme").stdout == "mine", "restored, it boots again")
            await manager.shutdown()
        }
    }
}
