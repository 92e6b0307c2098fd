import AgentBoxAPI
import AgentBoxStore
import Foundation
import Logging

/// Records when a workspace was last active, off the request path: one writer task per runtime, fed by a buffer of
/// one that keeps only the latest time, so a burst of activity costs at most one pending store write.
///
/// Owned by a ``WorkspaceRuntime``: ``finish()`` lets the writer store what is pending and end, and returns its task
/// to await. A runtime freed without a destroy ends its writer in `deinit` the same way.
final class LastActiveWriter: Sendable {
    private let times: AsyncStream<Date>.Continuation
    private let writer: Task<Void, Never>

    init(store: any Store, key: WorkspaceKey, logger: Logger) {
        let (stream, continuation) = AsyncStream<Date>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.times = continuation
        self.writer = Task {
            for await date in stream {
                do { try await store.touchWorkspace(key: key, at: date) } catch let error as StoreError where error.code == .closed {
                    // The server is stopping; its shutdown stores the last times itself.
                    logger.debug("workspace activity not recorded: the store is closed")
                } catch {
                    logger.warning("could not record workspace activity", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    deinit { times.finish() }

    /// Queues `date` to be stored, replacing a time not yet written.
    func record(_ date: Date) {
        times.yield(date)
    }

    /// Ends the writer once it has stored the time pending; returns its task to await.
    func finish() -> Task<Void, Never> {
        times.finish()
        return writer
    }
}
