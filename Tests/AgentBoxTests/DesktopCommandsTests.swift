import Foundation
import Testing

import AgentBoxAPI
@testable import AgentBox

/// The desktop's rules without a display: the tools' command lines, the checks before them, the parsing after.
struct DesktopCommandsTests {
    @Test(arguments: [
        (DesktopMouseRequest(action: .move, x: 1, y: 2), ["xdotool", "mousemove", "1", "2"]),
        (DesktopMouseRequest(action: .click, x: 1, y: 2, button: .right), ["xdotool", "mousemove", "1", "2", "click", "3"]),
        (DesktopMouseRequest(action: .doubleClick, x: 0, y: 0), ["xdotool", "mousemove", "0", "0", "click", "--repeat", "2", "--delay", "60", "1"]),
        (DesktopMouseRequest(action: .down, x: 5, y: 5, button: .middle), ["xdotool", "mousemove", "5", "5", "mousedown", "2"]),
        (DesktopMouseRequest(action: .up, x: 5, y: 5), ["xdotool", "mousemove", "5", "5", "mouseup", "1"]),
        (DesktopMouseRequest(action: .scroll, x: 5, y: 5, amount: -3), ["xdotool", "mousemove", "5", "5", "click", "--repeat", "3", "--delay", "10", "4"]),
        (DesktopMouseRequest(action: .scroll, x: 5, y: 5), ["xdotool", "mousemove", "5", "5", "click", "--repeat", "1", "--delay", "10", "5"]),
    ])
    func mouse(_ request: DesktopMouseRequest, _ expected: [String]) throws {
        #expect(try DesktopCommands.mouse(request, width: 100, height: 100) == expected)
    }

    @Test(arguments: [
        DesktopMouseRequest(action: .click, x: 100, y: 0), .init(action: .click, x: -1, y: 0), .init(action: .move, x: 0, y: 100),
        .init(action: .scroll, x: 1, y: 1, amount: 0), .init(action: .scroll, x: 1, y: 1, amount: 101), .init(action: .click, x: 1, y: 1, amount: 1),
        .init(action: .scroll, x: 1, y: 1, button: .left, amount: 1),
    ])
    func badMouse(_ request: DesktopMouseRequest) {
        #expect(throws: AgentBoxError.self) { try DesktopCommands.mouse(request, width: 100, height: 100) }
    }

