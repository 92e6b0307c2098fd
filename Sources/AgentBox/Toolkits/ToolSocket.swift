import AgentBoxSandbox
import Foundation
import NIOCore
import NIOPosix

/// The Unix socket through which one workspace's `agentbox-{toolkit}` commands reach the server.
///
/// Each awake workspace with toolkits has a socket of its own, in a host directory that only its sandbox mounts (at
/// `/.agentbox/run`). The socket a call comes in on is the caller's identity: nothing a workspace sends can name
/// another workspace, and the channel needs no network (it works with egress `deny`). Requests are read with bounds
/// (see ``ToolSocketRequest``); each connection is served in a task of its own, at most ``maxConnections`` at once, so a
/// hung handler holds only its own call.
final class ToolSocket: Sendable {
    /// Connections served at once per workspace; more wait in the socket's backlog.
    static let maxConnections = 64

    let path: String
    private let server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>

    private init(path: String, server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) {
        self.path = path
        self.server = server
    }

    /// Listens at `path` (replacing a stale socket file), readable and writable by the workspace's processes.
    static func open(path: String) async throws -> ToolSocket {
        guard path.utf8.count < 108 else {
            throw AgentBoxError(.internalError, "the tools socket path \(path) is longer than a Unix socket allows (107 bytes)")
        }
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 128)
            // An MCP client that closes its side (stdin ended) still gets the answers of its calls.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        // The workspace's root is an unprivileged uid on the host: it must be able to connect.
        chmod(path, 0o666)
        return ToolSocket(path: path, server: server)
    }

    /// Serves connections until the socket is closed or the task cancelled: a command's request is read, handed to
    /// `handlers.command`, and its result written back; an MCP connection is handed to `handlers.mcp` for as long as
    /// it lasts.
    func run(_ handlers: ToolSocketHandlers) async {
        let slots = AsyncLimiter(limit: Self.maxConnections)
        do {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        await slots.acquire()
                        group.addTask {
                            defer { slots.release() }
                            await Self.serve(connection, handlers)
                        }
                    }
                }
            }
        } catch {
            // The socket closed (the workspace stops): the connections end with it.
        }
    }

    /// Stops listening and removes the socket file.
    func close() async {
        try? await server.channel.close()
        unlink(path)
    }

    private static func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, _ handlers: ToolSocketHandlers) async {
        try? await connection.executeThenClose { inbound, outbound in
            var parser = ToolSocketRequest.Parser()
            var request: ToolSocketRequest?
            var iterator = inbound.makeAsyncIterator()
            do {
                while request == nil, let buffer = try await iterator.next() {
                    request = try parser.feed(buffer)
                }
            } catch let error as ToolSocketRequest.Malformed {
                try await outbound.write(Self.reply(.failure("agentbox-tool: \(error.reason)")))
                return
            }
            guard let request else { return }
            switch request.kind {
            case .command:
                try await outbound.write(Self.reply(await handlers.command(request)))
            case .mcp:
                guard let mcp = handlers.mcp else { return }  // no MCP server configured: the relay sees the end
                let lines = ToolSocketLines(leftover: parser.leftover, iterator: iterator)
                await mcp(
                    request.sessionId,
                    AsyncThrowingStream(unfolding: { try await lines.next() }),
                    { message in
                        var buffer = ByteBuffer(bytes: message)
                        buffer.writeInteger(UInt8(0x0A))
                        try await outbound.write(buffer)
                    })
            }
        }
    }

    /// `O<len>\n<stdout>E<len>\n<stderr>X<code>\n`.
    static func reply(_ result: ToolCommandResult) -> ByteBuffer {
        var buffer = ByteBuffer()
        for (kind, text) in [("O", result.stdout), ("E", result.stderr)] where !text.isEmpty {
            buffer.writeString("\(kind)\(text.utf8.count)\n")
            buffer.writeString(text)
        }
        buffer.writeString("X\(result.exitCode)\n")
        return buffer
    }
}

