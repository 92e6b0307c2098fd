import CAgentBoxSandbox
import Foundation

/// A host program run to its end on the calling thread (it blocks: for set-up work such as making the disk pool's
/// file system, never on a request's path), started through `ab_spawn` like the sandboxes.
///
/// Not Foundation's `Process`: its `run()` copies 256 bytes out of every `/proc/self/fd` entry to find the highest
/// descriptor (swift-corelibs-foundation#5472), which faults now and then in a process with more than ~1,300 open,
/// as a server of many workspaces is (a CI unit pass died of it).
public enum HostCommand {
    /// Runs `executable` with `arguments` (not argv[0]) and the server's environment, stdin and stdout on /dev/null,
    /// and returns its exit status (128 + the signal when a signal ended it) and the first `maximumError` bytes of its
    /// stderr.
    public static func run(_ executable: String, _ arguments: [String], maximumError: Int = 64 << 10) throws -> (status: Int32, stderr: String) {
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard null >= 0 else { throw SandboxError.errno("open /dev/null") }
        defer { close(null) }
        let errors = try PipePair()
        let pid: pid_t
        do {
            pid = try HostSpawn.spawn(
                executable: executable, arguments: [executable] + arguments, environment: ProcessInfo.processInfo.environment,
                descriptors: [null, null, errors.write])
        } catch {
            close(errors.read)
            close(errors.write)
            throw error
        }
        close(errors.write)
        var collected: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(errors.read, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            // Read to the end all the same, so that the program never blocks on a full pipe.
            if collected.count < maximumError { collected += buffer[..<min(count, maximumError - collected.count)] }
        }
        close(errors.read)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        let exit = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exit, String(decoding: collected, as: UTF8.self))
    }
}
