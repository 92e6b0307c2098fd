import AgentBoxAPI
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOHTTP1

/// Shells: terminals of a workspace (`/v1/workspaces/{key}/shells`), driven over HTTP or attached by WebSocket.
extension AgentBoxClient {
    /// Opens a shell on a new terminal of the workspace (booting it).
    ///
    /// ```swift
    /// let shell = try await client.openShell("demo", ShellCreateRequest(cols: 120, rows: 40))
    /// ```
    public func openShell(_ key: String, _ request: ShellCreateRequest = ShellCreateRequest()) async throws -> Shell {
        try await send(.POST, Self.workspacePath(key) + "/shells", json: request)
    }

    /// The workspace's open shells.
    public func shells(_ key: String) async throws -> ShellList {
        try await send(.GET, Self.workspacePath(key) + "/shells")
    }

    /// One shell.
    public func shell(_ key: String, _ id: String) async throws -> Shell {
        try await send(.GET, Self.shellPath(key, id))
    }

    /// Writes bytes to the shell's terminal, as if typed.
    public func writeShellInput(_ key: String, _ id: String, _ bytes: [UInt8]) async throws {
        try await sendBytes(Self.shellPath(key, id) + "/input", bytes)
    }

    /// Changes the size of the shell's terminal.
    public func resizeShell(_ key: String, _ id: String, cols: Int, rows: Int) async throws {
        _ = try await perform(.POST, Self.shellPath(key, id) + "/resize", json: ShellResize(cols: cols, rows: rows))
    }

    /// Closes the shell: its process group dies.
    public func closeShell(_ key: String, _ id: String) async throws {
        _ = try await perform(.DELETE, Self.shellPath(key, id))
    }

    /// Attaches to the shell's WebSocket and runs `body` with its inbound and outbound sides until either closes.
    /// Binary frames carry terminal bytes; send ``ShellControlMessage`` resize frames as text.
    /// ``withShellConnection(_:_:logger:_:)`` offers the same in the API's own terms.
    public func attachShell(
        _ key: String, _ id: String, logger: Logger = Logger(label: "agentbox.client"),
        _ body: @escaping @Sendable (WebSocketInboundStream, WebSocketOutboundWriter) async throws -> Void
    ) async throws {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        let configuration = WebSocketClientConfiguration(maxFrameSize: ShellConnection.maximumMessageSize, additionalHeaders: headers)
        let address = url(Self.shellPath(key, id) + "/ws", scheme: endpoint.scheme == "https" ? "wss" : "ws")
        try await WebSocketClient.connect(url: address, configuration: configuration, logger: logger) { inbound, outbound, _ in
            try await body(inbound, outbound)
        }
    }

    /// Attaches to the shell's terminal and runs `body` with the connection until it returns or the shell closes.
    /// Several clients may attach to one shell; each sees its output from the moment it attaches.
    ///
    /// ```swift
    /// try await client.withShellConnection("demo", shell.id) { shell in
    ///     try await shell.write(ByteBuffer(string: "echo hi; exit\n"))
    ///     for try await message in shell.messages {
    ///         if case .terminal(let bytes) = message { print(String(buffer: bytes), terminator: "") }
    ///     }
    /// }
    /// ```
    public func withShellConnection(
        _ key: String, _ id: String, logger: Logger = Logger(label: "agentbox.client"),
        _ body: @escaping @Sendable (ShellConnection) async throws -> Void
    ) async throws {
        try await attachShell(key, id, logger: logger) { inbound, outbound in
            try await body(ShellConnection(inbound: inbound, outbound: outbound))
        }
    }

    static func shellPath(_ key: String, _ id: String) -> String {
        workspacePath(key) + "/shells/" + segment(id)
    }
}
