import Foundation
import Testing

@testable import AgentBoxSandbox

/// The awake budget's memory bound: the machine's memory, or a memory cgroup's limit above the workspaces' cgroups.
@Suite("Workspace memory bound")
struct WorkspaceMemoryTests {
    private func tree(_ files: [String: String], body: (URL) throws -> Void) throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("memory-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        for (path, text) in files {
            let file = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: file, atomically: false, encoding: .utf8)
        }
        try body(root)
    }

    @Test func v1TakesTheHierarchicalLimitOfTheWorkspacesParent() throws {
        let gib = 1 << 30
        try tree([
            "memory/memory.stat": "cache 0\nhierarchical_memory_limit 9223372036854771712\n",
            "memory/agentbox/memory.stat": "cache 0\nrss 4096\nhierarchical_memory_limit \(8 * gib)\nhierarchical_memsw_limit 1\n",
        ]) { root in
            #expect(WorkspaceMemory.bound(physical: 24 * gib, root: root) == 8 * gib)
            #expect(WorkspaceMemory.bound(physical: 4 * gib, root: root) == 4 * gib, "the machine's, when smaller")
        }
        // A group's stat without the line: the root's.
        try tree([
            "memory/memory.stat": "hierarchical_memory_limit \(5 * gib)\n", "memory/agentbox/memory.stat": "cache 0\n",
        ]) { root in
            #expect(WorkspaceMemory.bound(physical: 24 * gib, root: root) == 5 * gib)
        }
        // Not made yet: the root's; unlimited (the kernel's largest value): the machine's.
        try tree(["memory/memory.stat": "hierarchical_memory_limit \(2 * gib)\n"]) { root in
            #expect(WorkspaceMemory.bound(physical: 24 * gib, root: root) == 2 * gib)
        }
        try tree(["memory/memory.stat": "hierarchical_memory_limit 9223372036854771712\n"]) { root in
            #expect(WorkspaceMemory.bound(physical: 24 * gib, root: root) == 24 * gib)
        }
    }

    @Test func v2TakesTheLeastMaxUpToTheRoot() throws {
        let gib = 1 << 30
        try tree(["cgroup.controllers": "memory pids cpu\n", "memory.max": "\(6 * gib)\n", "agentbox/memory.max": "max\n"]) { root in
            #expect(WorkspaceMemory.bound(physical: 24 * gib, root: root) == 6 * gib, "a container's limit")
        }
        try tree(["cgroup.controllers": "memory\n", "agentbox/memory.max": "\(3 * gib)\n"]) { root in
            #expect(WorkspaceMemory.bound(physical: 24 * gib, root: root) == 3 * gib)
        }
        // Both limited: the least, whichever it is.
        try tree(["cgroup.controllers": "memory\n", "memory.max": "\(6 * gib)\n", "agentbox/memory.max": "\(3 * gib)\n"]) { root in
            #expect(WorkspaceMemory.bound(physical: 24 * gib, root: root) == 3 * gib)
        }
        try tree(["cgroup.controllers": "memory\n", "memory.max": "\(3 * gib)\n", "agentbox/memory.max": "\(6 * gib)\n"]) { root in
            #expect(WorkspaceMemory.bound(physical: 24 * gib, root: root) == 3 * gib)
        }
        try tree(["cgroup.controllers": "memory\n", "agentbox/memory.max": "max\n"]) { root in
            #expect(WorkspaceMemory.bound(physical: 24 * gib, root: root) == 24 * gib, "no limit: the machine's")
        }
        try tree(["cgroup.controllers": "memory\n", "agentbox/memory.max": "garbage\n"]) { root in
            #expect(WorkspaceMemory.bound(physical: 24 * gib, root: root) == 24 * gib, "unreadable: none")
        }
    }
}
