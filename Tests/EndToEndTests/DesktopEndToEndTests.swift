import AgentBoxAPI
import AgentBoxClient
import Foundation
import Testing

/// Whether Debian's desktop programs are installed (`scripts/setup-desktop.sh`).
let hasDesktopPrograms = ["/usr/bin/Xvfb", "/usr/bin/openbox", "/usr/bin/xdotool", "/usr/bin/wmctrl", "/usr/bin/xclip", "/usr/bin/x11vnc", "/usr/bin/xterm", "/usr/bin/xmessage"]
    .allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }

/// The desktop against the real server, in a real display: Xvfb, Openbox and the X tools in a workspace's sandbox.
@Suite(
    "Desktop end to end", .serialized, .enabled(if: canSandbox && hasDesktopPrograms, "needs bubblewrap, root and scripts/setup-desktop.sh"),
    .timeLimit(.minutes(4)))
struct DesktopEndToEndTests {
    /// `Tests/Support/desktop_probe.py`'s answer (PNG decoding and the WebSocket check, in Python's standard library).
    func probe(_ arguments: String...) async throws -> [String: JSONValue] {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Support/desktop_probe.py")
        let result = try await runProgram("/usr/bin/python3", [script.path] + arguments)
        #expect(result.status == 0, "desktop_probe.py \(arguments): \(result.stderr)")
        guard case .object(let object) = try JSONDecoder().decode(JSONValue.self, from: Data(result.stdout.utf8)) else { return [:] }
        return object
    }

