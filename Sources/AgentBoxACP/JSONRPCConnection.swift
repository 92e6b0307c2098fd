import AgentBoxAPI
import Foundation

/// A JSON-RPC 2.0 error object; thrown by a request whose peer answered with an error, and by handlers to answer one.
public struct JSONRPCError: Error, Codable, Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public static func methodNotFound(_ method: String) -> JSONRPCError { JSONRPCError(code: -32601, message: "method not found: \(method)") }
    public static func invalidParams(_ detail: String) -> JSONRPCError { JSONRPCError(code: -32602, message: "invalid params: \(detail)") }
    public static func internalError(_ detail: String) -> JSONRPCError { JSONRPCError(code: -32603, message: detail) }
    /// The connection ended before the answer came.
    public static let connectionClosed = JSONRPCError(code: -32000, message: "the connection closed")

    public var description: String { "\(message) (\(code))" }
}

/// One side of a JSON-RPC 2.0 connection whose messages are single lines of JSON (ACP's stdio transport).
///
/// Feed it the peer's lines with ``receive(line:)``, one at a time and in order; it writes its own through `send`.
/// Notifications are handled before the next line is read, so they keep their order relative to the responses
/// around them (an ACP prompt's `session/update`s all arrive before the prompt's answer). The peer's requests are
/// handled concurrently, so one that waits (a permission question) does not stop the stream.
public actor JSONRPCConnection {
    public typealias RequestHandler = @Sendable (_ method: String, _ params: JSONValue?) async throws -> JSONValue
    public typealias NotificationHandler = @Sendable (_ method: String, _ params: JSONValue?) async -> Void

    private let send: @Sendable (Data) async throws -> Void
    private var requestHandler: RequestHandler = { method, _ in throw JSONRPCError.methodNotFound(method) }
    private var notificationHandler: NotificationHandler = { _, _ in }
    private var nextID = 1
    private var pending: [Int: CheckedContinuation<JSONValue, any Error>] = [:]
    private var closed = false
    private var handlers: [Task<Void, Never>] = []

    /// `send` writes one message: a line of JSON ending in `\n`.
    public init(send: @escaping @Sendable (Data) async throws -> Void) {
        self.send = send
    }

    public func setHandlers(request: @escaping RequestHandler, notification: @escaping NotificationHandler) {
        requestHandler = request
        notificationHandler = notification
    }

    /// Sends a request and waits for its answer.
    public func request(_ method: String, params: JSONValue?) async throws -> JSONValue {
        guard !closed else { throw JSONRPCError.connectionClosed }
        let id = nextID
        nextID += 1
        var message: [String: JSONValue] = ["jsonrpc": .string("2.0"), "id": .number(Double(id)), "method": .string(method)]
        if let params { message["params"] = params }
        let line = try Self.encode(.object(message))
        return try await withCheckedThrowingContinuation { continuation in
            pending[id] = continuation
            Task {
                // A write that fails means the peer is gone (a broken pipe): the request ends as the connection did.
                do { try await self.send(line) } catch { self.fail(id, JSONRPCError.connectionClosed) }
            }
        }
    }

    /// Sends a notification.
    public func notify(_ method: String, params: JSONValue?) async throws {
        guard !closed else { throw JSONRPCError.connectionClosed }
        var message: [String: JSONValue] = ["jsonrpc": .string("2.0"), "method": .string(method)]
        if let params { message["params"] = params }
        let line = try Self.encode(.object(message))
        do { try await send(line) } catch { throw JSONRPCError.connectionClosed }
    }

    /// Handles one line from the peer. A line that is not a JSON-RPC message is answered with a parse error when it
    /// could be a request, and otherwise ignored.
    public func receive(line: Data) async {
        guard !closed, !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) else { return }
        guard case .object(let message)? = try? JSONValue.parse(line) else {
            await answer(id: .null, result: .failure(JSONRPCError(code: -32700, message: "parse error: not a JSON object")))
            return
        }
        let id = message["id"]
        if case .string(let method)? = message["method"] {
            let params = message["params"]
            if let id, id != .null {
                let handler = requestHandler
                handlers.removeAll { $0.isCancelled }
                handlers.append(
                    Task {
                        let result: Result<JSONValue, any Error>
                        do { result = .success(try await handler(method, params)) } catch { result = .failure(error) }
                        await self.answer(id: id, result: result)
                    })
            } else {
                await notificationHandler(method, params)
            }
            return
        }
        // A response to one of ours.
        guard case .number(let number)? = id, let continuation = pending.removeValue(forKey: Int(number)) else { return }
        if case .object(let error)? = message["error"] {
            let code: Int = if case .number(let code)? = error["code"] { Int(code) } else { -32603 }
            let text: String = if case .string(let text)? = error["message"] { text } else { "error" }
            continuation.resume(throwing: JSONRPCError(code: code, message: text, data: error["data"]))
        } else {
            continuation.resume(returning: message["result"] ?? .null)
        }
    }

    /// Ends the connection: pending requests fail with `connectionClosed`.
    public func close() {
        closed = true
        for continuation in pending.values { continuation.resume(throwing: JSONRPCError.connectionClosed) }
        pending.removeAll()
        for handler in handlers { handler.cancel() }
        handlers.removeAll()
    }

    private func fail(_ id: Int, _ error: any Error) {
        pending.removeValue(forKey: id)?.resume(throwing: error)
    }

    private func answer(id: JSONValue, result: Result<JSONValue, any Error>) async {
        guard !closed else { return }
        var message: [String: JSONValue] = ["jsonrpc": .string("2.0"), "id": id]
        switch result {
        case .success(let value): message["result"] = value
        case .failure(let error):
            let rpc = error as? JSONRPCError ?? JSONRPCError.internalError("\(error)")
            var object: [String: JSONValue] = ["code": .number(Double(rpc.code)), "message": .string(rpc.message)]
            if let data = rpc.data { object["data"] = data }
            message["error"] = .object(object)
        }
        if let line = try? Self.encode(.object(message)) { try? await send(line) }
    }

    static func encode(_ value: JSONValue) throws -> Data {
        var bytes = value.jsonBytes
        bytes.append(0x0A)
        return Data(bytes)
    }
}

