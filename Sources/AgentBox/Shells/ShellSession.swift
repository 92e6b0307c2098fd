import AgentBoxAPI
import AgentBoxSandbox
import Foundation
import NIOCore
import Synchronization

/// What an attached client of a shell receives: terminal bytes, then the exit.
public enum ShellOutput: Sendable, Equatable {
    case data(ByteBuffer)
    case exit(Int32)
}

/// One open shell: a process on a pseudo-terminal of the workspace, shared by every client attached to it.
///
/// Output is read once and fanned out: each attached client has a bounded queue and is cut off (its stream ends)
/// when it falls that far behind, rather than holding the terminal back or growing the server's memory. A client
/// that attaches late first gets the last ``scrollbackBytes`` of output, so it sees the current screen.
public final class ShellSession: Sendable {
    public let id: String
    let terminal: SandboxTerminal
    private let state: Mutex<State>
    /// Input for the terminal, in order; written by the pump, so writers never wait on the terminal.
    private let input: AsyncStream<ByteBuffer>.Continuation
    private let inputs: AsyncStream<ByteBuffer>

    /// How much recent output a late attacher gets first.
    public static let scrollbackBytes = 64 << 10
    /// Output chunks one attached client may have queued before it is cut off.
    public static let clientQueueCapacity = 1024
    /// Input chunks queued for the terminal before writers get `conflict`.
    public static let inputQueueCapacity = 1024

    private struct State {
        var info: Shell
        var clients: [UInt64: AsyncStream<ShellOutput>.Continuation] = [:]
        var nextClient: UInt64 = 0
        var scrollback: [UInt8] = []
    }

    init(info: Shell, terminal: SandboxTerminal) {
        self.id = info.id
        self.terminal = terminal
        self.state = Mutex(State(info: info))
        (inputs, input) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(Self.inputQueueCapacity))
    }

    /// The shell as the API shows it.
    public var info: Shell { state.withLock { $0.info } }

    /// Queues `bytes` for the terminal (keystrokes, pasted text, control characters).
    public func write(_ bytes: ByteBuffer) throws {
        guard info.status == .running else { throw AgentBoxError(.conflict, "shell \(id) has exited") }
        guard case .enqueued = input.yield(bytes) else {
            throw AgentBoxError(.conflict, "shell \(id) is not reading its input fast enough; try again")
        }
    }

    /// Sets the terminal's size; the shell's foreground job gets SIGWINCH.
    public func resize(_ size: ShellResize) async throws {
        if let problem = size.validationProblem { throw AgentBoxError(.invalidArgument, problem) }
        guard info.status == .running else { throw AgentBoxError(.conflict, "shell \(id) has exited") }
        do {
            // Recorded as it is set, so that two resizes at once leave the size shown the terminal's.
            try await terminal.resize(cols: size.cols, rows: size.rows) { [self] in
                state.withLock {
                    $0.info.cols = size.cols
                    $0.info.rows = size.rows
                }
            }
        } catch {
            throw AgentBoxError(.conflict, "shell \(id): \(error)")
        }
    }

    /// The output from now on, preceded by the recent scrollback; ends with `.exit` when the shell exits (at once
    /// when it already has), or without it when this client fell too far behind.
    public func attach() -> AsyncStream<ShellOutput> {
        let (stream, continuation) = AsyncStream<ShellOutput>.makeStream(bufferingPolicy: .bufferingOldest(Self.clientQueueCapacity))
        let client: UInt64? = state.withLock { state in
            if !state.scrollback.isEmpty { continuation.yield(.data(ByteBuffer(bytes: state.scrollback))) }
            if state.info.status == .exited {
                continuation.yield(.exit(state.info.exitCode ?? -1))
                continuation.finish()
                return nil
            }
            state.nextClient += 1
            state.clients[state.nextClient] = continuation
            return state.nextClient
        }
        if let client {
            continuation.onTermination = { [weak self] _ in
                _ = self?.state.withLock { $0.clients.removeValue(forKey: client) }
            }
        }
        return stream
    }

    /// How long output is still read after the shell's process exits, when something else (a background job) still
    /// holds the terminal open: what the shell wrote last is delivered, and the terminal then hangs up.
    static let drainAfterExit = Duration.milliseconds(250)

    /// Runs the terminal until the shell's process exits, as ssh and terminal emulators do (a background job that
    /// keeps the terminal open does not keep it, nor its clients, waiting; it runs on, writing to a hung-up terminal),
    /// or until the terminal hangs up (EIO once the last holder of its other side is gone): writes queued input, fans
    /// out output (calling `onOutput` with each chunk's complete UTF-8 sequences, a sequence cut at the chunk's end
    /// waiting for the next), then records the exit. Returns the exit code.
    func run(onOutput: @escaping @Sendable ([UInt8]) async -> Void) async -> Int32 {
        let inputs = inputs
        let terminal = terminal
        try? await terminal.channel.executeThenClose { inbound, _ in
            // Each task says whether its end ends the terminal: input's does not.
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    do { for await bytes in inputs { try await terminal.write(bytes) } } catch {}
                    return false
                }
                group.addTask {
                    _ = await terminal.exitStatus()
                    try? await Task.sleep(for: Self.drainAfterExit)
                    return true
                }
                group.addTask { [self] in
                    var carry: [UInt8] = []
                    do {
                        for try await chunk in inbound {
                            broadcast(chunk)
                            let (complete, rest) = splitAtUTF8Boundary(carry + chunk.readableBytesView)
                            carry = Array(rest)
                            if !complete.isEmpty { await onOutput(Array(complete)) }
                        }
                    } catch {}
                    if !carry.isEmpty { await onOutput(carry) }
                    return true
                }
                // The first to end of the reader (the terminal hung up) and the exit (the shell exited and its output
                // drained) ends them all.
                for await ends in group where ends {
                    group.cancelAll()
                    break
                }
            }
        }
        input.finish()
        let status = await terminal.exitStatus()
        let code = status.shellExitCode
        let clients = state.withLock { state in
            state.info.status = .exited
            state.info.exitCode = code
            defer { state.clients.removeAll() }
            return Array(state.clients.values)
        }
        for client in clients {
            client.yield(.exit(code))
            client.finish()
        }
        return code
    }

    private func broadcast(_ chunk: ByteBuffer) {
        let slow: [AsyncStream<ShellOutput>.Continuation] = state.withLock { state in
            state.scrollback.append(contentsOf: chunk.readableBytesView)
            if state.scrollback.count > Self.scrollbackBytes {
                state.scrollback.removeFirst(state.scrollback.count - Self.scrollbackBytes)
            }
            var slow: [AsyncStream<ShellOutput>.Continuation] = []
            for (client, continuation) in state.clients {
                if case .dropped = continuation.yield(.data(chunk)) {
                    slow.append(continuation)
                    state.clients[client] = nil
                }
            }
            return slow
        }
        slow.forEach { $0.finish() }
    }
}
