/// Lets at most `limit` log messages through per `window` and counts the rest, so that what a sandbox says cannot
/// flood the server's log: the first message it holds back says so, and the first one of the next window says how
/// many were dropped.
struct LogRateLimiter {
    enum Decision: Equatable {
        /// Log it; `dropped` messages were held back before it (say so).
        case log(dropped: Int)
        /// The first message over the limit: log that messages are held back from now on.
        case startDropping
        /// Drop it.
        case drop
    }

    let limit: Int
    let window: Duration
    private var windowStart: ContinuousClock.Instant?
    private var logged = 0
    private var dropped = 0

    init(limit: Int, per window: Duration) {
        self.limit = limit
        self.window = window
    }

    mutating func decide(at now: ContinuousClock.Instant = .now) -> Decision {
        var droppedBefore = 0
        if windowStart.map({ now - $0 >= window }) ?? true {
            windowStart = now
            droppedBefore = dropped
            logged = 0
            dropped = 0
        }
        guard logged < limit else {
            dropped += 1
            return dropped == 1 ? .startDropping : .drop
        }
        logged += 1
        return .log(dropped: droppedBefore)
    }
}
