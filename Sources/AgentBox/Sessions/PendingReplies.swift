/// The requests of a session that wait for a reply (permission requests, questions), owned by the actor that asks.
///
/// A request is registered *before* the event that tells the client about it is stored and published, so a reply can
/// never come too early: a client that reads the event and answers at once, or a cancel that comes while the event
/// is being stored, finds the request open even though the asking task has not started to wait yet. Answering is in
/// two steps around the owner's (async) recording of the reply: ``close(_:)`` takes the request out of the open ones
/// at once (a second answer, a timeout, finds nothing), ``finish(_:with:)`` hands the answer to the waiting task,
/// or keeps it until ``wait(_:)`` comes; so the reply is in the transcript before the agent hears it.
struct PendingReplies<Info: Sendable, Answer: Sendable> {
    private enum State {
        /// Open for a reply; the continuation once the asking task waits.
        case open(CheckedContinuation<Answer, Never>?)
        /// Answered, the reply being recorded.
        case closing(CheckedContinuation<Answer, Never>?)
        /// Answered and recorded before the asking task waited.
        case closed(Answer)
    }

    private var entries: [String: (info: Info, state: State)] = [:]

    /// Opens `id` for a reply.
    mutating func register(_ id: String, _ info: Info) {
        entries[id] = (info, .open(nil))
    }

    /// What was registered with `id`, while it is open for a reply (`nil` once answered, or when unknown).
    func open(_ id: String) -> Info? {
        guard let entry = entries[id], case .open = entry.state else { return nil }
        return entry.info
    }

    /// The open requests.
    var openIDs: [String] {
        entries.compactMap { id, entry in
            if case .open = entry.state { return id }
            return nil
        }
    }

    /// How many requests are open or being answered.
    var count: Int { entries.count }

    /// Takes `id` out of the open requests; `false` when it is not open (answered already, or unknown).
    mutating func close(_ id: String) -> Bool {
        guard let entry = entries[id], case .open(let continuation) = entry.state else { return false }
        entries[id] = (entry.info, .closing(continuation))
        return true
    }

    /// Delivers the answer of `id`, closed by ``close(_:)``, to the task that waits, or keeps it for ``wait(_:)``.
    mutating func finish(_ id: String, with answer: Answer) {
        guard let entry = entries[id], case .closing(let continuation) = entry.state else { return }
        if let continuation {
            entries[id] = nil
            continuation.resume(returning: answer)
        } else {
            entries[id] = (entry.info, .closed(answer))
        }
    }

    /// Called by the asking task (in the owner's isolation) with the continuation it waits on: the answer comes at
    /// once when it was given already. Each registered id is waited for exactly once.
    mutating func attach(_ id: String, _ continuation: CheckedContinuation<Answer, Never>) {
        guard let entry = entries[id] else { preconditionFailure("waiting for a reply to '\(id)', which was never registered") }
        switch entry.state {
        case .open(nil): entries[id] = (entry.info, .open(continuation))
        case .closing(nil): entries[id] = (entry.info, .closing(continuation))
        case .closed(let answer):
            entries[id] = nil
            continuation.resume(returning: answer)
        case .open(.some), .closing(.some): preconditionFailure("two tasks wait for the reply to '\(id)'")
        }
    }
}
