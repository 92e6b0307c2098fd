import AgentBoxAPI
import AgentBoxSandbox
import Foundation
import NIOCore

/// One process of a workspace, as its runtime tracks it. Confined to the workspace's actor.
final class ProcessEntry {
    var info: WorkspaceProcess
    let handle: SandboxProcess
    var stdout: OutputBuffer
    var stderr: OutputBuffer
    var carry: [ProcessStream: [UInt8]] = [:]
    var activity: WorkspaceRuntime.Activity?
    var pump: Task<Void, Never>?
    var timedOut = false
    /// Publishes its output as workspace events (internal helpers such as tar do not).
    var publishesOutput = true
    /// Newlines seen on stdout (for helpers whose output is a list).
    var stdoutLines = 0
    var exitWaiters: [UInt64: CheckedContinuation<WorkspaceProcess?, Never>] = [:]

    init(info: WorkspaceProcess, handle: SandboxProcess, policy: (Int) -> OutputBuffer.Policy, limit: Int) {
        self.info = info
        self.handle = handle
        self.stdout = OutputBuffer(policy(limit))
        self.stderr = OutputBuffer(policy(limit))
    }

    var isRunning: Bool { info.status == .running }
}

/// The processes of one workspace: the running ones and a bounded memory of exited ones.
///
/// It owns their output pumps: each running process's entry holds the task that reads its output and records its
/// exit, and a stop of the workspace waits for every one (``pumps``) before it reports the shutdown.
///
/// Starting and ending a process cost O(1) (amortized), not a pass over the memory of exited ones: a workspace may
/// run execs back to back, and a server hundreds of such workspaces.
struct ProcessTable {
    private(set) var entries: [String: ProcessEntry] = [:]
    /// Ids in start order, for listing. Forgotten ids stay until the next compaction and are skipped meanwhile.
    private var order: [String] = []
    /// Exited ids in the order they exited, for forgetting the earliest first.
    private var exitOrder = CircularBuffer<String>()
    private var nextWaiterID: UInt64 = 0

    subscript(id: String) -> ProcessEntry? { entries[id] }

    mutating func insert(_ entry: ProcessEntry) {
        entries[entry.info.id] = entry
        order.append(entry.info.id)
    }

    /// Records that `id` exited (once, when its entry says so), and forgets the earliest exited beyond `limit`.
    mutating func exited(_ id: String, keeping limit: Int) {
        guard entries[id] != nil else { return }
        exitOrder.append(id)
        while exitOrder.count > max(0, limit) { entries[exitOrder.removeFirst()] = nil }
        // Forgotten ids leave the start order once they are half of it.
        if order.count > 2 * entries.count + 16 { order.removeAll { entries[$0] == nil } }
    }

    var all: [WorkspaceProcess] { order.compactMap { entries[$0]?.info } }
    var running: [ProcessEntry] { order.compactMap { entries[$0] }.filter(\.isRunning) }
    var pumps: [Task<Void, Never>] { entries.values.compactMap(\.pump) }

    mutating func makeWaiterID() -> UInt64 {
        defer { nextWaiterID += 1 }
        return nextWaiterID
    }

    /// A new process id: `proc_` and 12 random characters of [a-z0-9].
    static func makeID() -> String { RandomID.make(prefix: "proc_", length: 12) }
}
