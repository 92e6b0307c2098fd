import Foundation

/// The body of `POST /v1/workspaces/{key}/shells`. Every field is optional.
public struct ShellCreateRequest: Codable, Sendable, Equatable {
    /// The program (default: the workspace's login shell, `/bin/bash -l`).
    public var command: String?
    public var args: [String]?
    /// Default `/workspace`.
    public var cwd: String?
    public var env: [String: String]?
    /// Terminal size; default 80 × 24.
    public var cols: Int?
    public var rows: Int?
    /// The user the shell runs as: `agent` (uid 1000, unprivileged) or `root` (the workspace's root, the default).
    public var user: String?

    public init(
        command: String? = nil, args: [String]? = nil, cwd: String? = nil, env: [String: String]? = nil, cols: Int? = nil, rows: Int? = nil,
        user: String? = nil
    ) {
        self.command = command
        self.args = args
        self.cwd = cwd
        self.env = env
        self.cols = cols
        self.rows = rows
        self.user = user
    }
}

/// Whether a shell's process still runs.
public enum ShellStatus: String, Codable, Sendable {
    case running
    case exited
}

/// An interactive shell: a process on a pseudo-terminal inside the workspace.
public struct Shell: Codable, Sendable, Equatable {
    /// `shell_` and 16 letters or digits.
    public var id: String
    public var command: String
    public var args: [String]
    public var cols: Int
    public var rows: Int
    public var status: ShellStatus
    /// Set once it has exited: its exit code (128 + the signal's number when a signal ended it).
    public var exitCode: Int32?
    public var pid: Int32
    public var createdAt: Date

    public init(id: String, command: String, args: [String], cols: Int, rows: Int, status: ShellStatus, exitCode: Int32? = nil, pid: Int32, createdAt: Date) {
        self.id = id
        self.command = command
        self.args = args
        self.cols = cols
        self.rows = rows
        self.status = status
        self.exitCode = exitCode
        self.pid = pid
        self.createdAt = createdAt
    }
}

/// `GET /v1/workspaces/{key}/shells`.
public struct ShellList: Codable, Sendable, Equatable {
    public var items: [Shell]
    public init(items: [Shell]) { self.items = items }
}

/// The body of `POST .../shells/{id}/resize`, and of the WebSocket's `resize` text frame.
public struct ShellResize: Codable, Sendable, Equatable {
    public var cols: Int
    public var rows: Int
    public init(cols: Int, rows: Int) {
        self.cols = cols
        self.rows = rows
    }

    /// The largest accepted width or height.
    public static let maxDimension = 4096

    /// Why the size is not acceptable, or `nil`.
    public var validationProblem: String? {
        (1...Self.maxDimension).contains(cols) && (1...Self.maxDimension).contains(rows)
            ? nil : "cols and rows must be 1...\(Self.maxDimension), not \(cols) × \(rows)"
    }
}

/// A text frame of a shell's WebSocket: `{"type":"resize","cols":N,"rows":N}` from the client,
/// `{"type":"exit","exitCode":N}` from the server before it closes.
public struct ShellControlMessage: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case resize
        case exit
    }

    public var type: Kind
    public var cols: Int?
    public var rows: Int?
    public var exitCode: Int32?

    public init(type: Kind, cols: Int? = nil, rows: Int? = nil, exitCode: Int32? = nil) {
        self.type = type
        self.cols = cols
        self.rows = rows
        self.exitCode = exitCode
    }
}

/// `shellData`: bytes a shell wrote to its terminal.
public struct ShellDataEvent: Codable, Sendable, Equatable {
    public var shellId: String
    /// UTF-8 text, or base64 when `encoding` is `base64`.
    public var data: String
    public var encoding: OutputEncoding?

    public init(shellId: String, data: String, encoding: OutputEncoding? = nil) {
        self.shellId = shellId
        self.data = data
        self.encoding = encoding
    }

    public var bytes: [UInt8] { OutputText.bytes(data, encoding: encoding) }
}

/// `shellExit`: a shell's process ended.
public struct ShellExitEvent: Codable, Sendable, Equatable {
    public var shellId: String
    public var exitCode: Int32

    public init(shellId: String, exitCode: Int32) {
        self.shellId = shellId
        self.exitCode = exitCode
    }
}
