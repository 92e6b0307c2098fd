import Foundation
import Logging
import Synchronization

/// The cgroups of one sandbox: memory, CPU and pids limits, on cgroup v2 or v1 (whichever the host mounts).
///
/// Layout: v2 `/sys/fs/cgroup/agentbox/<id>`; v1 `/sys/fs/cgroup/{memory,cpu,pids}/agentbox/<id>`, and
/// `cpuacct/agentbox/<id>` for CPU accounting where the host mounts cpuacct apart from cpu. The sandbox's first
/// process joins them before it execs (see `ab_spawn`), so nothing of the workspace runs outside them, and their
/// figures (``usage()``) are the workspace's.
struct SandboxCgroups {
    enum Version: String, Sendable { case v1, v2 }

    let version: Version
    /// The directories of this sandbox's cgroups.
    let directories: [URL]

    static let root = URL(fileURLWithPath: "/sys/fs/cgroup")
    static let v1Controllers = ["memory", "cpu", "pids"]

    /// Whether the host mounts v1's cpuacct as a hierarchy of its own (co-mounted as `cpu,cpuacct`, the cpu cgroup
    /// holds its files already). Accounting only: a sandbox starts without it when its directory cannot be made.
    static let v1SeparateAccounting: Bool = {
        let cpu = root.appendingPathComponent("cpu").resolvingSymlinksInPath().path
        let accounting = root.appendingPathComponent("cpuacct").resolvingSymlinksInPath().path
        return cpu != accounting && FileManager.default.fileExists(atPath: accounting + "/cpuacct.usage")
    }()

    /// Which cgroup version the host offers, and whether this process may create cgroups there; `nil` when not.
    static func probe() -> (Version, String?) {
        let files = FileManager.default
        if files.fileExists(atPath: root.appendingPathComponent("cgroup.controllers").path) {
            let parent = root.appendingPathComponent("agentbox")
            do {
                try files.createDirectory(at: parent, withIntermediateDirectories: true)
                try enableV2Controllers(parent: parent)
                return (.v2, nil)
            } catch {
                return (.v2, "cgroup v2 is not writable (\(error))")
            }
        }
        for controller in v1Controllers {
            let parent = root.appendingPathComponent(controller).appendingPathComponent("agentbox")
            do {
                try files.createDirectory(at: parent, withIntermediateDirectories: true)
            } catch {
                return (.v1, "cgroup v1 controller \(controller) is not writable (\(error.localizedDescription))")
            }
        }
        if v1SeparateAccounting {
            try? files.createDirectory(at: root.appendingPathComponent("cpuacct/agentbox"), withIntermediateDirectories: true)
        }
        return (.v1, nil)
    }

    private static func enableV2Controllers(parent: URL) throws {
        for directory in [root, parent] {
            let control = directory.appendingPathComponent("cgroup.subtree_control")
            try "+memory +pids +cpu".write(to: control, atomically: false, encoding: .utf8)
        }
    }

    /// The prefix of the cgroups of a pre-started sandbox (``PrestartedSandbox``), made before any workspace is bound.
    static let poolPrefix = "pool-"

    /// Removes the cgroups that sandboxes left behind: a server killed before it removed them, or a group whose last
    /// process the kernel had not freed by the time ``LeftoverCgroups`` gave up. Only those empty and made more than a
    /// minute ago: a sandbox's group holds its init for as long as it lives (a parked or pre-started one too), and is
    /// empty only for the moment between its making and the spawn that enters it. Each costs the kernel memory
    /// (a v1 memory cgroup most), and there can be at most 65,535 memory cgroups.
    static func removeLeftoverGroups(version: Version) {
        let parents: [URL] =
            switch version {
            case .v2: [root.appendingPathComponent("agentbox")]
            case .v1: (v1Controllers + ["cpuacct"]).map { root.appendingPathComponent("\($0)/agentbox") }
            }
        let minuteAgo = Date().addingTimeInterval(-60)
        for parent in parents {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? [] {
                let path = parent.appendingPathComponent(name).path
                let made = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantFuture
                if made < minuteAgo { rmdir(path) }  // fails, harmlessly, while a process is in it
            }
        }
    }

    /// Creates the cgroups of sandbox `id` with `limits`.
    static func create(id: String, version: Version, limits: SandboxLimits) throws -> SandboxCgroups {
        let files = FileManager.default
        var directories: [URL] =
            switch version {
            case .v2: [root.appendingPathComponent("agentbox/\(id)")]
            case .v1: v1Controllers.map { root.appendingPathComponent("\($0)/agentbox/\(id)") }
            }
        var cgroups = SandboxCgroups(version: version, directories: directories)
        cgroups.removeEmpty()  // a leftover of a crash
        for directory in directories { try files.createDirectory(at: directory, withIntermediateDirectories: true) }
        if version == .v1, v1SeparateAccounting {
            let accounting = root.appendingPathComponent("cpuacct/agentbox/\(id)")
            rmdir(accounting.path)
            if (try? files.createDirectory(at: accounting, withIntermediateDirectories: false)) != nil {
                directories.append(accounting)
                cgroups = SandboxCgroups(version: version, directories: directories)
            }
        }
        do {
            try cgroups.apply(limits)
        } catch {
            cgroups.removeEmpty()
            throw error
        }
        return cgroups
    }

