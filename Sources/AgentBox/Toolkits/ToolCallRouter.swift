import AgentBoxAPI
import Foundation
import Synchronization

/// The calls of `client` tools in flight, and the clients that serve them.
///
/// A client serves a toolkit by holding `GET /v1/toolkits/{name}/calls` open (``subscribe(toolkit:)``); each call goes
/// to one of the toolkit's clients (the one that waited longest for work, round robin) and waits for
/// ``reply(toolkit:callId:_:)`` or its timeout. A toolkit with no client connected fails its calls at once.
final class ToolCallRouter: Sendable {
    /// The most calls a client may have waiting to be sent to it; beyond, calls fail as busy (a client that stopped
    /// reading does not make calls pile up).
    static let clientBuffer = 256

    private struct Client {
        var id: UInt64
        var continuation: AsyncStream<ToolCallRequest>.Continuation
    }

    private struct State {
        var clients: [String: [Client]] = [:]
        var next: [String: Int] = [:]
        var pending: [String: (toolkit: String, continuation: CheckedContinuation<Result<JSONValue, ToolCallFailure>, Never>)] = [:]
        var nextClient: UInt64 = 0
    }

    private let state = Mutex(State())

    init() {}

    /// A stream of the calls for `toolkit`'s client tools, for one client; ending it (the client disconnects) takes
    /// the client out of the rotation.
    func subscribe(toolkit: String) -> AsyncStream<ToolCallRequest> {
        let (stream, continuation) = AsyncStream<ToolCallRequest>.makeStream(bufferingPolicy: .bufferingOldest(Self.clientBuffer))
        let id = state.withLock { state -> UInt64 in
            state.nextClient += 1
            state.clients[toolkit, default: []].append(Client(id: state.nextClient, continuation: continuation))
            return state.nextClient
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { state in
                state.clients[toolkit]?.removeAll { $0.id == id }
                if state.clients[toolkit]?.isEmpty == true { state.clients[toolkit] = nil }
            }
        }
        return stream
    }

    /// How many clients serve `toolkit` now.
    func clientCount(toolkit: String) -> Int {
        state.withLock { $0.clients[toolkit]?.count ?? 0 }
    }

    /// Sends `request` to a client of `toolkit` and waits for its reply, at most `timeout`.
    func call(toolkit: String, _ request: ToolCallRequest, timeout: Duration) async -> Result<JSONValue, ToolCallFailure> {
        await withTaskGroup(of: Result<JSONValue, ToolCallFailure>?.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let failure = self.state.withLock { state -> ToolCallFailure? in
                        guard let clients = state.clients[toolkit], !clients.isEmpty else {
                            return .error("no client serves toolkit '\(toolkit)' (connect one to GET /v1/toolkits/\(toolkit)/calls)")
                        }
                        state.pending[request.callId] = (toolkit, continuation)
                        // Round robin, skipping a client whose buffer is full.
                        let start = state.next[toolkit, default: 0]
                        for offset in 0..<clients.count {
                            let index = (start + offset) % clients.count
                            if case .enqueued = clients[index].continuation.yield(request) {
                                state.next[toolkit] = index + 1
                                return nil
                            }
                        }
                        state.pending[request.callId] = nil
                        return .error("the clients of toolkit '\(toolkit)' are busy (each has \(Self.clientBuffer) calls waiting)")
                    }
                    if let failure { continuation.resume(returning: .failure(failure)) }
                }
            }
            group.addTask {
                do { try await Task.sleep(for: timeout) } catch { return nil }
                return .failure(.timeout)
            }
            let first = await group.next() ?? nil
            switch first {
            case .failure(.timeout)?:
                // The waiting call is ended by resuming it (so that the group can finish); a late reply finds nothing.
                self.finish(callId: request.callId, .failure(.timeout))
                _ = await group.next()
                return .failure(.timeout)
            case nil:
                // The caller was cancelled (its workspace stops): end the waiting call the same way.
                self.finish(callId: request.callId, .failure(.error("cancelled")))
                let rest = await group.next()
                return (rest ?? nil) ?? .failure(.error("cancelled"))
            case let result?:
                group.cancelAll()
                return result
            }
        }
    }

    /// A client's answer to call `callId` of `toolkit`. `false` when no such call waits (answered, timed out, unknown).
    func reply(toolkit: String, callId: String, _ result: Result<JSONValue, ToolCallFailure>) -> Bool {
        let matches = state.withLock { $0.pending[callId]?.toolkit == toolkit }
        guard matches else { return false }
        return finish(callId: callId, result)
    }

    @discardableResult
    private func finish(callId: String, _ result: Result<JSONValue, ToolCallFailure>) -> Bool {
        let waiting = state.withLock { $0.pending.removeValue(forKey: callId) }
        waiting?.continuation.resume(returning: result)
        return waiting != nil
    }
}

/// Why a tool call failed.
enum ToolCallFailure: Error, Equatable {
    /// The handler failed, refused, or answered something unusable: the message says which.
    case error(String)
    /// It did not answer in time.
    case timeout
}