    @Test func keyboard() throws {
        #expect(try DesktopCommands.keyboard(.init(keys: "ctrl+s")) == ["xdotool", "key", "--delay", "8", "--", "ctrl+s"])
        #expect(try DesktopCommands.keyboard(.init(keys: " ctrl+a  BackSpace KP_Enter ")) == ["xdotool", "key", "--delay", "8", "--", "ctrl+a", "BackSpace", "KP_Enter"])
        #expect(try DesktopCommands.keyboard(.init(text: "-- --help")) == ["xdotool", "type", "--delay", "2", "--", "-- --help"])
        #expect(try DesktopCommands.keyboard(.init(text: "a\tb\r\nñ½")).last == "a\tb\r\nñ½", "tab, newlines and Latin-1 letters are typed")
        for bad in [DesktopKeyboardRequest(), .init(text: "a", keys: "b"), .init(text: ""), .init(keys: ""), .init(keys: "ctrl+"), .init(keys: "a;b"), .init(keys: "--sync"), .init(text: "a\u{88}b"), .init(text: "\u{1b}[A"), .init(text: "x\u{7f}")] {
            #expect(throws: AgentBoxError.self, "\(bad)") { try DesktopCommands.keyboard(bad) }
        }
        #expect { try DesktopCommands.keyboard(.init(text: String(repeating: "x", count: 5_000))) } throws: {
            ($0 as? AgentBoxError)?.code == .tooLarge
        }
    }

    @Test func typingPiecesBindEachPiecesCharacters() {
        #expect(DesktopCommands.typingPieces("plain", slots: 2).map(\.text) == ["plain"])
        let pieces = DesktopCommands.typingPieces("aé b ü ç é", slots: 2)
        #expect(pieces.map(\.text) == ["aé b ü ", "ç é"])
        #expect(pieces.map { $0.unmapped.map { String($0) } } == [["é", "ü"], ["ç", "é"]])
        #expect(DesktopCommands.keymap(["é", "✓"], keycodes: [93, 97, 103]) == ["xmodmap", "-e", "keycode 93 = U00E9 U00E9", "-e", "keycode 97 = U2713 U2713"])
        #expect(DesktopCommands.freeKeycodes("keycode   8 =\nkeycode  93 = \nkeycode  94 = less greater\nkeycode 97 =") == [93, 97])
    }

    @Test func windows() throws {
        let output = """
            active=6291468
            0x0060000c 41 58 484 316 xterm: a title  with spaces
            0x00800030 601 318 310 195 
            0x00900001   broken
            """
        let windows = DesktopCommands.parseWindows(output)
        #expect(windows == [
            DesktopWindow(id: "0x0060000c", title: "xterm: a title  with spaces", x: 41, y: 58, width: 484, height: 316, focused: true),
            DesktopWindow(id: "0x00800030", title: "", x: 601, y: 318, width: 310, height: 195, focused: false),
        ])
        #expect(try DesktopCommands.windowID("0x60000C") == 0x60000C)
        for bad in ["60000c", "0x", "0x123456789", "0xzz", "0x-1"] {
            #expect(throws: AgentBoxError.self, "\(bad)") { try DesktopCommands.windowID(bad) }
        }
    }

    @Test func screenshotGeometry() throws {
        let whole = try DesktopCommands.screenshotGeometry(.init(), width: 1280, height: 800)
        #expect(whole == (0, 0, 1280, 800, 1280, 800))
        let region = try DesktopCommands.screenshotGeometry(.init(x: 10, y: 20, width: 100, height: 50, scale: 0.5), width: 1280, height: 800)
        #expect(region == (10, 20, 100, 50, 50, 25))
        for bad in [
            DesktopScreenshotRequest(x: 0), .init(x: 1200, y: 0, width: 100, height: 10), .init(x: 0, y: 0, width: 0, height: 10),
            .init(scale: 0), .init(scale: 1.5), .init(scale: .nan),
        ] {
            #expect(throws: AgentBoxError.self, "\(bad)") { try DesktopCommands.screenshotGeometry(bad, width: 1280, height: 800) }
        }
    }

    @Test func sizes() throws {
        #expect(try DesktopCommands.size(.init()) == (1280, 800))
        #expect(try DesktopCommands.size(.init(width: 64, height: 4096)) == (64, 4096))
        #expect(throws: AgentBoxError.self) { try DesktopCommands.size(.init(width: 63)) }
        #expect(throws: AgentBoxError.self) { try DesktopCommands.size(.init(height: 4097)) }
    }

    /// The X11 setup reply is parsed as untrusted bytes: anything short or odd is an error, never a trap.
    @Test func setupReplyIsCheckedNotTrusted() {
        for length in [0, 1, 20, 39, 40, 60] {
            #expect(throws: X11Error.self) { try SetupReply([UInt8](repeating: 0xFF, count: length)) }
        }
    }

    @Test func pngEncoding() throws {
        var pixels = [UInt8](repeating: 0, count: 4 * 4 * 4)
        pixels[0] = 0xFF  // blue at (0, 0)
        let png = try WorkspaceRuntime.encodePNG(pixels, width: 4, height: 4, outWidth: 2, outHeight: 2)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        #expect(Array(png.suffix(8).prefix(4)) == Array("IEND".utf8))
        #expect(throws: AgentBoxError.self) { try WorkspaceRuntime.encodePNG(pixels, width: 4, height: 4, outWidth: 0, outHeight: 2) }
    }

    /// Openbox prints messages of its own on standard output before it manages the screen: only the `--startup`
    /// line, whole and on its own, says the window manager is ready; a longer line that starts with it does not.
    @Test func aReadyLineIsThatLineOnly() async {
        let tail = DesktopProgramTail(readyLine: DesktopCommands.windowManagerReady)
        tail.append(Array("Openbox-Message: Unable to find a valid menu file\n".utf8), standardOutput: true)
        tail.append(Array("\(DesktopCommands.windowManagerReady)-not\n".utf8), standardOutput: true)
        tail.append(Array("\(DesktopCommands.windowManagerReady)\n".utf8), standardOutput: false)
        tail.append(Array("x\(DesktopCommands.windowManagerReady)\n".utf8), standardOutput: true)
        tail.markEnded()
        #expect(await tail.ready() == false)

        let split = DesktopProgramTail(readyLine: "ready")
        split.append(Array("noise\nre".utf8), standardOutput: true)
        split.append(Array("ady\n".utf8), standardOutput: true)
        #expect(await split.ready())

        // Without a ready line, Xvfb's display number (any line) is enough.
        let xvfb = DesktopProgramTail()
        xvfb.append(Array("0\n".utf8), standardOutput: true)
        #expect(await xvfb.ready())
    }
}
