import Testing

@testable import AgentBox
import AgentBoxSandbox

@Suite("A session's turn state machine")
struct TurnStateTests {
    /// Every allowed move; every other (state, event) pair is refused.
    static let allowed: [TurnState: [TurnState.Event: TurnState]] = [
        .idle: [.accept: .starting],
        .starting: [.abandon: .idle, .start: .running],
        .running: [.cancel: .cancelling, .finish: .ended],
        .cancelling: [.finish: .ended],
        .ended: [.settle: .idle],
    ]

    @Test(arguments: TurnState.allCases)
    func onlyTheListedMovesAreAllowed(from state: TurnState) {
        for event in TurnState.Event.allCases {
            var moved = state
            let expected = Self.allowed[state]?[event]
            #expect(state.after(event) == expected, "\(state) on \(event)")
            let applied = moved.apply(event)
            #expect(applied == (expected != nil), "\(state) on \(event)")
            #expect(moved == expected ?? state, "a refused move stays put: \(state) on \(event)")
        }
    }

    /// Applies `events` in turn; returns which of them were allowed.
    static func run(_ state: inout TurnState, _ events: [TurnState.Event]) -> [Bool] {
        events.map { state.apply($0) }
    }

    @Test func aTurnGoesRoundAndACancelledOneToo() {
        var state = TurnState.idle
        #expect(Self.run(&state, [.accept, .start, .finish, .settle]) == [true, true, true, true])
        #expect(state == .idle)
        #expect(Self.run(&state, [.accept, .start, .cancel, .finish, .settle]) == [true, true, true, true, true])
        #expect(state == .idle)
    }

    @Test func aSecondPromptACancelBeforeTheStartAndASecondCancelAreRefused() {
        var state = TurnState.idle
        // accept; a second prompt; a cancel before the prompt reached the agent; start; cancel; cancel again.
        #expect(Self.run(&state, [.accept, .accept, .cancel, .start, .cancel, .cancel]) == [true, false, false, true, true, false])
        #expect(state == .cancelling)
    }

    @Test func theSessionIsBusyFromTheAcceptedPromptUntilTheTurnSettles() {
        #expect(TurnState.allCases.filter(\.isBusy) == [.starting, .running, .cancelling, .ended])
    }
}

@Suite("Alarms that turn watchdogs wait for")
struct AlarmTests {
    @Test func aWaiterGetsTheReasonAndLaterWaitsReturnAtOnceUntilLowered() async {
        let alarm = Alarm()
        async let waited = alarm.wait()
        // The waiter may or may not be registered yet: either way it gets the reason.
        alarm.raise("stop")
        #expect(await waited == "stop")
        #expect(await alarm.wait() == "stop")
        alarm.lower()
        #expect(alarm.reason == nil)
    }

    @Test func cancellingAWaiterEndsItsWait() async {
        let alarm = Alarm()
        let waiter = Task { await alarm.wait() }
        waiter.cancel()
        #expect(await waiter.value == nil)
        alarm.raise("late")
        #expect(alarm.reason == "late")
    }
}
