import AgentBoxAPI
import AgentBoxSandbox
import CAgentBoxDesktop
import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
import Synchronization

extension WorkspaceRuntime {
    // MARK: The display

    /// Where the display's size is kept while the desktop is on (removed by ``stopDesktop()``): the display dies with
    /// the workspace's sleep and the next desktop request starts it again with this size, even after a restart.
    nonisolated var desktopMarker: URL { directory.appendingPathComponent("desktop.json") }

    /// Starts the workspace's X display (Xvfb and a window manager, inside its sandbox) at `request`'s size, or
    /// returns the one that runs at that size (a different size restarts it). Boots the workspace. Programs started
    /// from now on get `DISPLAY`.
    public func startDesktop(_ request: DesktopStartRequest) async throws -> Desktop {
        let size = try DesktopCommands.size(request)
        let activity = try await beginActivity()
        defer { endActivity(activity) }
        let display = try await ensureDisplay(size: size)
        return Desktop(display: DesktopCommands.display, width: display.width, height: display.height)
    }

    /// The desktop, when it is on (running, or to be started again on the next request). Never boots.
    public func desktopInfo() throws -> Desktop {
        if let display = desktop.display {
            return Desktop(display: DesktopCommands.display, width: display.width, height: display.height)
        }
        guard let size = readDesktopMarker() else { throw AgentBoxError(.notFound, "workspace '\(key)' has no desktop") }
        return Desktop(display: DesktopCommands.display, width: size.width, height: size.height)
    }

    /// Stops the display and its programs and forgets it (it no longer comes back). Never boots.
    public func stopDesktop() async throws {
        try? FileManager.default.removeItem(at: desktopMarker)
        setStopHook("desktop", nil)
        if let task = desktop.starting { _ = try? await task.value }
        await end(desktop.reset())
    }

    /// Kills the desktop's programs and waits (at most 2 s) until they have exited. Until they have, they are in
    /// ``WorkspaceDesktop/ending``: a display started meanwhile (by another request) waits for them, or it would find
    /// the last one's socket still taken.
    private func end(_ processes: [SandboxProcess]) async {
        guard !processes.isEmpty else { return }
        desktop.ending.append(contentsOf: processes)
        for process in processes { process.killTree() }
        await Self.waitForExit(processes, atMost: .seconds(2))
        desktop.ending.removeAll { ending in processes.contains { $0 === ending } }
    }

