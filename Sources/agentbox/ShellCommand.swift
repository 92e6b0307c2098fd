import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation
import NIOCore
import Synchronization
import UnixSignals

/// `agentbox shell KEY [-- command...]`: an interactive terminal in a workspace, like `ssh`.
struct ShellCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shell", abstract: "Open an interactive shell in a workspace (boots it).",
        discussion: """
            The local terminal is put in raw mode and restored on exit; its size follows the window (SIGWINCH). \
            Exits with the shell's exit code. The shell is closed when this command ends unless --keep is given; \
            --attach ID joins a shell that is already open (several clients may share one).
            Examples:
              agentbox shell demo
              agentbox shell demo -- htop
              agentbox shell demo --attach SHELL_ID --keep
            """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The workspace key.") var key: String
    @Option(help: "Attach to this open shell instead of opening one.") var attach: String?
    @Flag(help: "Leave the shell running when this command ends.") var keep = false
    @Argument(parsing: .postTerminator, help: "The program to run instead of the login shell.") var command: [String] = []

    func run() async throws {
        try await runClientCall {
            let api = try client.makeClient()
            let terminal = LocalTerminal()
            let size = terminal.size ?? (cols: 80, rows: 24)
            let id: String
            if let attach {
                id = try await api.shell(key, attach).id
            } else {
                let request = ShellCreateRequest(
                    command: command.first, args: command.first == nil ? nil : Array(command.dropFirst()), cols: size.cols, rows: size.rows)
                id = try await api.openShell(key, request).id
            }
            let exitCode = ExitCodeBox()
            terminal.enterRawMode()
            defer { terminal.restore() }
            let input = LocalTerminal.standardInput()
            let resizes = await LocalTerminal.windowChanges()
            try await api.withShellConnection(key, id) { shell in
                if let attach = attach, let size = terminal.size, attach == id {
                    try await shell.resize(cols: size.cols, rows: size.rows)
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await message in shell.messages {
                            switch message {
                            case .terminal(let bytes): LocalTerminal.write(bytes)
                            case .control(let control):
                                if control.type == .exit { exitCode.value.store(control.exitCode ?? -1, ordering: .relaxed) }
                            }
                        }
                    }
                    group.addTask {
                        for await chunk in input { try await shell.write(chunk) }
                        // Standard input ended (a pipe, not a terminal): wait for the shell to finish.
                        try await Task.sleep(for: .seconds(86400 * 365))
                    }
                    group.addTask {
                        for await _ in resizes {
                            if let size = terminal.size { try await shell.resize(cols: size.cols, rows: size.rows) }
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
            terminal.restore()
            let code = exitCode.value.load(ordering: .relaxed)
            if code < 0, !keep { try? await api.closeShell(key, id) }
            if code != 0 { throw ExitCode(code < 0 ? 1 : code) }
        }
    }
}

/// The exit code a shell reported, -1 until it does.
final class ExitCodeBox: Sendable {
    let value = Atomic<Int32>(-1)
}

/// The local terminal of `agentbox shell`: raw mode, its size, keystrokes and window changes.
final class LocalTerminal: Sendable {
    private let saved = Mutex<termios?>(nil)

    /// The window's size, or `nil` when standard output is not a terminal.
    var size: (cols: Int, rows: Int)? {
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 else { return nil }
        return (Int(size.ws_col), Int(size.ws_row))
    }

    /// Keystrokes go to the remote shell as typed: no echo, no line editing, no signals from Ctrl-C here.
    func enterRawMode() {
        guard isatty(STDIN_FILENO) == 1 else { return }
        var original = termios()
        guard tcgetattr(STDIN_FILENO, &original) == 0 else { return }
        saved.withLock { $0 = original }
        var raw = original
        cfmakeraw(&raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &raw)
    }

    /// Puts the terminal back as it was (idempotent).
    func restore() {
        guard var original = saved.withLock({ state -> termios? in defer { state = nil }; return state }) else { return }
        tcsetattr(STDIN_FILENO, TCSANOW, &original)
    }

    static func write(_ bytes: ByteBuffer) {
        bytes.withUnsafeReadableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(STDOUT_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }

    /// Standard input in chunks as it arrives (read on a thread of its own), ending at end of file.
    static func standardInput() -> AsyncStream<ByteBuffer> {
        AsyncStream(bufferingPolicy: .bufferingOldest(256)) { continuation in
            Thread.detachNewThread {
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = read(STDIN_FILENO, &buffer, buffer.count)
                    if count < 0, errno == EINTR { continue }
                    if count <= 0 { break }
                    continuation.yield(ByteBuffer(bytes: buffer[..<count]))
                }
                continuation.finish()
            }
        }
    }

    /// One element per SIGWINCH.
    static func windowChanges() async -> UnixSignalsSequence {
        await UnixSignalsSequence(trapping: .sigwinch)
    }
}