/// Splits a byte stream into lines, each at most `maximum` bytes (a longer one is an error: a peer cannot make the
/// reader hold unbounded memory).
public struct LineSplitter: Sendable {
    public let maximum: Int
    private var buffer = Data()

    public init(maximum: Int = 16 << 20) { self.maximum = maximum }

    public struct LineTooLong: Error, CustomStringConvertible {
        public let maximum: Int
        public var description: String { "a line is longer than \(maximum) bytes" }
    }

    /// Adds `bytes` and returns the lines they complete (without their `\n`).
    ///
    /// Linear in what arrives: only the new bytes are searched for newlines (the kept partial line has none), and
    /// what was consumed is dropped once per call. A peer that sends a long line in small pieces cost a search of the
    /// whole line per piece before, quadratic in its length.
    public mutating func append(_ bytes: some Sequence<UInt8>) throws -> [Data] {
        let searchFrom = buffer.count
        buffer.append(contentsOf: bytes)
        var lines: [Data] = []
        var lineStart = buffer.startIndex
        var searched = buffer.index(buffer.startIndex, offsetBy: searchFrom)
        while let newline = buffer[searched...].firstIndex(of: 0x0A) {
            lines.append(Data(buffer[lineStart..<newline]))
            lineStart = buffer.index(after: newline)
            searched = lineStart
        }
        if lineStart != buffer.startIndex { buffer.removeSubrange(buffer.startIndex..<lineStart) }
        guard buffer.count <= maximum else { throw LineTooLong(maximum: maximum) }
        return lines
    }
}
