import AgentBox
import AgentBoxAPI
import Foundation
import Testing

/// A system call the workspace's seccomp filter refuses, called from inside with arguments that the kernel itself would
/// answer differently (EFAULT, EBADF, EINVAL or success) wherever it can, so that the answer is the filter's.
struct RefusedCall: Sendable, CustomStringConvertible {
    let name: String
    /// The number on x86_64 and on aarch64 (`nil`: the architecture has no such call).
    let x86_64: Int?
    let aarch64: Int?
    let arguments: [Int]
    var expected = "EPERM"

    var description: String { name }

    var number: Int? {
        #if arch(x86_64)
            x86_64
        #elseif arch(arm64)
            aarch64
        #else
            nil
        #endif
    }
}

/// The table is written out here, independently of the filter's own (`seccomp.c` takes its numbers from the C
/// library's headers), so that a wrong number on either side shows.
let refusedCalls: [RefusedCall] = [
    RefusedCall(name: "io_uring_setup", x86_64: 425, aarch64: 425, arguments: [1, 0]),
    RefusedCall(name: "io_uring_enter", x86_64: 426, aarch64: 426, arguments: [-1, 0, 0, 0, 0, 0]),
    RefusedCall(name: "io_uring_register", x86_64: 427, aarch64: 427, arguments: [-1, 0, 0, 0]),
    RefusedCall(name: "keyctl", x86_64: 250, aarch64: 219, arguments: [0, -3, 0]),  // KEYCTL_GET_KEYRING_ID, session
    RefusedCall(name: "add_key", x86_64: 248, aarch64: 217, arguments: [0, 0, 0, 0, 0]),
    RefusedCall(name: "request_key", x86_64: 249, aarch64: 218, arguments: [0, 0, 0, 0]),
    RefusedCall(name: "bpf", x86_64: 321, aarch64: 280, arguments: [-1, 0, 0]),
    RefusedCall(name: "perf_event_open", x86_64: 298, aarch64: 241, arguments: [0, 0, -1, -1, 0]),
    RefusedCall(name: "userfaultfd", x86_64: 323, aarch64: 282, arguments: [1]),  // UFFD_USER_MODE_ONLY
    RefusedCall(name: "unshare(CLONE_NEWUSER)", x86_64: 272, aarch64: 97, arguments: [0x1000_0000]),
    RefusedCall(name: "unshare(CLONE_NEWNS)", x86_64: 272, aarch64: 97, arguments: [0x0002_0000]),
    RefusedCall(name: "unshare(CLONE_NEWTIME)", x86_64: 272, aarch64: 97, arguments: [0x80]),
    // CLONE_NEWNS | CLONE_FS and CLONE_NEWUSER | CLONE_THREAD are invalid: without the filter the kernel says EINVAL.
    RefusedCall(name: "clone(CLONE_NEWNS)", x86_64: 56, aarch64: 220, arguments: [0x0002_0200 | 17, 0, 0, 0, 0]),
    RefusedCall(name: "clone(CLONE_NEWUSER)", x86_64: 56, aarch64: 220, arguments: [0x1001_0000, 0, 0, 0, 0]),
    RefusedCall(name: "clone3", x86_64: 435, aarch64: 435, arguments: [0, 0], expected: "ENOSYS"),
    RefusedCall(name: "setns", x86_64: 308, aarch64: 268, arguments: [-1, 0]),
    RefusedCall(name: "mount", x86_64: 165, aarch64: 40, arguments: [0, 0, 0, 0, 0]),
    RefusedCall(name: "umount2", x86_64: 166, aarch64: 39, arguments: [0, 0]),
    RefusedCall(name: "pivot_root", x86_64: 155, aarch64: 41, arguments: [0, 0]),
    RefusedCall(name: "chroot", x86_64: 161, aarch64: 51, arguments: [0]),
    RefusedCall(name: "open_tree", x86_64: 428, aarch64: 428, arguments: [-1, 0, 0]),
    RefusedCall(name: "move_mount", x86_64: 429, aarch64: 429, arguments: [-1, 0, -1, 0, 0]),
    RefusedCall(name: "fsopen", x86_64: 430, aarch64: 430, arguments: [0, 0]),
    RefusedCall(name: "fsconfig", x86_64: 431, aarch64: 431, arguments: [-1, 0, 0, 0, 0]),
    RefusedCall(name: "fsmount", x86_64: 432, aarch64: 432, arguments: [-1, 0, 0]),
    RefusedCall(name: "fspick", x86_64: 433, aarch64: 433, arguments: [-1, 0, 0]),
    RefusedCall(name: "mount_setattr", x86_64: 442, aarch64: 442, arguments: [-1, 0, 0, 0, 0]),
    RefusedCall(name: "init_module", x86_64: 175, aarch64: 105, arguments: [0, 0, 0]),
    RefusedCall(name: "finit_module", x86_64: 313, aarch64: 273, arguments: [-1, 0, 0]),
    RefusedCall(name: "delete_module", x86_64: 176, aarch64: 106, arguments: [0, 0]),
    RefusedCall(name: "kexec_load", x86_64: 246, aarch64: 104, arguments: [0, 0, 0, 0]),
    RefusedCall(name: "kexec_file_load", x86_64: 320, aarch64: 294, arguments: [-1, -1, 0, 0, 0]),
    RefusedCall(name: "reboot", x86_64: 169, aarch64: 142, arguments: [0, 0, 0, 0]),
    RefusedCall(name: "swapon", x86_64: 167, aarch64: 224, arguments: [0, 0]),
    RefusedCall(name: "swapoff", x86_64: 168, aarch64: 225, arguments: [0]),
    RefusedCall(name: "acct", x86_64: 163, aarch64: 89, arguments: [0]),
    RefusedCall(name: "quotactl", x86_64: 179, aarch64: 60, arguments: [0, 0, 0, 0]),
    RefusedCall(name: "syslog", x86_64: 103, aarch64: 116, arguments: [10, 0, 0]),  // SYSLOG_ACTION_SIZE_BUFFER
    RefusedCall(name: "settimeofday", x86_64: 164, aarch64: 170, arguments: [0, 0]),  // a no-op without the filter
    RefusedCall(name: "clock_settime", x86_64: 227, aarch64: 112, arguments: [0, 0]),
    RefusedCall(name: "sethostname", x86_64: 170, aarch64: 161, arguments: [0, 0]),
    RefusedCall(name: "get_mempolicy", x86_64: 239, aarch64: 236, arguments: [0, 0, 0, 0, 0]),
    RefusedCall(name: "open_by_handle_at", x86_64: 304, aarch64: 265, arguments: [-1, 0, 0]),
    RefusedCall(name: "fanotify_init", x86_64: 300, aarch64: 262, arguments: [0, 0]),
    RefusedCall(name: "vhangup", x86_64: 153, aarch64: 58, arguments: []),
    RefusedCall(name: "personality(ADDR_NO_RANDOMIZE)", x86_64: 135, aarch64: 92, arguments: [0x0040000]),
    RefusedCall(name: "socket(AF_VSOCK)", x86_64: 41, aarch64: 198, arguments: [40, 1, 0]),
    RefusedCall(name: "iopl", x86_64: 172, aarch64: nil, arguments: [3]),
    RefusedCall(name: "x32 getpid", x86_64: 0x4000_0027, aarch64: nil, arguments: [], expected: "ENOSYS"),
]