    /// Writes `limits`; with `unsetting`, a limit that is `nil` is lifted (cgroups that had other limits: a parked
    /// sandbox's, whose workspace's limits changed while it slept), else left as it is (new cgroups have none).
    func apply(_ limits: SandboxLimits, unsetting: Bool = false) throws {
        switch version {
        case .v2:
            let directory = directories[0]
            if let bytes = limits.memoryBytes {
                try write("\(bytes)", to: directory, "memory.max")
                try? write("0", to: directory, "memory.swap.max")
            } else if unsetting {
                try write("max", to: directory, "memory.max")
                try? write("max", to: directory, "memory.swap.max")
            }
            if let pids = limits.pids { try write("\(pids)", to: directory, "pids.max") } else if unsetting { try write("max", to: directory, "pids.max") }
            if let cpu = limits.cpuPercent {
                try write("\(cpu * 1000) 100000", to: directory, "cpu.max")
            } else if unsetting {
                try write("max 100000", to: directory, "cpu.max")
            }
        case .v1:
            let (memory, cpu, pids) = (directories[0], directories[1], directories[2])
            if limits.memoryBytes != nil || unsetting {
                let bytes = limits.memoryBytes.map { "\($0)" } ?? "-1"
                // With swap accounting, swap counts too: the limit is the limit. The memory limit may never exceed
                // the memory+swap one: raised, that one goes first; lowered, it goes last (the first try then fails).
                try? write(bytes, to: memory, "memory.memsw.limit_in_bytes")
                try write(bytes, to: memory, "memory.limit_in_bytes")
                try? write(bytes, to: memory, "memory.memsw.limit_in_bytes")
            }
            if let cpuPercent = limits.cpuPercent {
                try write("100000", to: cpu, "cpu.cfs_period_us")
                try write("\(cpuPercent * 1000)", to: cpu, "cpu.cfs_quota_us")
            } else if unsetting {
                try write("-1", to: cpu, "cpu.cfs_quota_us")
            }
            if let count = limits.pids { try write("\(count)", to: pids, "pids.max") } else if unsetting { try write("max", to: pids, "pids.max") }
        }
    }