    private static func waitForExit(_ processes: [SandboxProcess], atMost limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for process in processes { _ = await process.exitStatus() }
            }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }

    /// The display, started if the desktop is on but its display is not running (the workspace slept, or the X
    /// server died). Call inside an activity.
    func ensureDisplay(size wanted: (width: Int, height: Int)? = nil) async throws -> WorkspaceDesktop.Display {
        while true {
            if let task = desktop.starting {
                _ = try? await task.value
                continue
            }
            if let display = desktop.display, display.connection.isOpen,
                wanted == nil || (wanted?.width == display.width && wanted?.height == display.height)
            {
                return display
            }
            guard let size = wanted ?? readDesktopMarker() else {
                throw AgentBoxError(.conflict, "workspace '\(key)' has no desktop: start one first (POST /v1/workspaces/\(key)/desktop)")
            }
            await end(desktop.reset())
            // Programs of the last display that another request is ending still hold its socket.
            if !desktop.ending.isEmpty { await Self.waitForExit(desktop.ending, atMost: .seconds(10)) }
            // Another request may have started a display while this one waited for the last to end.
            if desktop.starting != nil || desktop.display != nil { continue }
            // The task itself records its outcome before it completes: a waiter that finds it completed must find
            // the display set and the start over, or it would loop on the actor without ever letting the owner resume.
            let task = Task { () throws -> WorkspaceDesktop.Display in
                defer { self.desktop.starting = nil }
                let display = try await self.launchDisplay(width: size.width, height: size.height)
                self.desktop.display = display
                return display
            }
            desktop.starting = task
            return try await task.value
        }
    }

    /// Starts the display again when the desktop is on but its display is not running (the workspace slept). A
    /// failure is logged, not thrown: the process that asked starts anyway, without a display.
    func restoreDesktopIfOn() async {
        guard desktop.display == nil, desktop.starting == nil, FileManager.default.fileExists(atPath: desktopMarker.path) else { return }
        do {
            _ = try await ensureDisplay()
        } catch {
            logger.warning("the desktop did not come back", metadata: ["error": "\(error)"])
        }
    }

    private func launchDisplay(width: Int, height: Int) async throws -> WorkspaceDesktop.Display {
        let started = ContinuousClock.now
        let sandbox = try runningSandbox()
        // The display lives in the sandbox's network namespace; the unsandboxed backend has none of its own.
        guard let namespace = try sandbox.openNetworkNamespace() else {
            throw AgentBoxError(.unsupported, "the desktop needs the Linux sandbox (serve --sandbox linux)")
        }
        close(namespace)
        let network = try await network()
        let (xvfb, xvfbTail) = try await startDesktopProgram(DesktopCommands.xvfb(width: width, height: height))
        let connection: X11Connection
        do {
            connection = try await connectDisplay(network: network, server: xvfbTail)
        } catch {
            xvfb.killTree()
            throw error
        }
        guard connection.width == width, connection.height == height else {
            connection.close()
            xvfb.killTree()
            throw AgentBoxError(.badGateway, "the display came up at \(connection.width)x\(connection.height), not \(width)x\(height)")
        }
        let windowManager: SandboxProcess
        do {
            let (process, tail) = try await startDesktopProgram(DesktopCommands.windowManager, readyLine: DesktopCommands.windowManagerReady)
            windowManager = process
            // Until the window manager manages the screen, wmctrl lists nothing and cannot focus or close: the
            // desktop is not started until it says so (its `--startup` command prints a line).
            guard await Self.ready(tail, within: Self.displayStartLimit) else {
                process.killTree()
                let said = tail.text
                let why = tail.ended ? "the window manager ended" : "the window manager did not start within \(Self.displayStartLimit)"
                throw AgentBoxError(.badGateway, why + (said.isEmpty ? "" : ": \(said.suffix(400))"))
            }
        } catch {
            connection.close()
            xvfb.killTree()
            throw error
        }
        try? JSONEncoder().encode(DesktopStartRequest(width: width, height: height)).write(to: desktopMarker, options: .atomic)
        // The display dies with the sandbox: the server's connection is closed before the sandbox stops.
        setStopHook("desktop") { [weak self] in await self?.desktopStopping() }
        logger.debug("desktop started", metadata: ["desktop.ms": "\((ContinuousClock.now - started).milliseconds)", "desktop.size": "\(width)x\(height)"])
        return WorkspaceDesktop.Display(width: width, height: height, connection: connection, processes: [xvfb, windowManager])
    }

    /// How long the X server may take to start (it compiles its keymap first; a loaded machine makes that slow).
    static let displayStartLimit: Duration = .seconds(60)

    /// Whether the program said it is ready (a line on its standard output) within `limit`; false when it ended first.
    private static func ready(_ tail: DesktopProgramTail, within limit: Duration) async -> Bool {
        await outcome(of: { await tail.ready() }, within: limit, otherwise: false)
    }

    /// Waits until the X server says it accepts clients (`-displayfd 1`: a line on its standard output), then
    /// connects the server's X client to the display's abstract socket (`@/tmp/.X11-unix/X0`) inside the workspace's
    /// network namespace.
    private nonisolated func connectDisplay(network: WorkspaceNetwork, server: DesktopProgramTail) async throws -> X11Connection {
        guard await Self.ready(server, within: Self.displayStartLimit) else {
            let said = server.text
            if said.contains("server already running") {
                // Something in the workspace runs an X server of its own on the display's socket.
                throw AgentBoxError(.conflict, "the display :0 is taken in the workspace (another X server runs there)")
            }
            let why = server.ended ? "the X server ended" : "the X server did not start within \(Self.displayStartLimit)"
            throw AgentBoxError(.badGateway, why + (said.isEmpty ? "" : ": \(said.suffix(400))"))
        }
        let result = try await network.group.next().submit { () -> (fd: CInt, error: CInt) in
            let fd = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return (-1, errno) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let name = Array("/tmp/.X11-unix/X0".utf8)
            withUnsafeMutableBytes(of: &address.sun_path) { path in
                path[0] = 0  // abstract
                for (index, byte) in name.enumerated() { path[index + 1] = byte }
            }
            let length = socklen_t(MemoryLayout<sa_family_t>.size + 1 + name.count)
            let status = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
            }
            if status == 0 { return (fd, 0) }
            let error = errno
            close(fd)
            return (-1, error)
        }.get()
        guard result.fd >= 0 else {
            throw AgentBoxError(.badGateway, "cannot connect to the workspace's display: \(String(cString: strerror(result.error)))")
        }
        let fd = result.fd
        do {
            return try await NIOThreadPool.singleton.runIfActive { try X11Connection.open(fd: fd, timeout: .seconds(30)) }
        } catch {
            throw AgentBoxError(.badGateway, "cannot use the workspace's display: \(error)", underlyingError: error)
        }
    }

    /// Starts one of the desktop's programs in the sandbox with `DISPLAY` set, outside the process table. Its output
    /// is read (the last bytes kept, to say why it failed) until it ends; the task that reads it is the sandbox's.
    private func startDesktopProgram(_ arguments: [String], readyLine: String? = nil) async throws -> (process: SandboxProcess, tail: DesktopProgramTail) {
        let sandbox = try runningSandbox()
        let process: SandboxProcess
        do {
            process = try await sandbox.spawn(desktopToolSpec(arguments, sandbox: sandbox))
        } catch let error as SandboxError {
            throw mapDesktopStartError(error, program: arguments[0])
        }
        let tail = DesktopProgramTail(readyLine: readyLine)
        sandboxTasks.start { [weak self] task in
            await withTaskGroup(of: Void.self) { group in
                for (channel, standardOutput) in [(process.stdout, true), (process.stderr, false)] {
                    group.addTask {
                        try? await channel.executeThenClose { inbound, _ in
                            for try await chunk in inbound { tail.append(chunk.readableBytesView, standardOutput: standardOutput) }
                        }
                    }
                }
            }
            _ = await process.exitStatus()
            tail.markEnded()
            await self?.desktopProgramEnded(process, task: task)
        }
        return (process, tail)
    }

    private func desktopToolSpec(_ arguments: [String], sandbox: any Sandbox, stdin: [UInt8]? = nil) -> SandboxProcessSpec {
        var environment = sandbox.baseEnvironment
        environment["DISPLAY"] = DesktopCommands.display
        return SandboxProcessSpec(
            arguments: arguments, environment: environment, workingDirectory: sandbox.defaultWorkingDirectory,
            stdin: stdin.map { .data($0) } ?? .empty)
    }

    private func mapDesktopStartError(_ error: SandboxError, program: String) -> AgentBoxError {
        if error.code == .executableNotFound {
            return AgentBoxError(
                .unsupported, "\(program) is not installed on this host (bash scripts/setup-desktop.sh installs the desktop's programs)")
        }
        return mapStartError(error, command: program, cwd: "/")
    }

    /// A desktop program has ended: when it was the X server, the display is gone (the next request starts it again).
    private func desktopProgramEnded(_ process: SandboxProcess, task: UInt64) {
        sandboxTasks.finished(task)
        if let display = desktop.display, display.processes.first === process {
            logger.info("the desktop's X server ended")
            for other in desktop.reset() where other !== process { other.killTree() }
        }
        for (port, vnc) in desktop.vnc where vnc === process { desktop.vnc[port] = nil }
    }

    /// The workspace is stopping: its sandbox takes the display's programs with it.
    private func desktopStopping() {
        _ = desktop.reset()
    }

    private nonisolated func readDesktopMarker() -> (width: Int, height: Int)? {
        guard let data = try? Data(contentsOf: desktopMarker),
            let request = try? JSONDecoder().decode(DesktopStartRequest.self, from: data),
            let size = try? DesktopCommands.size(request)
        else { return nil }
        return size
    }

    // MARK: Tools

    /// Runs one of Debian's X tools in the sandbox against the display, to its end (at most `timeout`), outside the
    /// process table. Returns its exit code and output (stdout bounded by the clipboard's limit).
    func runDesktopTool(_ arguments: [String], stdin: [UInt8]? = nil, timeout: Duration = .seconds(15)) async throws -> (
        exitCode: Int32?, stdout: [UInt8], stderr: String
    ) {
        let sandbox = try runningSandbox()
        let process: SandboxProcess
        do {
            process = try await sandbox.spawn(desktopToolSpec(arguments, sandbox: sandbox, stdin: stdin))
        } catch let error as SandboxError {
            throw mapDesktopStartError(error, program: arguments[0])
        }
        let stdoutTail = BoundedBytes(limit: DesktopCommands.maxClipboardBytes + 1)
        let stderrTail = DesktopProgramTail()
        let finished: Bool = await withTaskGroup(of: Bool?.self) { group in
            group.addTask {
                try? await process.stdout.executeThenClose { inbound, _ in
                    for try await chunk in inbound { stdoutTail.append(chunk.readableBytesView) }
                }
                return nil
            }
            group.addTask {
                try? await process.stderr.executeThenClose { inbound, _ in
                    for try await chunk in inbound { stderrTail.append(chunk.readableBytesView) }
                }
                return nil
            }
            group.addTask {
                _ = await process.exitStatus()
                return true
            }
            group.addTask {
                do { try await Task.sleep(for: timeout) } catch { return nil }
                process.killTree()
                return false
            }
            var outcome: Bool?
            var drained = 0
            while let next = await group.next() {
                if let next, outcome == nil {
                    outcome = next
                    if !next { break }
                } else if next == nil {
                    drained += 1
                }
                if outcome == true, drained >= 2 { break }
            }
            group.cancelAll()
            return outcome ?? false
        }
        guard finished else { throw AgentBoxError(.timeout, "\(arguments[0]) did not finish within \(timeout)") }
        let status = await process.exitStatus()
        return (status.exitCode, stdoutTail.bytes, stderrTail.text)
    }

    /// Runs a tool that must succeed; a failure is `badGateway` with what it said.
    private func runDesktopToolChecked(_ arguments: [String], stdin: [UInt8]? = nil, timeout: Duration = .seconds(15)) async throws -> [UInt8] {
        let display = desktop.display?.connection
        let result = try await runDesktopTool(arguments, stdin: stdin, timeout: timeout)
        guard result.exitCode == 0 else {
            // The display went away under the tool: stopped by another request (or its X server ended). That is the
            // desktop's state, not a fault of the display: the next request starts it again.
            let lost = result.stderr.contains("Can't open display") || result.stderr.contains("X connection to")
            if lost || display == nil || desktop.display?.connection !== display {
                throw AgentBoxError(.conflict, "the desktop stopped while \(arguments[0]) ran: start it again (POST /v1/workspaces/\(key)/desktop)")
            }
            throw AgentBoxError(
                .badGateway, "\(arguments[0]) failed (exit \(result.exitCode.map(String.init) ?? "by a signal"))\(result.stderr.isEmpty ? "" : ": \(result.stderr.suffix(300))")")
        }
        return result.stdout
    }

    // MARK: Screen, input, windows, clipboard

    /// A PNG of the display (or of a region, scaled). Starts the display again if the workspace slept.
    public func screenshot(_ request: DesktopScreenshotRequest = DesktopScreenshotRequest()) async throws -> Data {
        let activity = try await beginActivity()
        defer { endActivity(activity) }
        let display = try await ensureDisplay()
        let geometry = try DesktopCommands.screenshotGeometry(request, width: display.width, height: display.height)
        let connection = display.connection
        do {
            let png = try await NIOThreadPool.singleton.runIfActive {
                let pixels = try connection.image(x: geometry.x, y: geometry.y, width: geometry.width, height: geometry.height)
                return try Self.encodePNG(pixels, width: geometry.width, height: geometry.height, outWidth: geometry.outWidth, outHeight: geometry.outHeight)
            }
            return png
        } catch let error as X11Error {
            throw AgentBoxError(.badGateway, "the screenshot failed: \(error)", underlyingError: error)
        }
    }

    /// Encodes B G R X pixels as a PNG (C, zlib).
    nonisolated static func encodePNG(_ pixels: [UInt8], width: Int, height: Int, outWidth: Int, outHeight: Int) throws -> Data {
        var png: UnsafeMutablePointer<UInt8>?
        var length = 0
        let status = pixels.withUnsafeBufferPointer {
            ab_png_encode_bgrx($0.baseAddress, CInt(width), CInt(height), width * 4, CInt(outWidth), CInt(outHeight), &png, &length)
        }
        guard status == 0, let png else { throw AgentBoxError(.internalError, "cannot encode the screenshot as PNG") }
        return Data(bytesNoCopy: png, count: length, deallocator: .free)
    }

    /// Moves, clicks, presses, releases or scrolls the mouse.
    public func desktopMouse(_ request: DesktopMouseRequest) async throws {
        let activity = try await beginActivity()
        defer { endActivity(activity) }
        let display = try await ensureDisplay()
        let arguments = try DesktopCommands.mouse(request, width: display.width, height: display.height)
        await desktop.input.acquire()
        defer { desktop.input.release() }
        _ = try await runDesktopToolChecked(arguments)
    }

    /// Types text or presses key chords, into the window that has the focus.
    public func desktopKeyboard(_ request: DesktopKeyboardRequest) async throws {
        let arguments = try DesktopCommands.keyboard(request)
        let activity = try await beginActivity()
        defer { endActivity(activity) }
        _ = try await ensureDisplay()
        await desktop.input.acquire()
        defer { desktop.input.release() }
        guard let text = request.text, text.unicodeScalars.contains(where: { !$0.isASCII }) else {
            _ = try await runDesktopToolChecked(arguments, timeout: .seconds(30))
            return
        }
        // Characters outside the keyboard map are bound to keycodes of the desktop's own before they are typed.
        if desktop.typingKeycodes.isEmpty {
            let map = try await runDesktopToolChecked(["xmodmap", "-pke"])
            desktop.typingKeycodes = DesktopCommands.freeKeycodes(String(decoding: map, as: UTF8.self))
            guard !desktop.typingKeycodes.isEmpty else { throw AgentBoxError(.badGateway, "the display's keyboard map has no free keycode to type with") }
        }
        for piece in DesktopCommands.typingPieces(text, slots: desktop.typingKeycodes.count) {
            if !piece.unmapped.isEmpty {
                _ = try await runDesktopToolChecked(DesktopCommands.keymap(piece.unmapped, keycodes: desktop.typingKeycodes))
            }
            _ = try await runDesktopToolChecked(DesktopCommands.type(piece.text), timeout: .seconds(30))
        }
    }

    /// The top-level windows that the window manager manages.
    public func desktopWindows() async throws -> DesktopWindowList {
        let activity = try await beginActivity()
        defer { endActivity(activity) }
        _ = try await ensureDisplay()
        let output = try await runDesktopToolChecked(DesktopCommands.windowList)
        return DesktopWindowList(items: DesktopCommands.parseWindows(String(decoding: output, as: UTF8.self)))
    }

    /// Gives `id` the focus and raises it.
    public func focusDesktopWindow(_ id: String) async throws {
        try await actOnWindow(id, DesktopCommands.focus)
    }

    /// Asks the window `id` to close (as its title bar's close button does; the program may ask first).
    public func closeDesktopWindow(_ id: String) async throws {
        try await actOnWindow(id, DesktopCommands.close)
    }

    private func actOnWindow(_ id: String, _ command: (UInt32) -> [String]) async throws {
        let window = try DesktopCommands.windowID(id)
        let activity = try await beginActivity()
        defer { endActivity(activity) }
        _ = try await ensureDisplay()
        let list = DesktopCommands.parseWindows(String(decoding: try await runDesktopToolChecked(DesktopCommands.windowList), as: UTF8.self))
        guard list.contains(where: { $0.id == DesktopCommands.format(windowID: window) }) else {
            throw AgentBoxError(.notFound, "no window \(DesktopCommands.format(windowID: window)) on the desktop of workspace '\(key)'")
        }
        _ = try await runDesktopToolChecked(command(window))
    }

    /// The clipboard's text ("" when it holds none).
    public func desktopClipboard() async throws -> DesktopClipboard {
        let activity = try await beginActivity()
        defer { endActivity(activity) }
        _ = try await ensureDisplay()
        let result = try await runDesktopTool(DesktopCommands.clipboardGet)
        // xclip fails when no program owns the clipboard, or it holds no text: that is an empty clipboard.
        guard result.exitCode == 0 else { return DesktopClipboard(text: "") }
        guard result.stdout.count <= DesktopCommands.maxClipboardBytes else {
            throw AgentBoxError(.tooLarge, "the clipboard holds more than \(DesktopCommands.maxClipboardBytes) bytes")
        }
        return DesktopClipboard(text: String(decoding: result.stdout, as: UTF8.self))
    }

    /// Puts `text` on the clipboard (xclip serves it to programs that paste, until something else takes it).
    public func setDesktopClipboard(_ clipboard: DesktopClipboard) async throws {
        guard clipboard.text.utf8.count <= DesktopCommands.maxClipboardBytes else {
            throw AgentBoxError(.tooLarge, "the clipboard takes at most \(DesktopCommands.maxClipboardBytes) bytes, not \(clipboard.text.utf8.count)")
        }
        let activity = try await beginActivity()
        defer { endActivity(activity) }
        _ = try await ensureDisplay()
        _ = try await runDesktopToolChecked(DesktopCommands.clipboardSet, stdin: Array(clipboard.text.utf8))
    }

    // MARK: Live view

    /// Runs `body` with a connection to the display's VNC server (x11vnc in the sandbox, started on first use; a
    /// view-only one for `viewOnly`), holding the workspace awake meanwhile. The bytes are RFB, to be relayed as they
    /// are (the Inspector's viewer speaks VNC over WebSocket).
    public func withDesktopStream<T: Sendable>(
        viewOnly: Bool, _ body: @Sendable (NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws -> T
    ) async throws -> T {
        let activity = try await beginActivity()
        defer { endActivity(activity) }
        _ = try await ensureDisplay()
        let port = DesktopCommands.vncPort(viewOnly: viewOnly)
        if desktop.vnc[port] == nil {
            desktop.vnc[port] = try await startDesktopProgram(DesktopCommands.vnc(port: port, viewOnly: viewOnly)).process
        }
        let network = try await network()
        let socket = try await connectedSocket(port: port)
        let fd = socket.take()
        let door = socket.door
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: network.group).withConnectedSocket(fd) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TrafficCountingHandler(door: door))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        } catch {
            close(fd)
            throw AgentBoxError(.badGateway, "cannot reach the display's VNC server", underlyingError: error)
        }
        return try await body(channel)
    }
}

/// The first `limit` bytes of a stream (the rest is read and dropped).
final class BoundedBytes: Sendable {
    private let state: Mutex<[UInt8]>
    let limit: Int

    init(limit: Int) {
        self.limit = limit
        self.state = Mutex([])
    }

    func append(_ chunk: some Collection<UInt8>) {
        state.withLock { bytes in
            let room = limit - bytes.count
            if room > 0 { bytes += chunk.prefix(room) }
        }
    }

    var bytes: [UInt8] { state.withLock { $0 } }
}