    func save(_ png: Data, _ name: String, in directory: URL) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try png.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Waits until a window whose title contains `title` is listed; returns it. When the window does not come, the
    /// record says what became of `process` (the program that should have opened it): its state and its output.
    func window(_ client: AgentBoxClient, _ key: String, titled title: String, from process: WorkspaceProcess) async throws -> DesktopWindow? {
        let deadline = ContinuousClock.now + .seconds(45)
        while ContinuousClock.now < deadline {
            if let window = try await client.windows(key).items.first(where: { $0.title.contains(title) }) { return window }
            if try await client.process(key, process.id).status != .running { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let state = try await client.process(key, process.id)
        let output = try await client.output(key, process.id)
        Issue.record(
            "no window titled '\(title)' appeared: \(try await client.windows(key).items); \(process.command) is \(state.status) (exit \(String(describing: state.exitCode))), stdout \(output.stdout.debugDescription), stderr \(output.stderr.debugDescription)")
        return nil
    }

    func int(_ value: JSONValue?) -> Int {
        if case .number(let number) = value { return Int(number) }
        return -1
    }

    @Test func typeIntoXtermClickAButtonClipboardWindowsAndSleep() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let key = "desk"
            _ = try await client.putWorkspace(key)
            let shots = data.deletingLastPathComponent()

            // Start: 1280x800 by default; starting again at that size is the same display.
            let started = ContinuousClock.now
            let desktop = try await client.startDesktop(key)
            print("desktop start (boot included): \(ContinuousClock.now - started)")
            #expect(desktop == Desktop(display: ":0", width: 1280, height: 800))
            #expect(try await client.startDesktop(key) == desktop)
            #expect(try await client.exec(key, command: "echo $DISPLAY").stdout == ":0\n")

            // A screenshot of the empty desktop: a PNG of the display's size.
            let empty = try await client.screenshot(key)
            #expect(empty.starts(with: [0x89, 0x50, 0x4E, 0x47]))
            let emptyInfo = try await probe("info", try save(empty, "empty.png", in: shots))
            #expect(int(emptyInfo["width"]) == 1280 && int(emptyInfo["height"]) == 800)
            let half = try await client.screenshot(key, .init(x: 0, y: 0, width: 640, height: 400, scale: 0.5))
            let halfInfo = try await probe("info", try save(half, "half.png", in: shots))
            #expect(int(halfInfo["width"]) == 320 && int(halfInfo["height"]) == 200)

            // xterm: type into it, and the pixels change where the text went (inside its window, nowhere else).
            let xtermProcess = try await client.spawn(key, SpawnRequest(command: "xterm", args: ["-geometry", "80x24+40+40", "-T", "e2e-xterm"]))
            guard let xterm = try await window(client, key, titled: "e2e-xterm", from: xtermProcess) else { return }
            try await client.focusWindow(key, id: xterm.id)
            try await Task.sleep(for: .milliseconds(300))
            let before = try save(try await client.screenshot(key), "before.png", in: shots)
            try await client.type(key, text: "echo héllo-desktop")
            try await client.press(key, keys: "Return")
            try await Task.sleep(for: .milliseconds(500))
            let after = try save(try await client.screenshot(key), "after.png", in: shots)
            let diff = try await probe("diff", before, after)
            #expect(int(diff["changed"]) > 100, "typing changed pixels: \(diff)")
            if case .array(let box) = diff["bbox"] {
                let (x0, y0, x1, y1) = (int(box[0]), int(box[1]), int(box[2]), int(box[3]))
                #expect(
                    x0 >= xterm.x - 2 && y0 >= xterm.y - 30 && x1 <= xterm.x + xterm.width + 2 && y1 <= xterm.y + xterm.height + 2,
                    "the change \(box) lies within the xterm \(xterm)")
            } else {
                Issue.record("no change after typing: \(diff)")
            }
            // The typed command ran in the xterm's shell (Unicode included): it wrote to the terminal, so check the
            // keystrokes reached the shell by a file the next command writes.
            try await client.type(key, text: "echo ünïcode-ok > /tmp/typed\n")
            var typed = ""
            for _ in 0..<50 {
                typed = try await client.exec(key, command: "cat /tmp/typed 2>/dev/null").stdout
                if !typed.isEmpty { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(typed == "ünïcode-ok\n")

            // Windows: focus and close (xterm exits when asked to close).
            let windows = try await client.windows(key).items
            #expect(windows.contains { $0.id == xterm.id && $0.focused })

            // A button: xmessage prints and exits with the value of the button clicked. The button is made large, so
            // a click at the bottom middle of the window lands on it whatever the decorations.
            let message = try await client.spawn(
                key,
                SpawnRequest(
                    command: "xmessage",
                    args: ["-geometry", "+600+300", "-buttons", "Press me:7", "-xrm", "*Command.width: 300", "-xrm", "*Command.height: 160", "-title", "e2e-button", "Click"]))
            guard let box = try await window(client, key, titled: "e2e-button", from: message) else { return }
            try await client.mouse(key, .init(action: .click, x: box.x + box.width / 2, y: box.y + box.height - 60))
            let exited = try await client.wait(key, message.id, timeoutMs: 5000)
            #expect(exited.exitCode == 7, "the button's value: \(exited)")

            try await client.closeWindow(key, id: xterm.id)
            var gone = false
            for _ in 0..<50 where !gone {
                gone = try await !client.windows(key).items.contains { $0.id == xterm.id }
                if !gone { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(gone, "the xterm closed")

            // Clipboard round trip, Unicode included.
            try await client.setClipboard(key, text: "clip ✓ board\nline two")
            #expect(try await client.clipboard(key) == "clip ✓ board\nline two")
            #expect(try await client.exec(key, command: "xclip -selection clipboard -o").stdout == "clip ✓ board\nline two")

            // Mouse actions all run; scroll, down and up.
            for request in [
                DesktopMouseRequest(action: .move, x: 10, y: 10), .init(action: .doubleClick, x: 20, y: 20), .init(action: .down, x: 30, y: 30),
                .init(action: .up, x: 40, y: 40), .init(action: .scroll, x: 50, y: 50, amount: -3), .init(action: .click, x: 60, y: 60, button: .right),
            ] {
                try await client.mouse(key, request)
            }
            try await client.press(key, keys: "Escape")

            // The live view: the WebSocket relays the VNC server's greeting.
            let url = "ws://127.0.0.1:\(server.port)/v1/workspaces/\(key)/desktop/stream?access_token=\(server.token!)"
            let rfb = try await probe("rfb", url)
            #expect(int(rfb["status"]) == 101)
            #expect(rfb["first"] == .string("RFB 003.008\n"), "the VNC greeting: \(rfb)")

            // Sleep kills the display; the next request brings it back at its size, and DISPLAY with it.
            _ = try await client.sleepWorkspace(key)
            #expect(try await client.desktop(key) == desktop)
            let again = try await client.screenshot(key)
            #expect(again.starts(with: [0x89, 0x50, 0x4E, 0x47]))
            #expect(try await client.exec(key, command: "echo $DISPLAY").stdout == ":0\n")

            // Stopped: it is gone, and input is refused (409) until it is started again.
            try await client.stopDesktop(key)
            await #expect { try await client.desktop(key) } throws: { ($0 as? AgentBoxClientError)?.status == 404 }
            await #expect { try await client.screenshot(key) } throws: { ($0 as? AgentBoxClientError)?.status == 409 }
            #expect(try await client.exec(key, command: "echo ${DISPLAY:-none}").stdout == "none\n")
        }
    }

    @Test func badInputAndAccess() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let admin = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            let key = "desk-rules"
            _ = try await admin.putWorkspace(key)
            func status(_ body: () async throws -> Void) async -> Int {
                do {
                    try await body()
                    return 200
                } catch let error as AgentBoxClientError {
                    return error.status
                } catch {
                    return -1
                }
            }
            #expect(await status { _ = try await admin.screenshot(key) } == 409)
            #expect(await status { try await admin.startDesktop(key, width: 10) } == 400)
            #expect(await status { try await admin.startDesktop(key, width: 100_000, height: 800) } == 400)
            try await admin.startDesktop(key, width: 800, height: 600)
            #expect(await status { try await admin.mouse(key, .init(action: .click, x: 800, y: 0)) } == 400)
            #expect(await status { try await admin.mouse(key, .init(action: .scroll, x: 1, y: 1, amount: 0)) } == 400)
            #expect(await status { try await admin.mouse(key, .init(action: .click, x: 1, y: 1, amount: 2)) } == 400)
            #expect(await status { try await admin.press(key, keys: "ctrl+;rm -rf") } == 400)
            #expect(await status { try await admin.press(key, keys: "   ") } == 400)
            #expect(await status { try await admin.type(key, text: "") } == 400)
            #expect(await status { try await admin.type(key, text: String(repeating: "a", count: 5_000)) } == 413)
            #expect(await status { _ = try await admin.screenshot(key, .init(x: 0, y: 0, width: 900, height: 10)) } == 400)
            #expect(await status { _ = try await admin.screenshot(key, .init(x: 0, y: 0)) } == 400)
            #expect(await status { _ = try await admin.screenshot(key, .init(scale: 2)) } == 400)
            #expect(await status { try await admin.focusWindow(key, id: "zzz") } == 400)
            #expect(await status { try await admin.closeWindow(key, id: "0x00000001") } == 404)
            #expect(await status { try await admin.setClipboard(key, text: String(repeating: "x", count: (1 << 20) + 1)) } == 413)
            #expect(await status { _ = try await admin.screenshot("no-such-workspace") } == 404)

            // A reader may look (screenshot, windows, clipboard, the live view: view-only), never act.
            let reader = AgentBoxClient(
                endpoint: server.endpoint, token: try await admin.createToken(TokenCreateRequest(workspaces: [key], role: .reader)).token!)
            #expect(await status { _ = try await reader.screenshot(key) } == 200)
            #expect(await status { _ = try await reader.windows(key) } == 200)
            #expect(await status { _ = try await reader.clipboard(key) } == 200)
            #expect(await status { try await reader.mouse(key, .init(action: .click, x: 1, y: 1)) } == 403)
            #expect(await status { try await reader.type(key, text: "x") } == 403)
            #expect(await status { try await reader.setClipboard(key, text: "x") } == 403)
            #expect(await status { try await reader.startDesktop(key) } == 403)
            #expect(await status { try await reader.stopDesktop(key) } == 403)
            let other = AgentBoxClient(
                endpoint: server.endpoint, token: try await admin.createToken(TokenCreateRequest(workspaces: ["elsewhere-*"], role: .user)).token!)
            #expect(await status { _ = try await other.screenshot(key) } == 403)
            let anonymous = AgentBoxClient(endpoint: server.endpoint, token: "wrong")
            #expect(await status { _ = try await anonymous.screenshot(key) } == 401)
            // The stream refuses a missing token before any upgrade (as the shells' WebSocket does: Hummingbird answers
            // a refused upgrade with 400), and upgrades with one.
            let refused = try await probe("rfb", "ws://127.0.0.1:\(server.port)/v1/workspaces/\(key)/desktop/stream")
            #expect(int(refused["status"]) == 400)
            let readerToken = try await admin.createToken(TokenCreateRequest(workspaces: [key], role: .reader)).token!
            let view = try await probe("rfb", "ws://127.0.0.1:\(server.port)/v1/workspaces/\(key)/desktop/stream?access_token=\(readerToken)")
            #expect(view["first"] == .string("RFB 003.008\n"), "a reader's view-only stream: \(view)")

            // The CLI: help with an example, and a screenshot to a file.
            let help = try await AgentBoxBinary.run(["desktop", "click", "--help"])
            #expect(help.stdout.contains("agentbox desktop click demo 100 200"))
            let file = data.deletingLastPathComponent().appendingPathComponent("cli.png").path
            let cli = try await AgentBoxBinary.run(
                ["desktop", "screenshot", key, "-o", file, "--scale", "0.5"],
                environment: ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!])
            #expect(cli.status == 0, "\(cli.stderr)")
            let info = try await probe("info", file)
            #expect(int(info["width"]) == 400 && int(info["height"]) == 300)
            let windows = try await AgentBoxBinary.run(
                ["desktop", "windows", key, "--json"], environment: ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!])
            #expect(windows.status == 0 && windows.stdout.contains("items"))
        }
    }
}
