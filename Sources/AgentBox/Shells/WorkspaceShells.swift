import AgentBoxAPI

/// The shells of one workspace: the open ones and the most recently exited ones, and the pump task of each open one.
///
/// Owned by a ``WorkspaceRuntime`` and touched only on its actor. Every pump is owned here: a stop of the workspace
/// waits for them (its sandbox is gone, so each ends), and closing a shell waits for its own.
final class WorkspaceShells {
    /// The most shells one workspace may have open at once.
    static let maxOpen = 64
    /// Exited shells remembered per workspace (the oldest are forgotten first).
    static let exitedMemory = 32

    /// The open shells and the most recently exited ones, by id.
    private var sessions: [String: ShellSession] = [:]
    /// The tasks that run the open shells' terminals.
    private var pumps: [String: Task<Void, Never>] = [:]

    init() {}

    /// The shell `id`, open or recently exited.
    subscript(id: String) -> ShellSession? { sessions[id] }

    /// How many shells are open.
    var openCount: Int { sessions.values.count { $0.info.status == .running } }

    /// Every remembered shell, oldest first.
    var all: [ShellSession] { sessions.values.sorted { $0.info.createdAt < $1.info.createdAt } }

    /// Adds an open shell with the task that runs its terminal.
    func insert(_ session: ShellSession, pump: Task<Void, Never>) {
        sessions[session.id] = session
        pumps[session.id] = pump
    }

    /// The shell `id` has exited: its pump is done; the oldest exited shells beyond ``exitedMemory`` are forgotten.
    func exited(_ id: String) {
        pumps[id] = nil
        let exited = sessions.values.filter { $0.info.status == .exited }.sorted { $0.info.createdAt < $1.info.createdAt }
        for old in exited.dropLast(Self.exitedMemory) { sessions[old.id] = nil }
    }

    /// The pump of shell `id`, while it runs.
    func pump(_ id: String) -> Task<Void, Never>? { pumps[id] }

    /// Forgets the shell `id`.
    func remove(_ id: String) {
        sessions[id] = nil
    }

    /// Every running pump, for the caller to await.
    var runningPumps: [Task<Void, Never>] { Array(pumps.values) }
}
