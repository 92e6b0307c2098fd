import CAgentBoxSandbox
import Foundation
import Logging
import Synchronization

/// The sandboxes of sleeping workspaces, parked: no process is left in them and their tmpfs mounts are as they were
/// built (see `park.c`), while their namespaces, mounts, cgroups and PID 1 stay. A wake takes its workspace's back
/// (``take(_:matching:)``) and only starts processes in it: no id map, mounts, pivot, capabilities or filter on its
/// path. Only sandboxes bound from the pool park (their cgroups are named for them alone, `pool-…`).
///
/// One is used only for the boot of its own workspace, and only while everything its root was built from is the
/// same (``Fingerprint``): the ids, the image layers, the configured mounts, the host name, and the very directories
/// (device, inode and birth time) of the workspace, its `workspace/` and `home/`, its system layer's upper and work
/// directories, and its host mounts. Anything else, and it is stopped and the boot builds a new one. It is stopped too when its
/// workspace is destroyed or its files replaced (``remove(_:)``), when more recently parked ones push it out (at most
/// `capacity`), and when the server stops (``stopAll()``).
public final class ParkedSandboxes: Sendable {
    /// What a parked sandbox's root was built from.
    struct Fingerprint: Equatable, Sendable {
        var ids: WorkspaceIDs
        var storage: WorkspaceIDs
        var imageLayers: [URL]
        var mounts: [SandboxMount]
        var hostname: String
        /// Device, inode and birth time of each directory its mounts were made of.
        var directories: [UInt64]

        /// The fingerprint of the sandbox `spec` asks for, as its directories are now; `nil` when one cannot be read.
        static func of(_ spec: SandboxSpec, ids: WorkspaceIDs, storage: WorkspaceIDs, layers: [String]) -> Fingerprint? {
            var directories: [UInt64] = []
            let base = spec.hostDirectory.path
            let paths = [base, base + "/workspace", base + "/home"]
                + layers.flatMap { ["\(base)/system/\($0)/upper", "\(base)/system/\($0)/work"] }
            // Appends the identity of the directory `fd` (closed here); false when it cannot be read.
            func add(_ fd: Int32) -> Bool {
                guard fd >= 0 else { return false }
                defer { Glibc.close(fd) }
                var four = [UInt64](repeating: 0, count: 4)
                guard ab_directory_identity(fd, &four) == 0 else { return false }
                directories += four
                return true
            }
            for path in paths where !add(open(path, AB_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) { return nil }
            // Host mounts as a boot opens them (no symlink on the way): one swapped or replaced since means a new boot,
            // which checks it again (and refuses a symlink).
            for case .host(let hostPath, _, _) in spec.mounts where !add(ab_open_directory_path_nofollow(hostPath)) { return nil }
            return Fingerprint(
                ids: ids, storage: storage, imageLayers: spec.imageLayers, mounts: spec.mounts, hostname: spec.hostname,
                directories: directories)
        }
    }

    /// One parked sandbox.
    final class Entry: Sendable {
        let supervisor: Supervisor
        let cgroups: SandboxCgroups
        let fingerprint: Fingerprint
        /// The limits its cgroups have.
        let limits: SandboxLimits
        /// The egress proxy's listening socket of its last boot, for the next one.
        let listener: KeptSocket

        init(supervisor: Supervisor, cgroups: SandboxCgroups, fingerprint: Fingerprint, limits: SandboxLimits, listener: KeptSocket = KeptSocket()) {
            self.supervisor = supervisor
            self.cgroups = cgroups
            self.fingerprint = fingerprint
            self.limits = limits
            self.listener = listener
        }

        /// Ends it for good: its init kills nothing (nothing runs) and exits; its cgroups go.
        func stop() async {
            listener.close()
            await supervisor.stop()
            await cgroups.remove()
        }
    }

    /// At most this many are kept; 0 parks none.
    public let capacity: Int
    /// How many boots took a parked sandbox.
    let reuses = Atomic<Int>(0)
    private struct State {
        var parked: RecentlyUsed<String, Entry>
        var closed = false
        /// Stops under way off a caller's path (pushed out, stale), awaited by ``stopAll()``.
        var stopping: [UInt64: Task<Void, Never>] = [:]
        var nextStop: UInt64 = 0
    }
    private let state: Mutex<State>
    private let logger: Logger

    init(capacity: Int, logger: Logger) {
        self.capacity = max(0, capacity)
        self.logger = logger
        state = Mutex(State(parked: RecentlyUsed(capacity: capacity)))
    }

    /// Whether a sandbox may park now.
    var accepts: Bool { capacity > 0 && !state.withLock { $0.closed } }

    /// Whether workspace `id` has a parked sandbox (a boot computes its fingerprint only then).
    func holds(_ id: String) -> Bool { state.withLock { $0.parked.contains(id) } }

    /// How many are parked.
    public var count: Int { state.withLock { $0.parked.count } }

    /// Keeps `entry` for workspace `id`; returns `false` when parking is closed (the caller stops it). Those it
    /// replaces or pushes out are stopped in the background.
    func put(_ id: String, _ entry: Entry) -> Bool {
        state.withLock { state in
            guard !state.closed, capacity > 0 else { return false }
            scheduleStop(state.parked.put(entry, for: id), in: &state)
            return true
        }
    }

    /// Workspace `id`'s parked sandbox, taken out, when it was built from `fingerprint` and its init still runs; one
    /// that does not match or has ended is stopped, off the caller's path.
    func take(_ id: String, matching fingerprint: Fingerprint?) -> Entry? {
        let found = state.withLock { state -> Entry? in
            guard let entry = state.parked.remove(id) else { return nil }
            guard let fingerprint, entry.fingerprint == fingerprint, !entry.supervisor.hasEnded else {
                scheduleStop([entry], in: &state)
                return nil
            }
            return entry
        }
        if found != nil { reuses.add(1, ordering: .relaxed) }
        return found
    }

    /// Takes out workspace `id`'s parked sandbox, if any (its files are going, or being replaced).
    func remove(_ id: String) -> Entry? {
        state.withLock { $0.parked.remove(id) }
    }

    /// Parks no more, stops every parked sandbox (at once) and waits for the stops still under way (the server is
    /// stopping: they hold mounts of the workspaces' files).
    func stopAll() async {
        let (entries, stopping) = state.withLock { state in
            state.closed = true
            return (state.parked.removeAll(), Array(state.stopping.values))
        }
        await withTaskGroup(of: Void.self) { group in
            for entry in entries { group.addTask { await entry.stop() } }
            for task in stopping { group.addTask { await task.value } }
        }
    }

    /// Stops `entries` off the caller's path, registered in the same critical section that took them out, so that
    /// ``stopAll()`` either sees them parked or waits for their stop.
    private func scheduleStop(_ entries: [Entry], in state: inout State) {
        guard !entries.isEmpty else { return }
        let id = state.nextStop
        state.nextStop += 1
        state.stopping[id] = Task {
            await withTaskGroup(of: Void.self) { group in
                for entry in entries { group.addTask { await entry.stop() } }
            }
            _ = self.state.withLock { $0.stopping.removeValue(forKey: id) }
        }
    }
}
