import Foundation

/// The body of `POST /v1/workspaces/{key}/exec`: a shell command line run by `/bin/sh -c`, to completion.
public struct ExecRequest: Codable, Sendable, Equatable {
    public var command: String
    /// In the workspace's view; relative paths resolve against /workspace. Default /workspace.
    public var cwd: String?
    public var env: [String: String]?
    /// Written to the command's stdin, then stdin is closed.
    public var stdin: String?
    /// How `stdin` is carried: as text (`utf8`, the default) or `base64` (any bytes).
    public var stdinEncoding: OutputEncoding?
    /// The command and everything it started are killed after this long.
    public var timeoutMs: Int?
    /// Output kept per stream; the rest is dropped and `truncated` set.
    public var maxOutputBytes: Int?
    /// The user the command runs as: `agent` (uid 1000, unprivileged) or `root` (the workspace's root, the default).
    public var user: String?

    public init(
        command: String, cwd: String? = nil, env: [String: String]? = nil, stdin: String? = nil, timeoutMs: Int? = nil, maxOutputBytes: Int? = nil,
        user: String? = nil, stdinEncoding: OutputEncoding? = nil
    ) {
        self.user = user
        self.stdinEncoding = stdinEncoding
        self.command = command
        self.cwd = cwd
        self.env = env
        self.stdin = stdin
        self.timeoutMs = timeoutMs
        self.maxOutputBytes = maxOutputBytes
    }
}

/// How text that may not be UTF-8 is carried: as is, or base64 when it is not valid UTF-8.
public enum OutputEncoding: String, Codable, Sendable {
    case utf8
    case base64
}

/// The answer of `exec`.
public struct ExecResult: Codable, Sendable, Equatable {
    public var exitCode: Int32
    /// The signal that ended the command, by name (`KILL`), if one did.
    public var signal: String?
    public var stdout: String
    public var stderr: String
    /// Present (`base64`) when the stream was not valid UTF-8.
    public var stdoutEncoding: OutputEncoding?
    public var stderrEncoding: OutputEncoding?
    public var timedOut: Bool
    public var truncated: Bool
    public var durationMs: Double
    /// The id the command had in the process list while it ran.
    public var processId: String

    public init(
        exitCode: Int32, signal: String? = nil, stdout: String, stderr: String, stdoutEncoding: OutputEncoding? = nil,
        stderrEncoding: OutputEncoding? = nil, timedOut: Bool, truncated: Bool, durationMs: Double, processId: String
    ) {
        self.exitCode = exitCode
        self.signal = signal
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutEncoding = stdoutEncoding
        self.stderrEncoding = stderrEncoding
        self.timedOut = timedOut
        self.truncated = truncated
        self.durationMs = durationMs
        self.processId = processId
    }

    /// Standard output as bytes (decoding base64 when needed).
    public var stdoutBytes: [UInt8] { OutputText.bytes(stdout, encoding: stdoutEncoding) }
    /// Standard error as bytes.
    public var stderrBytes: [UInt8] { OutputText.bytes(stderr, encoding: stderrEncoding) }
}

/// The body of `POST /v1/workspaces/{key}/processes`: a program started without a shell, left running.
public struct SpawnRequest: Codable, Sendable, Equatable {
    public var command: String
    public var args: [String]?
    public var cwd: String?
    public var env: [String: String]?
    /// The user the program runs as: `agent` (uid 1000, unprivileged) or `root` (the workspace's root, the default).
    public var user: String?

    public init(command: String, args: [String]? = nil, cwd: String? = nil, env: [String: String]? = nil, user: String? = nil) {
        self.command = command
        self.args = args
        self.cwd = cwd
        self.env = env
        self.user = user
    }
}

/// A process of a workspace, running or exited.
public struct WorkspaceProcess: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case running
        case exited
    }

    public var id: String
    /// The pid inside the workspace.
    public var pid: Int32
    public var command: String
    public var args: [String]
    public var cwd: String
    public var status: Status
    public var exitCode: Int32?
    /// The signal that ended it, by name (`KILL`, `TERM`).
    public var signal: String?
    public var startedAt: Date
    public var exitedAt: Date?

    public init(
        id: String, pid: Int32, command: String, args: [String], cwd: String, status: Status, exitCode: Int32? = nil,
        signal: String? = nil, startedAt: Date, exitedAt: Date? = nil
    ) {
        self.id = id
        self.pid = pid
        self.command = command
        self.args = args
        self.cwd = cwd
        self.status = status
        self.exitCode = exitCode
        self.signal = signal
        self.startedAt = startedAt
        self.exitedAt = exitedAt
    }
}

