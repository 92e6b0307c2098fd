import Glibc

/// What a running sandbox uses now: CPU time, memory and tasks, as the kernel accounts them.
public struct SandboxResourceUsage: Sendable, Equatable {
    /// CPU time used since the sandbox started, in nanoseconds (user + system, all cores).
    public var cpuNanoseconds: Int64
    /// Memory charged to it now, in bytes.
    public var memoryBytes: Int64
    /// The most memory charged to it since it started, in bytes.
    public var memoryPeakBytes: Int64
    /// Tasks (processes and threads), the sandbox's init among them.
    public var tasks: Int
    /// Where the figures come from.
    public var source: Source

    /// Where ``SandboxResourceUsage`` figures come from.
    public enum Source: String, Sendable {
        /// The sandbox's own cgroups: exact, exited processes' CPU time included.
        case cgroup
        /// A walk of the sandbox's live process tree in `/proc` (no cgroups: an unprivileged server, or the
        /// unsandboxed backend): memory is the sum of resident sets, the peak the sum of their peaks, and CPU time
        /// that of the processes alive now.
        case processTree
    }

    public init(cpuNanoseconds: Int64, memoryBytes: Int64, memoryPeakBytes: Int64, tasks: Int, source: Source) {
        self.cpuNanoseconds = cpuNanoseconds
        self.memoryBytes = memoryBytes
        self.memoryPeakBytes = memoryPeakBytes
        self.tasks = tasks
        self.source = source
    }

    /// The figures of the live process tree under `root` (a host pid), read from `/proc`. A process that ends
    /// during the walk is left out.
    public static func processTree(root: Int32) -> SandboxResourceUsage {
        let ticksPerSecond = Int64(max(1, sysconf(Int32(_SC_CLK_TCK))))
        var usage = SandboxResourceUsage(cpuNanoseconds: 0, memoryBytes: 0, memoryPeakBytes: 0, tasks: 0, source: .processTree)
        var pending = [root]
        var seen: Set<Int32> = []
        // A sandbox holds at most its pids limit; the bound keeps a walk of a fork bomb finite.
        while let pid = pending.popLast(), seen.count < 65_536 {
            guard seen.insert(pid).inserted, let stat = KernelFile.read("/proc/\(pid)/stat") else { continue }
            // The command name (field 2) is in parentheses and may hold spaces: fields are counted after it.
            guard let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // fields[0] is field 3 (state): utime is field 14, stime 15, num_threads 20.
            if fields.count > 17, let user = Int64(fields[11]), let system = Int64(fields[12]), let threads = Int(fields[17]) {
                usage.cpuNanoseconds += (user + system) * 1_000_000_000 / ticksPerSecond
                usage.tasks += threads
            }
            if let status = KernelFile.read("/proc/\(pid)/status") {
                usage.memoryBytes += kilobytes("VmRSS:", in: status) * 1024
                usage.memoryPeakBytes += kilobytes("VmHWM:", in: status) * 1024
            }
            for task in children(of: pid) { pending.append(task) }
        }
        usage.memoryPeakBytes = max(usage.memoryPeakBytes, usage.memoryBytes)
        return usage
    }

    /// The children of every thread of `pid`.
    private static func children(of pid: Int32) -> [Int32] {
        guard let directory = opendir("/proc/\(pid)/task") else { return [] }
        defer { closedir(directory) }
        var found: [Int32] = []
        while let entry = readdir(directory) {
            let name = directoryEntryName(entry)
            guard let tid = Int32(name) else { continue }
            let text = KernelFile.read("/proc/\(pid)/task/\(tid)/children") ?? ""
            found += text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int32($0) }
        }
        return found
    }

    /// The value of a `Name:   123 kB` line of a `/proc/<pid>/status`.
    private static func kilobytes(_ name: String, in status: String) -> Int64 {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return 0 }
        return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int64($0) } ?? 0
    }
}
