import AgentBoxAPI
import Synchronization

/// One follower's view of a process: its output so far, then its live output and its `processExit`, in order, after
/// which the sequence ends.
///
/// The process does not wait for its followers (its output goes to every subscriber of the workspace at once), so a
/// follower that reads slower than the process writes holds the difference. That is bounded by bytes, not by a count
/// of chunks: a follower more than ``byteLimit`` behind is ended there, with ``lost`` set, so that it can say so
/// rather than hand on output with a hole in it (a count of chunks used to drop the newest ones silently, the exit
/// among them).
public struct ProcessFollow: AsyncSequence, Sendable {
    public typealias Element = (seq: Int64?, event: WorkspaceEvent)

    /// How far behind the process one follower may fall, in bytes of output.
    public static let byteLimit = 16 << 20

    let stream: AsyncStream<Element>
    let ledger: Ledger

    /// Whether the sequence ended because this follower fell ``byteLimit`` behind, or lost the workspace's events:
    /// it then ends without `processExit`.
    public var lost: Bool { ledger.lost }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(inner: stream.makeAsyncIterator(), ledger: ledger)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var inner: AsyncStream<Element>.AsyncIterator
        let ledger: Ledger

        public mutating func next() async -> Element? {
            guard let element = await inner.next() else { return nil }
            ledger.taken(Ledger.size(of: element.event))
            return element
        }
    }

    /// The bytes handed to the follower and not yet taken, and whether it was ended for being behind.
    final class Ledger: Sendable {
        private let state = Mutex<(held: Int, lost: Bool)>((0, false))

        var lost: Bool { state.withLock { $0.lost } }

        /// Counts `bytes` as held; false (and `lost` set) when that would pass ``ProcessFollow/byteLimit``.
        func hold(_ bytes: Int) -> Bool {
            state.withLock { state in
                guard state.held + bytes <= ProcessFollow.byteLimit || state.held == 0 else {
                    state.lost = true
                    return false
                }
                state.held += bytes
                return true
            }
        }

        func taken(_ bytes: Int) {
            state.withLock { $0.held = Swift.max(0, $0.held - bytes) }
        }

        func markLost() {
            state.withLock { $0.lost = true }
        }

        static func size(of event: WorkspaceEvent) -> Int {
            if case .processOutput(let output) = event { return output.data.utf8.count }
            return 0
        }
    }
}