@Suite("Seccomp", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct SeccompTests {
    /// Every call of the table, from inside one workspace: each fails with the filter's errno.
    @Test func dangerousCallsAreRefused() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let calls = refusedCalls.compactMap { call in call.number.map { (call, $0) } }
            let probes = calls.map { call, number in "probe(\"\(call.name)\", \(number), \([number] + call.arguments))" }
            let script = """
                import ctypes, errno
                libc = ctypes.CDLL(None, use_errno=True)
                libc.syscall.restype = ctypes.c_long
                def probe(name, number, arguments):
                    ctypes.set_errno(0)
                    result = libc.syscall(*[ctypes.c_long(value) for value in arguments])
                    print(name, "=", result if result >= 0 else errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()))
                \(probes.joined(separator: "\n"))
                """
            let result = try await manager.run("seccomp", "python3 - <<'EOF'\n\(script)\nEOF\ngrep ^Seccomp /proc/self/status")
            let answers = Dictionary(
                result.stdout.split(separator: "\n").compactMap { line -> (String, String)? in
                    let parts = line.components(separatedBy: " = ")
                    return parts.count == 2 ? (parts[0], parts[1]) : nil
                }, uniquingKeysWith: { first, _ in first })
            for (call, _) in calls {
                #expect(answers[call.name] == call.expected, "\(call.name): \(answers[call.name] ?? "no answer") \(result.stderr)")
            }
            #expect(result.stdout.contains("Seccomp:\t2"), "every process is under the filter: \(result.stdout)")
            await manager.shutdown()
        }
    }

    /// What developers run keeps working under the filter: threads, fork, clone without namespaces, git, Python, Node,
    /// a C compiler and its program, and debugging one's own processes (strace, gdb, a raw ptrace of a child).
    @Test func ordinaryWorkKeepsWorking() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            let program = """
                #include <pthread.h>
                #include <stdio.h>
                #include <sys/wait.h>
                #include <unistd.h>
                static void *work(void *arg) { return arg; }
                int main(void) {
                    pthread_t thread;
                    if (pthread_create(&thread, NULL, work, NULL) != 0) return 1;
                    pthread_join(thread, NULL);
                    pid_t pid = fork();
                    if (pid == 0) _exit(3);
                    int status;
                    waitpid(pid, &status, 0);
                    printf("C-OK %d\\n", WEXITSTATUS(status));
                    return 0;
                }
                """
            let python = """
                import ctypes, os, signal, threading
                libc = ctypes.CDLL(None, use_errno=True)
                threading.Thread(target=lambda: None).start()
                child = os.fork()
                if child == 0:
                    libc.ptrace(0, 0, 0, 0)  # PTRACE_TRACEME
                    os.kill(os.getpid(), signal.SIGSTOP)
                    os._exit(5)
                _, status = os.waitpid(child, 0)
                stopped = os.WIFSTOPPED(status)
                libc.ptrace(7, child, 0, 0)  # PTRACE_CONT
                _, status = os.waitpid(child, 0)
                print("PTRACE-OK" if stopped and os.WEXITSTATUS(status) == 5 else "PTRACE-FAILED")
                print("PERSONALITY", libc.personality(0xFFFFFFFF), libc.personality(0))
                import socket
                socket.socketpair()
                print("UNSHARE-FS", libc.unshare(0x200))
                """
            var command = """
                set -e
                cd /tmp && git init -q repo && cd repo && git config user.email a@b && git config user.name a
                echo hi > f && git add f && git commit -qm first && git log --oneline | wc -l | sed 's/^/GIT /'
                python3 - <<'EOF'
                \(python)
                EOF
                cat > /tmp/t.c <<'EOF'
                \(program)
                EOF
                cc -pthread -o /tmp/t /tmp/t.c && /tmp/t
                strace -f -o /dev/null /tmp/t >/dev/null && echo STRACE-OK
                gdb -batch -ex run -ex bt /tmp/t 2>&1 | grep -q C-OK && echo GDB-OK
                """
            let hasNode = FileManager.default.isExecutableFile(atPath: "/usr/bin/node")
            if hasNode {
                command += "\nnode -e 'require(\"child_process\").execFileSync(\"true\"); new Promise(r => setTimeout(r, 10)).then(() => console.log(\"NODE-OK\"))'"
            }
            let result = try await manager.run("ordinary", command)
            let output = result.stdout
            #expect(result.exitCode == 0, "\(output)\(result.stderr)")
            for expected in ["GIT 1", "PTRACE-OK", "PERSONALITY 0 0", "UNSHARE-FS 0", "C-OK 3", "STRACE-OK", "GDB-OK"] {
                #expect(output.contains(expected), "\(expected): \(output)\(result.stderr)")
            }
            if hasNode { #expect(output.contains("NODE-OK"), "\(output)\(result.stderr)") }
            await manager.shutdown()
        }
    }
}
