import AgentBoxSandbox
import Foundation
import Synchronization

/// The display of one workspace, as its runtime tracks it: the X server's size, the server's own X connection
/// (screenshots), the programs that make the desktop (Xvfb, the window manager, the VNC servers of the live view).
/// Confined to the workspace's actor.
///
/// The programs are not the workspace's processes (they are not listed, and they do not hold it awake): they die with
/// the sandbox when the workspace sleeps, and the next desktop request starts them again from the size kept in
/// the workspace's directory (``WorkspaceRuntime/desktopMarker``).
final class WorkspaceDesktop {
    /// A running display.
    struct Display {
        var width: Int
        var height: Int
        let connection: X11Connection
        /// Xvfb first, then the window manager.
        var processes: [SandboxProcess]
    }

    var display: Display?
    /// The start under way, which concurrent requests wait for instead of starting a second X server.
    var starting: Task<Display, any Error>?
    /// Programs of a display being ended (killed, not yet exited); a new display waits for them.
    var ending: [SandboxProcess] = []
    /// The VNC servers started (by port), each with its process.
    var vnc: [Int: SandboxProcess] = [:]
    /// The keycodes (free in the display's map when first needed) that typing binds characters outside the map to.
    var typingKeycodes: [Int] = []
    /// Input requests one at a time, in order: a keyboard request's keycodes must stay bound while it types, and two
    /// requests' keys or clicks must not interleave.
    let input = AsyncLimiter(limit: 1)

    init() {}

    /// Forgets the display (its programs have ended or are being killed) and closes the server's connection.
    func reset() -> [SandboxProcess] {
        let processes = (display?.processes ?? []) + Array(vnc.values)
        display?.connection.close()
        display = nil
        vnc.removeAll()
        typingKeycodes = []
        return processes
    }
}

/// The last bytes a desktop program wrote (to say why it failed), whether it has ended, and whether it has said it is
/// ready: a line on its standard output (Xvfb's `-displayfd 1` writes the display's number there once it accepts
/// clients), or, given `readyLine`, that very line (Openbox writes messages of its own to standard output first).
final class DesktopProgramTail: Sendable {
    private struct State {
        var bytes: [UInt8] = []
        /// The standard output's line so far (only while it could still be `readyLine`).
        var line: [UInt8] = []
        var lineTooLong = false
        var ended = false
        var ready = false
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
    }

    private let state = Mutex(State())
    private let readyLine: [UInt8]?
    static let capacity = 2048

    init(readyLine: String? = nil) {
        self.readyLine = readyLine.map { Array($0.utf8) }
    }

    /// Keeps the last bytes of the program's output; a line on its standard output (`readyLine`, when given) makes
    /// it ready.
    func append(_ chunk: some Collection<UInt8>, standardOutput: Bool = false) {
        let waiters = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.bytes += chunk
            if state.bytes.count > Self.capacity { state.bytes.removeFirst(state.bytes.count - Self.capacity) }
            guard standardOutput, !state.ready, saysReady(chunk, &state) else { return [] }
            state.ready = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Whether `chunk` ends a line that says the program is ready. Only a line as long as `readyLine` is kept.
    private func saysReady(_ chunk: some Collection<UInt8>, _ state: inout State) -> Bool {
        guard let readyLine else { return chunk.contains(10) }
        for byte in chunk {
            if byte == 10 {
                if !state.lineTooLong, state.line == readyLine { return true }
                state.line.removeAll(keepingCapacity: true)
                state.lineTooLong = false
            } else if !state.lineTooLong {
                if state.line.count < readyLine.count { state.line.append(byte) } else { state.lineTooLong = true }
            }
        }
        return false
    }

    func markEnded() {
        let (waiters, ready) = state.withLock { state in
            state.ended = true
            defer { state.waiters = [:] }
            return (Array(state.waiters.values), state.ready)
        }
        for waiter in waiters { waiter.resume(returning: ready) }
    }

    var ended: Bool { state.withLock { $0.ended } }

    var text: String {
        String(decoding: state.withLock { $0.bytes }, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Waits until the program says it is ready (`true`) or ends first, or the task is cancelled (`false`).
    func ready() async -> Bool {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now: Bool? = state.withLock { state in
                    if state.ready || state.ended || Task.isCancelled { return state.ready }
                    state.waiters[id] = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(returning: false)
        }
    }
}