    private func write(_ value: String, to directory: URL, _ file: String) throws {
        let path = directory.appendingPathComponent(file).path
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw SandboxError(.system, "cannot open \(path)")
        }
        defer { try? handle.close() }
        do {
            try handle.write(contentsOf: Data(value.utf8))
        } catch {
            throw SandboxError(.system, "cannot write \(value) to \(path): \(error)")
        }
    }

    /// Open `cgroup.procs` descriptors, for the first process to join before it execs. The caller closes them.
    func openProcsFiles() throws -> [Int32] {
        var fds: [Int32] = []
        for directory in directories {
            let fd = open(directory.appendingPathComponent("cgroup.procs").path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                fds.forEach { close($0) }
                throw SandboxError.errno("open cgroup.procs of \(directory.path)")
            }
            fds.append(fd)
        }
        return fds
    }

    /// Whether the memory cgroup has seen an out-of-memory kill.
    var oomKills: Int {
        let file: URL =
            switch version {
            case .v2: directories[0].appendingPathComponent("memory.events")
            case .v1: directories[0].appendingPathComponent("memory.oom_control")
            }
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == "oom_kill", let count = Int(parts[1]) { return count }
        }
        return 0
    }

    /// What the sandbox's processes use now, as its cgroups account it: CPU time (v2 `cpu.stat` usage_usec, v1
    /// `cpuacct.usage`), memory (v2 `memory.current` and `memory.peak`, v1 `memory.usage_in_bytes` and
    /// `memory.max_usage_in_bytes`) and tasks (`pids.current`). A figure the kernel does not offer is 0.
    func usage() -> SandboxResourceUsage {
        func number(_ directory: URL, _ file: String) -> Int64? {
            KernelFile.read(directory.appendingPathComponent(file).path)
                .flatMap { Int64($0.split(whereSeparator: \.isWhitespace).first ?? "") }
        }
        switch version {
        case .v2:
            let directory = directories[0]
            let stat = KernelFile.read(directory.appendingPathComponent("cpu.stat").path) ?? ""
            let microseconds = stat.split(separator: "\n").first { $0.hasPrefix("usage_usec ") }
                .flatMap { Int64($0.dropFirst("usage_usec ".count)) } ?? 0
            let memory = number(directory, "memory.current") ?? 0
            return SandboxResourceUsage(
                cpuNanoseconds: microseconds * 1000, memoryBytes: memory,
                // memory.peak is Linux 5.19 and later.
                memoryPeakBytes: max(memory, number(directory, "memory.peak") ?? 0),
                tasks: Int(number(directory, "pids.current") ?? 0), source: .cgroup)
        case .v1:
            let (memory, cpu, pids) = (directories[0], directories[1], directories[2])
            let accounting = directories.count > 3 ? directories[3] : cpu
            let current = number(memory, "memory.usage_in_bytes") ?? 0
            return SandboxResourceUsage(
                cpuNanoseconds: number(accounting, "cpuacct.usage") ?? 0, memoryBytes: current,
                memoryPeakBytes: max(current, number(memory, "memory.max_usage_in_bytes") ?? 0),
                tasks: Int(number(pids, "pids.current") ?? 0), source: .cgroup)
        }
    }

    /// Removes the cgroups that are empty, once, without waiting.
    func removeEmpty() {
        for directory in directories { rmdir(directory.path) }
    }

    /// Removes the cgroups (their processes must be gone).
    ///
    /// The kernel frees a cgroup a moment after its last process is reaped; a few quick tries (at most 100 ms per
    /// directory) cover that. The tries sleep as a task, never blocking a thread: a blocking sleep here held one of
    /// the two threads of Swift's cooperative pool per stopping sandbox, and many sandboxes stopping at once stalled
    /// every request of the process.
    ///
    /// A group still busy after that (a loaded host frees a killed workspace's processes more slowly) goes to
    /// ``LeftoverCgroups``, which tries again later: before, it stayed for good, and a bench that made and deleted
    /// 1,300 workspaces under load left 838 memory cgroups behind.
    func remove() async {
        var busy: [String] = []
        for directory in directories {
            for attempt in 0..<50 {
                if rmdir(directory.path) == 0 || errno == ENOENT { break }
                if attempt == 49 {
                    busy.append(directory.path)
                    break
                }
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        if !busy.isEmpty { LeftoverCgroups.shared.add(busy) }
    }
}

/// Cgroups that were still busy when their sandbox ended: one thread of its own tries to remove them again, after
/// 250 ms and then twice as long each time up to 10 s, for as long as any is left. cgroup v1 has no event for a group
/// becoming empty short of the host-wide release agent, hence the tries; and an rmdir of a v1 cgroup may wait in the
/// kernel (tens of milliseconds), so neither the cooperative pool nor NIO's thread pool, whose threads boots need, ever
/// does it. At most 100,000 are kept (paths only); past that, and those left when the server stops, the next start's
/// sweep (``SandboxCgroups/removeLeftoverGroups(version:)``, also on a thread of its own, once per process) removes
/// them.
final class LeftoverCgroups: Sendable {
    static let shared = LeftoverCgroups()
    static let most = 100_000

    private struct State {
        var pending: [String] = []
        /// Taken off `pending` for the try under way.
        var inFlight = 0
        var trying = false
        var swept = false
    }

    private let state = Mutex(State())

    /// How many are waiting for another try (the one under way included).
    var count: Int { state.withLock { $0.pending.count + $0.inFlight } }

    func add(_ paths: [String]) {
        let start = state.withLock { state in
            state.pending += paths.prefix(max(0, Self.most - state.pending.count - state.inFlight))
            defer { state.trying = true }
            return !state.trying
        }
        if start { Thread.detachNewThread { self.tryAgain() } }
    }

    /// Removes, once per process and on a thread of its own, the groups that servers which are gone left behind: a
    /// crash can leave thousands, and their removal took minutes of the thread pool's two threads, starving the boots.
    func sweepOnce(version: SandboxCgroups.Version) {
        let first = state.withLock { state in
            defer { state.swept = true }
            return !state.swept
        }
        if first { Thread.detachNewThread { SandboxCgroups.removeLeftoverGroups(version: version) } }
    }

    private func tryAgain() {
        var delay: useconds_t = 250_000
        while true {
            usleep(delay)
            let batch = state.withLock { state in
                defer {
                    state.inFlight = state.pending.count
                    state.pending = []
                }
                return state.pending
            }
            let left = batch.filter { rmdir($0) != 0 && errno != ENOENT }
            let done = state.withLock { state in
                state.inFlight = 0
                state.pending += left
                if state.pending.isEmpty { state.trying = false }
                return !state.trying
            }
            if done { return }
            delay = min(delay * 2, 10_000_000)
        }
    }
}
