import CAgentBoxSandbox
import Foundation

#if canImport(Glibc)
import Glibc
private let openFilesResource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#else
private let openFilesResource = RLIMIT_NOFILE
#endif

/// The process's limit on open files, which bounds how many workspaces a server keeps awake (each holds a few of its
/// descriptors: ARCHITECTURE.md, "Descriptors").
public enum DescriptorLimit {
    /// The limit this process had when this type was first used.
    private static let atStart: rlimit? = {
        var limit = rlimit()
        return getrlimit(openFilesResource, &limit) == 0 ? limit : nil
    }()

    /// What ``raise(ceiling:)`` did.
    public struct Outcome: Sendable, Equatable {
        /// The soft limit before.
        public var before: Int
        /// The soft limit in force after: what the server may open.
        public var limit: Int
        /// The limit the sandboxes started from now on get (soft and hard): the hard limit the process started with.
        public var sandboxes: Int
    }

    /// Raises the limit as far as this process may, as servers do (a shell's soft limit is often 1,024): the soft
    /// limit to the hard one, and, when the process may raise the hard one (root: CAP_SYS_RESOURCE), both to the
    /// kernel's most (`fs.nr_open`), at most `ceiling`. A descriptor costs the kernel memory only when it is open, so
    /// the limit itself is free; what bounds the awake workspaces then is memory, not this number.
    ///
    /// The sandboxes started after get the hard limit the process started with, soft and hard: a workspace's
    /// programs see the limit they would have seen before, and those that walk every possible descriptor up to the
    /// soft limit (some daemons do, at start) are not slowed by a million.
    public static func raise(ceiling: Int = 1 << 20) -> Outcome {
        var limit = rlimit()
        guard getrlimit(openFilesResource, &limit) == 0 else { return Outcome(before: 1024, limit: 1024, sandboxes: 1024) }
        let before = Int(clamping: limit.rlim_cur)
        // The process's first limit, however often this is called.
        let startHard = atStart?.rlim_max ?? limit.rlim_max
        var raised = limit
        let kernelMost = (try? String(contentsOfFile: "/proc/sys/fs/nr_open", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        let wanted = rlim_t(max(0, min(kernelMost, ceiling)))
        if wanted > limit.rlim_max {
            raised.rlim_cur = wanted
            raised.rlim_max = wanted
            if setrlimit(openFilesResource, &raised) != 0 { raised = limit }
        }
        if raised.rlim_max == limit.rlim_max, limit.rlim_cur < limit.rlim_max {
            raised.rlim_cur = limit.rlim_max
            if setrlimit(openFilesResource, &raised) != 0 { raised = limit }
        }
        let sandboxes = min(startHard, raised.rlim_max)
        if raised.rlim_max > startHard {
            ab_spawn_set_open_file_limit(UInt(sandboxes), UInt(sandboxes))
        }
        return Outcome(before: before, limit: Int(clamping: raised.rlim_cur), sandboxes: Int(clamping: sandboxes))
    }
}
