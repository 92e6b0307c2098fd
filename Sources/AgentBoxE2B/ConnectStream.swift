import AsyncAlgorithms
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// What a server stream's producer hands the writer: a message, or the end (with an error, or none).
enum ConnectStreamItem: Sendable {
    case message(Data)
    case end(ConnectError?)
}

/// A Connect server stream: each message in an envelope, flushed as it is produced; a keepalive message whenever the
/// stream has been quiet for half the client's `Keepalive-Ping-Interval`; the end-of-stream envelope last.
///
/// The producer hands messages over through an `AsyncChannel`, one at a time as the writer takes them, so a slow
/// client holds the producer back instead of growing a buffer.
enum ConnectStream {
    static let contentType = "application/connect+json"

    static func response(
        request: Request, keepalive: Data, deadline: Duration? = nil, activity: (sandboxes: E2BSandboxes, id: String)? = nil,
        onDeadline: @escaping @Sendable () async -> Void = {},
        produce: @escaping @Sendable (_ send: @Sendable (Data) async -> Void) async -> ConnectError?
    ) -> Response {
        let interval = keepaliveInterval(request)
        return Response(
            status: .ok, headers: [.contentType: contentType],
            body: ResponseBody { writer in
                if let activity { await activity.sandboxes.streamOpened(activity.id) }
                let channel = AsyncChannel<ConnectStreamItem>()
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        let error = await produce { message in await channel.send(.message(message)) }
                        await channel.send(.end(error))
                    }
                    group.addTask {
                        while !Task.isCancelled {
                            do { try await Task.sleep(for: interval) } catch { return }
                            await channel.send(.message(keepalive))
                        }
                    }
                    if let deadline {
                        group.addTask {
                            do { try await Task.sleep(for: deadline) } catch { return }
                            await onDeadline()
                            await channel.send(.end(ConnectError(.deadlineExceeded, "the call's deadline passed")))
                        }
                    }
                    for await item in channel {
                        do {
                            switch item {
                            case .message(let message):
                                try await writer.write(ConnectEnvelope.frame(message))
                            case .end(let error):
                                try await writer.write(ConnectEnvelope.end(error))
                                try await writer.finish(nil)
                                channel.finish()
                            }
                        } catch {
                            // The client went away: stop producing.
                            channel.finish()
                        }
                    }
                    group.cancelAll()
                }
                if let activity { await activity.sandboxes.streamClosed(activity.id) }
            })
    }

    /// Half the client's `Keepalive-Ping-Interval` (seconds), 1 s to 25 s; 25 s when it names none.
    static func keepaliveInterval(_ request: Request) -> Duration {
        let asked = request.headers[HTTPField.Name("Keepalive-Ping-Interval")!].flatMap { Double($0) } ?? 50
        return .milliseconds(Int64(min(25, max(1, asked / 2)) * 1000))
    }

    /// The call's deadline from `Connect-Timeout-Ms`, if it names one.
    static func deadline(_ request: Request) -> Duration? {
        guard let text = request.headers[HTTPField.Name("Connect-Timeout-Ms")!], let ms = Int64(text), ms > 0 else { return nil }
        return .milliseconds(min(ms, 10_000_000_000))
    }

    static func json(_ object: [String: Any]) -> Data {
        (try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8)
    }
}