/// One call of an `agentbox-{toolkit}` command, as it arrives on a workspace's tools socket.
///
/// Wire form: `AGENTBOX-TOOL 1\n`, then `T<len>\n<toolkit>`, an optional `S<len>\n<session id>`, `A<len>\n<argument>`
/// per argument, and `.\n`. At most 1,000 arguments and 4 MiB in all: a workspace that sends more gets an error, and
/// the server never holds more than that per connection.
///
/// An MCP connection (`/.agentbox/bin/tool mcp`) starts `AGENTBOX-MCP 1\n`, an optional `S<len>\n<session id>` and
/// `.\n`; what follows is MCP's stdio transport, JSON-RPC messages one per line, both ways (see ``ToolSocketLines``).
struct ToolSocketRequest: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case command
        case mcp
    }

    var kind: Kind = .command
    var toolkit: String
    var sessionId: String?
    var arguments: [String]

    static let maxBytes = 4 << 20
    static let maxArguments = 1000

    struct Malformed: Error, Equatable {
        var reason: String
    }

    /// An incremental reader of the wire form.
    struct Parser {
        private var bytes: [UInt8] = []
        private var offset = 0
        private var headerSeen = false
        private var kind = Kind.command
        private var toolkit: String?
        private var sessionId: String?
        private var arguments: [String] = []

        /// Adds what arrived; answers the request once it is whole.
        mutating func feed(_ buffer: ByteBuffer) throws(Malformed) -> ToolSocketRequest? {
            guard bytes.count + buffer.readableBytes <= ToolSocketRequest.maxBytes else {
                throw Malformed(reason: "the call is larger than \(ToolSocketRequest.maxBytes) bytes")
            }
            bytes.append(contentsOf: buffer.readableBytesView)
            if !headerSeen {
                guard let line = try nextLine() else { return nil }
                switch line {
                case "AGENTBOX-TOOL 1": kind = .command
                case "AGENTBOX-MCP 1": kind = .mcp
                default: throw Malformed(reason: "not an agentbox-tool call")
                }
                headerSeen = true
            }
            while offset < bytes.count {
                let start = offset
                guard let line = try nextLine() else { return nil }
                guard let kind = line.first else { throw Malformed(reason: "an empty field") }
                if kind == "." {
                    if self.kind == .mcp {
                        return ToolSocketRequest(kind: .mcp, toolkit: "", sessionId: sessionId, arguments: [])
                    }
                    guard let toolkit else { throw Malformed(reason: "the call names no toolkit") }
                    return ToolSocketRequest(toolkit: toolkit, sessionId: sessionId, arguments: arguments)
                }
                guard let length = Int(line.dropFirst()), length >= 0, length <= ToolSocketRequest.maxBytes else {
                    throw Malformed(reason: "a malformed field length")
                }
                guard bytes.count - offset >= length else {
                    offset = start  // wait for the rest of this field
                    return nil
                }
                let value = String(decoding: bytes[offset..<offset + length], as: UTF8.self)
                offset += length
                switch kind {
                case "T" where self.kind == .command: toolkit = value
                case "S": sessionId = value
                case "A" where self.kind == .command:
                    guard arguments.count < ToolSocketRequest.maxArguments else {
                        throw Malformed(reason: "more than \(ToolSocketRequest.maxArguments) arguments")
                    }
                    arguments.append(value)
                default: throw Malformed(reason: "an unknown field '\(kind)'")
                }
            }
            return nil
        }

        /// What arrived after the request's end (an MCP connection's first messages).
        var leftover: [UInt8] { Array(bytes[offset...]) }

        /// The next line (without its newline), or `nil` when it has not fully arrived. Lines are at most 32 bytes.
        private mutating func nextLine() throws(Malformed) -> String? {
            let end = min(bytes.count, offset + 33)
            guard let newline = bytes[offset..<end].firstIndex(of: 0x0A) else {
                if end - offset >= 33 { throw Malformed(reason: "a header line longer than 32 bytes") }
                return nil
            }
            let line = String(decoding: bytes[offset..<newline], as: UTF8.self)
            offset = newline + 1
            return line
        }
    }
}

/// What a workspace's tools socket serves: `agentbox-{toolkit}` commands, and MCP connections (`nil`: refused).
struct ToolSocketHandlers: Sendable {
    /// Serves one MCP connection: the session id it names, its messages in, and a way to send one out.
    typealias MCPHandler = @Sendable (
        _ sessionId: String?, _ messages: AsyncThrowingStream<[UInt8], any Error>, _ send: @escaping @Sendable ([UInt8]) async throws -> Void
    ) async -> Void

    var command: @Sendable (ToolSocketRequest) async -> ToolCommandResult
    var mcp: MCPHandler?
}

/// The messages of an MCP connection on a tools socket: newline-delimited, each at most ``maxBytes`` (a longer one
/// ends the connection with an error), read from the socket only as they are asked for, so a workspace that floods
/// the socket waits on its own writes and the server holds at most one message per connection.
///
/// Its one reader asks for one message at a time (the MCP server's receive loop); the box is not used concurrently.
final class ToolSocketLines: @unchecked Sendable {
    static let maxBytes = ToolSocketRequest.maxBytes

    struct TooLong: Error, CustomStringConvertible {
        var description: String { "an MCP message longer than \(ToolSocketLines.maxBytes) bytes" }
    }

    private var pending: [UInt8]
    /// How much of `pending` is known to hold no newline.
    private var scanned = 0
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private var ended = false

    init(leftover: [UInt8], iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) {
        pending = leftover
        self.iterator = iterator
    }

    /// The next message (without its newline; empty lines skipped), or `nil` at the connection's end.
    func next() async throws -> [UInt8]? {
        while true {
            if let newline = pending[scanned...].firstIndex(of: 0x0A) {
                let line = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                scanned = 0
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
                return line
            }
            scanned = pending.count
            guard pending.count <= Self.maxBytes else { throw TooLong() }
            guard !ended, let buffer = try await iterator.next() else {
                ended = true
                // A last message without a newline still counts.
                defer { pending = [] }
                return pending.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) ? nil : pending
            }
            pending.append(contentsOf: buffer.readableBytesView)
        }
    }
}
