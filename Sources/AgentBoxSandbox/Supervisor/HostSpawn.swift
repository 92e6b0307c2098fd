import CAgentBoxSandbox
import Foundation

/// Starts host processes through the C shim `ab_spawn` (descriptor mapping, cgroup entry and credentials before exec).
package enum HostSpawn {
    package struct Credentials {
        package var uid: UInt32
        package var gid: UInt32
    }

    /// Starts `executable` with `arguments` (argv[0] included) and returns its pid. `mounts` (detached mounts) are
    /// attached at their targets in a mount namespace of the child's own. The child joins `namespaces` (descriptors of
    /// namespaces, such as a pooled network namespace) before it takes `credentials`.
    package static func spawn(
        executable: String, arguments: [String], environment: [String: String], descriptors: [Int32],
        cgroupProcs: [Int32] = [], credentials: Credentials? = nil, mounts: [(fd: Int32, target: String)] = [],
        namespaces: [Int32] = []
    ) throws -> pid_t {
        let targets = mounts.map { strdup($0.target) }
        defer { targets.forEach { free($0) } }
        let mountFDs = mounts.map(\.fd)
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        let pid = argv.withUnsafeBufferPointer { argvBuffer in
            envp.withUnsafeBufferPointer { envpBuffer in
                descriptors.withUnsafeBufferPointer { fds in
                    cgroupProcs.withUnsafeBufferPointer { cgroups in
                        mountFDs.withUnsafeBufferPointer { mountFDs in
                            targets.map { UnsafePointer($0) }.withUnsafeBufferPointer { targets in
                                namespaces.withUnsafeBufferPointer { namespaces in
                                    ab_spawn(
                                        executable, argvBuffer.baseAddress, envpBuffer.baseAddress, fds.baseAddress,
                                        Int32(fds.count), cgroups.baseAddress, Int32(cgroups.count), credentials == nil ? 0 : 1,
                                        credentials?.uid ?? 0, credentials?.gid ?? 0, mountFDs.baseAddress, targets.baseAddress,
                                        Int32(mountFDs.count), namespaces.baseAddress, Int32(namespaces.count))
                                }
                            }
                        }
                    }
                }
            }
        }
        guard pid > 0 else { throw SandboxError.errno("cannot start \(executable)") }
        return pid
    }

    /// Waits for `pid` off the cooperative thread pool and returns its wait status. `beforeReaping` runs once it has
    /// exited and before it is reaped: until then its pid cannot name another process.
    static func wait(_ pid: pid_t, beforeReaping: @escaping @Sendable () -> Void) async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var info = siginfo_t()
                while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0, errno == EINTR {}
                beforeReaping()
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0, errno == EINTR {}
                continuation.resume(returning: status)
            }
        }
    }
}

/// A pair of pipe descriptors, both close-on-exec.
struct PipePair {
    let read: Int32
    let write: Int32

    init() throws {
        var fds: [Int32] = [0, 0]
        guard ab_pipe_cloexec(&fds) == 0 else { throw SandboxError.errno("pipe") }
        read = fds[0]
        write = fds[1]
    }
}
