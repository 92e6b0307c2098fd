import Foundation

/// How much memory the host's workspaces may have between them: the machine's, or less where the memory cgroup their
/// own cgroups are made under (`agentbox`, ``SandboxCgroups``) is limited, or one above it (a container's limit,
/// seen from inside its cgroup namespace). The awake budget's memory bound is taken from it.
public enum WorkspaceMemory {
    /// The smaller of `physical` and the limit that bounds every workspace's memory cgroup, read from `root` (the
    /// cgroup file systems' mount point). A limit that cannot be read counts as none.
    public static func bound(physical: Int, root: URL = URL(fileURLWithPath: "/sys/fs/cgroup")) -> Int {
        let limit = root.appendingPathComponent("cgroup.controllers").path.withCString { access($0, F_OK) } == 0
            ? v2Limit(root: root) : v1Limit(root: root)
        guard let limit, limit > 0 else { return physical }
        return min(physical, limit)
    }

    /// v1: the kernel's `hierarchical_memory_limit` of `memory/agentbox` (the least of its own and its ancestors',
    /// those outside a cgroup namespace included), or of the hierarchy's root when that group is not made yet.
    static func v1Limit(root: URL) -> Int? {
        let memory = root.appendingPathComponent("memory")
        for directory in [memory.appendingPathComponent("agentbox"), memory] {
            guard let stat = try? String(contentsOf: directory.appendingPathComponent("memory.stat"), encoding: .utf8) else { continue }
            for line in stat.split(separator: "\n") where line.hasPrefix("hierarchical_memory_limit ") {
                return line.split(separator: " ").last.flatMap { Int($0) }
            }
        }
        return nil
    }

    /// v2: the least `memory.max` from `agentbox` up to the hierarchy's root (which has none of its own; a container's
    /// root, a cgroup of the host's, has). Limits above a cgroup namespace's root cannot be read from inside it, and a
    /// container that shares the host's cgroup namespace has its limit on a path of its own, not looked for: then the
    /// machine's memory counts.
    static func v2Limit(root: URL) -> Int? {
        var least: Int?
        for directory in [root.appendingPathComponent("agentbox"), root] {
            guard let text = try? String(contentsOf: directory.appendingPathComponent("memory.max"), encoding: .utf8),
                let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))  // "max": none
            else { continue }
            least = min(least ?? value, value)
        }
        return least
    }
}