/// `GET /v1/workspaces/{key}/processes`.
public struct ProcessList: Codable, Sendable, Equatable {
    public var items: [WorkspaceProcess]
    public init(items: [WorkspaceProcess]) { self.items = items }
}

/// `GET .../processes/{id}/output`: what the process wrote (the most recent part, when it wrote more than is kept).
public struct ProcessOutput: Codable, Sendable, Equatable {
    public var stdout: String
    public var stderr: String
    public var stdoutEncoding: OutputEncoding?
    public var stderrEncoding: OutputEncoding?
    /// True when older output was dropped to keep within the buffer.
    public var truncated: Bool

    public init(stdout: String, stderr: String, stdoutEncoding: OutputEncoding? = nil, stderrEncoding: OutputEncoding? = nil, truncated: Bool) {
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutEncoding = stdoutEncoding
        self.stderrEncoding = stderrEncoding
        self.truncated = truncated
    }
}

/// The body of `POST .../processes/{id}/signal`.
public struct SignalRequest: Codable, Sendable, Equatable {
    public var signal: String
    public init(signal: String) { self.signal = signal }
}

/// The signals the API accepts, by name.
public enum ProcessSignal: String, CaseIterable, Sendable {
    case TERM, KILL, INT, HUP, QUIT, USR1, USR2, STOP, CONT, WINCH

    public var number: Int32 {
        switch self {
        case .HUP: 1
        case .INT: 2
        case .QUIT: 3
        case .KILL: 9
        case .USR1: 10
        case .USR2: 12
        case .TERM: 15
        case .CONT: 18
        case .STOP: 19
        case .WINCH: 28
        }
    }

    /// The name of signal `number`, or `SIG<number>` for one without a name here.
    public static func name(of number: Int32) -> String {
        allCases.first { $0.number == number }?.rawValue ?? "SIG\(number)"
    }
}

/// Which output stream.
public enum ProcessStream: String, Codable, Sendable {
    case stdout
    case stderr
}

/// `processOutput`: a chunk of a process's output.
public struct ProcessOutputEvent: Codable, Sendable, Equatable {
    public var processId: String
    public var stream: ProcessStream
    public var data: String
    /// `base64` when `data` is base64 because the bytes were not valid UTF-8.
    public var encoding: OutputEncoding?

    public init(processId: String, stream: ProcessStream, data: String, encoding: OutputEncoding? = nil) {
        self.processId = processId
        self.stream = stream
        self.data = data
        self.encoding = encoding
    }

    public var bytes: [UInt8] { OutputText.bytes(data, encoding: encoding) }
}

/// `processExit`: a process ended.
public struct ProcessExitEvent: Codable, Sendable, Equatable {
    public var processId: String
    public var exitCode: Int32
    public var signal: String?

    public init(processId: String, exitCode: Int32, signal: String? = nil) {
        self.processId = processId
        self.exitCode = exitCode
        self.signal = signal
    }
}

/// Turning output bytes into JSON strings and back: UTF-8 as is, anything else as base64, never mangled.
public enum OutputText {
    /// The text for `bytes` and its encoding (`nil` for plain UTF-8).
    public static func encode(_ bytes: some Collection<UInt8>) -> (text: String, encoding: OutputEncoding?) {
        if let text = String(validating: bytes, as: UTF8.self) { return (text, nil) }
        return (Data(bytes).base64EncodedString(), .base64)
    }

    /// `text` as bytes, or `nil` when `encoding` is `base64` and `text` is not base64.
    public static func decode(_ text: String, encoding: OutputEncoding?) -> [UInt8]? {
        guard encoding == .base64 else { return Array(text.utf8) }
        return Data(base64Encoded: text).map(Array.init)
    }

    public static func bytes(_ text: String, encoding: OutputEncoding?) -> [UInt8] {
        if encoding == .base64 { return Array(Data(base64Encoded: text) ?? Data()) }
        return Array(text.utf8)
    }
}
