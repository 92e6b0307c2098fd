/// Unstructured tasks that one owner started and must end: it cancels them and waits for them when the workspace
/// stops or is destroyed, so that no task of a workspace outlives it.
///
/// Not `Sendable`: it lives inside its owner's actor and is touched only there. A task tells its end with
/// ``finished(_:)`` (on the actor), so the set holds only the tasks still running and stays as small as they are.
final class OwnedTasks {
    private var tasks: [UInt64: Task<Void, Never>] = [:]
    private var nextID: UInt64 = 0

    init() {}

    /// Starts `operation` with its number, which it passes to ``finished(_:)`` on the owner's actor once done.
    /// Returns the task, for a caller that may cancel it sooner (such as the end of a stream it feeds).
    @discardableResult
    func start(_ operation: @escaping @Sendable (UInt64) async -> Void) -> Task<Void, Never> {
        let id = nextID
        nextID += 1
        let task = Task { await operation(id) }
        tasks[id] = task
        return task
    }

    /// Forgets the task `id`: it has ended.
    func finished(_ id: UInt64) {
        tasks[id] = nil
    }

    /// Cancels the task `id` and returns it, for the caller to await.
    func cancel(_ id: UInt64) -> Task<Void, Never>? {
        let task = tasks.removeValue(forKey: id)
        task?.cancel()
        return task
    }

    /// Cancels every task and returns them, for the caller to await (on its actor, outside this class).
    func cancelAll() -> [Task<Void, Never>] {
        let all = Array(tasks.values)
        tasks.removeAll()
        for task in all { task.cancel() }
        return all
    }

    /// Every task still running, left running, for the caller to await.
    var running: [Task<Void, Never>] { Array(tasks.values) }

    /// How many tasks are running (for tests).
    var count: Int { tasks.count }
}
