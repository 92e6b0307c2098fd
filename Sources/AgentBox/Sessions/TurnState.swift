/// Where a session's turn is, and the moves allowed between its states.
///
/// ```
///          accept             start               cancel
///   idle ─────────▶ starting ───────▶ running ─────────────▶ cancelling
///    ▲ ▲               │                 │                       │
///    │ └─── abandon ───┘                 │ finish                │ finish
///    │                                   ▼                       │
///    └──────────── settle ─────────── ended ◀────────────────────┘
/// ```
///
/// A value with no clock and no agent: the session applies an ``Event`` and acts only when the move is allowed
/// (a second cancel, or a cancel before the prompt reached the agent, does nothing). The cancel grace period is a
/// watchdog of the running turn that wakes when the state becomes ``cancelling``.
enum TurnState: Sendable, Equatable, CaseIterable {
    /// No turn: a prompt may start one.
    case idle
    /// A prompt was accepted; the workspace wakes and the agent starts. Other prompts are refused.
    case starting
    /// The agent works on the prompt.
    case running
    /// The client cancelled: the agent was told and has ``AgentBoxConfiguration/cancelGrace`` to end the turn
    /// before it is stopped.
    case cancelling
    /// The agent answered, failed or exited; the turn's end is being recorded.
    case ended

    /// What happens to a turn.
    enum Event: Sendable, CaseIterable {
        /// A prompt is accepted.
        case accept
        /// The accepted prompt could not start (the workspace or the agent did not).
        case abandon
        /// The prompt is sent to the agent.
        case start
        /// The client cancels the turn.
        case cancel
        /// The agent's answer (or its failure) is in.
        case finish
        /// The turn's end is recorded: the session takes the next prompt.
        case settle
    }

    /// The state after `event`, or `nil` when `event` is not allowed in this one.
    func after(_ event: Event) -> TurnState? {
        switch (self, event) {
        case (.idle, .accept): .starting
        case (.starting, .abandon): .idle
        case (.starting, .start): .running
        case (.running, .cancel): .cancelling
        case (.running, .finish), (.cancelling, .finish): .ended
        case (.ended, .settle): .idle
        default: nil
        }
    }

    /// Moves on `event`; returns `false`, staying put, when the move is not allowed.
    @discardableResult
    mutating func apply(_ event: Event) -> Bool {
        guard let next = after(event) else { return false }
        self = next
        return true
    }

    /// From the accepted prompt until its end is recorded: the session shows `running` and refuses other prompts.
    var isBusy: Bool { self != .idle }
}
