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

/// The last bytes a desktop program wrote (to say why it failed), and whether it has ended.
final class DesktopProgramTail: Sendable {
    private let state = Mutex<(bytes: [UInt8], ended: Bool)>(([], false))
    static let capacity = 2048

    func append(_ chunk: some Collection<UInt8>) {
        state.withLock {
            $0.bytes += chunk
            if $0.bytes.count > Self.capacity { $0.bytes.removeFirst($0.bytes.count - Self.capacity) }
        }
    }

    func markEnded() { state.withLock { $0.ended = true } }

    var ended: Bool { state.withLock { $0.ended } }

    var text: String {
        String(decoding: state.withLock { $0.bytes }, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
