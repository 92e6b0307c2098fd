import Glibc

/// Reads the text of a file the kernel makes up as it is read (/proc, /sys).
///
/// Foundation's `String(contentsOfFile:)` sizes its read by `stat`, which says 0 for these, and then stops after one
/// buffer (about 4 KiB): `/proc/self/mountinfo` of a host with a few dozen mounts came back cut, and the disk pool's
/// mount, at its end, looked absent. This reads until end of file.
public enum KernelFile {
    /// The whole text, or nil when the file cannot be opened or read. Stops at `limit` bytes.
    public static func read(_ path: String, limit: Int = 16 << 20) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
