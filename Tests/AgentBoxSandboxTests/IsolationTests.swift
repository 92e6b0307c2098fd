import AgentBox
import AgentBoxSandbox
import AgentBoxAPI
import Foundation
import Testing

@Suite("Sandbox isolation", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct IsolationTests {
    @Test func hostSecretsAreInvisible() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let result = try await manager.run(
                "iso", "cat /etc/shadow; readlink /root; ls -A /root; ls /home; test -e /opt/swift && echo SWIFT; cat /etc/passwd")
            #expect(result.stderr.contains("/etc/shadow: No such file"))
            #expect(result.stdout.hasPrefix("home/agent\n"), "root's home is the workspace's own home: \(result.stdout)")
            let hostRoot = (try? FileManager.default.contentsOfDirectory(atPath: "/root")) ?? []
            for name in hostRoot where name.hasPrefix(".") && name.count > 3 {
                #expect(!result.stdout.contains("\n\(name)\n"), "the host's /root/\(name) is not shown")
            }
            #expect(!result.stdout.contains("SWIFT"), "/opt is not part of the sandbox")
            #expect(result.stdout.contains("agent:x:1000:1000:AgentBox agent"))
            // The host's people (uids from 1000 up) are not listed; its system accounts are, as on any Debian.
            for line in ((try? String(contentsOfFile: "/etc/passwd", encoding: .utf8)) ?? "").split(separator: "\n") {
                let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                if fields.count == 7, let uid = Int(fields[2]), uid >= 1000, uid != 65534 {
                    #expect(!result.stdout.contains(String(line)), "host account \(fields[0]) is not shown")
                }
            }
            await manager.shutdown()
        }
    }

    /// The sandbox /etc holds copies of public host files only: what only root may read stays behind.
    @Test func etcHoldsOnlyPublicHostFiles() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let result = try await manager.run(
                "etc", "test -d /etc/ssl/certs && echo CERTS; test -e /etc/ssl/private && echo PRIVATE; ls /etc; cat /etc/ld.so.conf")
            #expect(result.stdout.contains("CERTS") == FileManager.default.fileExists(atPath: "/etc/ssl/certs"))
            #expect(!result.stdout.contains("PRIVATE"), "/etc/ssl/private (mode 0700 on Debian) is not copied")
            #expect(!result.stdout.contains("shadow"))
            #expect(!result.stdout.contains("sudoers"))
            if let hostConf = try? String(contentsOfFile: "/etc/ld.so.conf", encoding: .utf8) {
                #expect(result.stdout.contains(hostConf), "the copy has the host's content")
            }
            await manager.shutdown()
        }
    }

    @Test func anotherWorkspaceIsInvisible() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.run("a", "echo secret > /workspace/a-only.txt && sleep 30 &")
            // The names are built at run time, so that b's own command line (which ps shows) does not hold them.
            let b = try await manager.run("b", "N=a-only; ls /workspace; cat /workspace/$N.txt; find / -name \"$N*\" 2>/dev/null")
            #expect(!b.stdout.contains("a-only.txt"))
            #expect(!b.stdout.contains("secret"))
            let processes = try await manager.run("b", "ps ax -o args=")
            #expect(!processes.stdout.contains("sleep 30"), "a's processes are not visible from b: \(processes.stdout)")
            await manager.shutdown()
        }
    }

    @Test func hostProcessesAreInvisible() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let result = try await manager.run("pids", "ps -e -o pid=,args=")
            let lines = result.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(lines.first?.hasPrefix("1 /.agentbox/init") == true, "\(lines)")
            #expect(lines.count <= 4, "only the sandbox's own processes: \(lines)")
            #expect(!result.stdout.contains("agentbox serve") && !result.stdout.contains("PackageTests"), "the server is not visible")
            await manager.shutdown()
        }
    }

    /// Root inside, nobody outside: the workspace's processes are uid 0 of its own user namespace with a small set
    /// of capabilities that act in it only; what they write to /usr and /etc lands in the workspace's system layer,
    /// never in the host's.
    @Test func rootInsideHasTheSystemToItselfAndNoPowerOutside() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let marker = "agentbox-isolation-\(UInt32.random(in: 0...UInt32.max))"
            let result = try await manager.run(
                "ro",
                "touch /usr/\(marker) /etc/\(marker) && echo system-writable; id -u; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status; cat /proc/self/uid_map; mount -t tmpfs none /tmp 2>&1; echo mount=$?; unshare -U true 2>&1; echo unshare=$?; touch /workspace/ok /home/agent/ok /tmp/ok && echo writable")
            #expect(result.stdout.contains("system-writable"), "\(result)")
            #expect(!FileManager.default.fileExists(atPath: "/usr/\(marker)"), "the host's /usr is unchanged")
            #expect(!FileManager.default.fileExists(atPath: "/etc/\(marker)"), "the host's /etc is unchanged")
            #expect(result.stdout.hasPrefix("system-writable\n0\n"))
            // chown, dac_override, fowner, fsetid, kill, setgid, setuid, setpcap, net_bind_service, setfcap: no
            // sys_admin, net_admin, sys_ptrace, sys_module, mknod, net_raw...
            for set in ["CapEff", "CapPrm", "CapBnd"] {
                #expect(result.stdout.contains("\(set):\t00000000800005fb"), "\(set): \(result.stdout)")
            }
            #expect(result.stdout.contains("NoNewPrivs:\t1"))
            // uid 0 inside is an unprivileged host uid outside, not the host's root.
            let map = result.stdout.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("0 ") }
            let outside = map.flatMap { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first }.flatMap { UInt32($0) }
            #expect(outside != nil && outside != 0, "\(result.stdout)")
            #expect(result.stdout.contains("mount=32") || result.stdout.contains("mount=1"), "\(result.stdout)")
            #expect(!result.stdout.contains("unshare=0"), "no nested user namespaces")
            #expect(result.stdout.contains("writable"))
            await manager.shutdown()
        }
    }


    @Test func sandboxProcessesAreNotRootOnTheHost() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.run("uid", "touch /workspace/mine; sleep 30 &")
            let runtime = try await manager.runtime(for: key("uid"))
            var info = stat()
            #expect(stat(runtime.directory.appendingPathComponent("workspace/mine").path, &info) == 0)
            #expect(info.st_uid >= 200_000, "files written inside belong to an unprivileged host uid, not root")
            // On disk they carry the storage range's ids, which no process runs as (an escaped process owns no
            // workspace's files, its own included); its processes run as the workspace's own range.
            #expect(runtime.diskIDs.inside(info.st_uid) == 0, "root's file inside is the storage range's root: \(info.st_uid)")
            #expect(hostProcesses(uid: info.st_uid).isEmpty, "no process runs as the storage ids")
            #expect(!hostProcesses(uid: runtime.hostUID - WorkspaceIDs.agent).isEmpty, "its processes run as its own range's root on the host")
            await manager.shutdown()
        }
    }

    @Test func thereIsNoRouteOut() async throws {
        try await withTemporaryDirectory { directory in
            // A server on the host's loopback, which the sandbox must not reach.
            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(listener) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            listen(listener, 4)
            var bound = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(listener, $0, &length) } }
            let port = Int(UInt16(bigEndian: bound.sin_port))

            let manager = try makeManager(directory)
            let script = """
                import socket
                s = socket.socket(); s.settimeout(2)
                try:
                    s.connect(("127.0.0.1", \(port))); print("CONNECTED")
                except OSError as e:
                    print("refused", e.errno)
                """
            let runtime = try await manager.runtime(for: try await manager.create(key: key("net")).workspace.key)
            let result = try await runtime.exec(ExecRequest(command: "python3 -; ip -o link; echo routes:; ip route; ip -6 route", stdin: script))
            #expect(!result.stdout.contains("CONNECTED"), "the host's loopback is not the sandbox's: \(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("refused"))
            let links = result.stdout.split(separator: "\n").filter { $0.contains(": <") }
            #expect(links.count == 1 && links[0].contains("lo:"), "loopback is the only interface: \(links)")
            let routes = result.stdout.components(separatedBy: "routes:").last ?? ""
            #expect(!routes.contains("default") && !routes.contains("via"), "no route leaves the sandbox: \(routes)")
            await manager.shutdown()
        }
    }

    /// The supervisor (PID 1) runs as the workspace's uid, so only its being non-dumpable keeps the workspace from
    /// attaching to it (and stopping it, or writing forged replies), reading its memory and environment, and opening
    /// its descriptors, the reply pipe among them. What it starts is dumpable as usual, and holds only its stdio.
    @Test func theSupervisorCannotBeTracedOrRead() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let script = """
                import ctypes, errno, os
                libc = ctypes.CDLL(None, use_errno=True)
                def attempt(name, action):
                    try:
                        action()
                        print(name, "OK")
                    except OSError as error:
                        print(name, errno.errorcode[error.errno])
                def attach():
                    if libc.ptrace(16, 1, 0, 0) != 0:  # PTRACE_ATTACH
                        raise OSError(ctypes.get_errno(), "ptrace")
                    os.waitpid(1, 0x40000000)  # __WALL: the attach stop
                    libc.ptrace(17, 1, 0, 0)  # PTRACE_DETACH: let the supervisor run on
                attempt("attach", attach)
                attempt("mem", lambda: open("/proc/1/mem", "rb").close())
                attempt("fd", lambda: os.listdir("/proc/1/fd"))
                attempt("environ", lambda: open("/proc/1/environ", "rb").read())
                attempt("replies", lambda: open("/proc/1/fd/1", "wb").close())
                print("dumpable", libc.prctl(3, 0, 0, 0, 0))  # PR_GET_DUMPABLE
                for fd in os.listdir("/proc/self/fd"):
                    if int(fd) > 2:
                        print("descriptor", fd, os.readlink("/proc/self/fd/" + fd))
                """
            let result = try await manager.run("trace", "python3 - <<'EOF'\n\(script)\nEOF\necho alive")
            #expect(result.stdout.contains("attach EPERM"), "\(result.stdout)\(result.stderr)")
            // Root of the workspace may list the numbers of its own init's descriptors, not open or follow them.
            for name in ["mem", "environ", "replies"] {
                #expect(result.stdout.contains("\(name) EACCES"), "\(name): \(result.stdout)")
            }
            #expect(result.stdout.contains("dumpable 1"), "what the supervisor starts is dumpable")
            let descriptors = result.stdout.split(separator: "\n").filter { $0.hasPrefix("descriptor") }
            #expect(descriptors.allSatisfy { $0.hasSuffix("/fd") }, "only stdio and the listing itself: \(descriptors)")
            #expect(try await manager.run("trace", "echo still").stdout == "still\n", "the supervisor still answers")
            await manager.shutdown()
        }
    }
}

@Suite("Sandbox set-up", .enabled(if: Host.canSandbox, "needs bubblewrap and root"))
struct SandboxSetUpTests {
    @Test func aDataDirectoryTheWorkspaceUidsCannotEnterIsRefusedAtStartUp() async throws {
        try await withTemporaryDirectory { directory in
            let closed = directory.appendingPathComponent("closed")
            try FileManager.default.createDirectory(at: closed, withIntermediateDirectories: true)
            chmod(closed.path, 0o700)
            do {
                _ = try SandboxKind.linux.makeBackend(dataDirectory: closed.appendingPathComponent("data"))
                Issue.record("a data directory under a 0700 directory was accepted")
            } catch {
                #expect("\(error)".contains("cannot enter \(closed.path)"), "\(error)")
            }
        }
    }
}
