import AgentBoxAPI
import Foundation

/// The command lines of Debian's X tools that carry out desktop requests inside the sandbox (xdotool for input,
/// wmctrl for windows, xclip for the clipboard), and the checks that come first. Pure: no process is started here,
/// so every rule is testable on its own. Arguments never pass through a shell, and user text always follows `--`.
enum DesktopCommands {
    /// The display's number inside every workspace (each has its own network namespace and `/tmp`).
    static let display = ":0"
    /// The sides a display may have.
    static let sides = 64...4096
    /// The default size.
    static let defaultSize = (width: 1280, height: 800)
    /// The most bytes of text one keyboard request types.
    static let maxTextBytes = 16 << 10
    /// The most bytes of key chords one request presses.
    static let maxKeysBytes = 1024
    /// The most bytes the clipboard takes or gives.
    static let maxClipboardBytes = 1 << 20

    /// The display's size from a start request, checked.
    static func size(_ request: DesktopStartRequest) throws -> (width: Int, height: Int) {
        let width = request.width ?? defaultSize.width, height = request.height ?? defaultSize.height
        guard sides.contains(width), sides.contains(height) else {
            throw AgentBoxError(.invalidArgument, "width and height must be \(sides.lowerBound)...\(sides.upperBound), not \(width)x\(height)")
        }
        return (width, height)
    }

    /// The X server: no TCP, no reset when the last client goes, access for local clients only (the display's
    /// sockets exist only in the workspace's own `/tmp` and network namespace).
    static func xvfb(width: Int, height: Int) -> [String] {
        ["Xvfb", display, "-screen", "0", "\(width)x\(height)x24", "-nolisten", "tcp", "-noreset", "-ac", "-dpi", "96"]
    }

    /// The window manager: Openbox, light and EWMH-compliant (what wmctrl needs to list, focus and close windows).
    static let windowManager = ["openbox", "--sm-disable"]

    /// The VNC server of the live view, on the workspace's own loopback; `viewOnly` ignores the viewer's input.
    static func vnc(port: Int, viewOnly: Bool) -> [String] {
        ["x11vnc", "-display", display, "-rfbport", String(port), "-localhost", "-nopw", "-forever", "-shared", "-quiet", "-noxdamage"]
            + (viewOnly ? ["-viewonly"] : [])
    }

    /// The VNC ports: one that takes input, one view-only (for reader tokens).
    static func vncPort(viewOnly: Bool) -> Int { viewOnly ? 5901 : 5900 }

    /// xdotool's arguments for a mouse request, checked against the display's size.
    static func mouse(_ request: DesktopMouseRequest, width: Int, height: Int) throws -> [String] {
        guard (0..<width).contains(request.x), (0..<height).contains(request.y) else {
            throw AgentBoxError(.invalidArgument, "x and y must be within the display (0...\(width - 1), 0...\(height - 1)), not \(request.x),\(request.y)")
        }
        let button: String =
            switch request.button ?? .left {
            case .left: "1"
            case .middle: "2"
            case .right: "3"
            }
        if request.amount != nil, request.action != .scroll {
            throw AgentBoxError(.invalidArgument, "amount is for the scroll action only")
        }
        let move = ["xdotool", "mousemove", String(request.x), String(request.y)]
        switch request.action {
        case .move: return move
        case .click: return move + ["click", button]
        case .doubleClick: return move + ["click", "--repeat", "2", "--delay", "60", button]
        case .down: return move + ["mousedown", button]
        case .up: return move + ["mouseup", button]
        case .scroll:
            let amount = request.amount ?? 1
            guard (-100...100).contains(amount), amount != 0 else {
                throw AgentBoxError(.invalidArgument, "amount must be -100...100 and not 0, not \(amount)")
            }
            if request.button != nil { throw AgentBoxError(.invalidArgument, "button is not for the scroll action") }
            // X buttons 4 and 5 are the wheel's up and down notches.
            return move + ["click", "--repeat", String(abs(amount)), "--delay", "10", amount > 0 ? "5" : "4"]
        }
    }

    /// xdotool's arguments for a keyboard request.
    static func keyboard(_ request: DesktopKeyboardRequest) throws -> [String] {
        switch (request.text, request.keys) {
        case (let text?, nil):
            guard !text.isEmpty else { throw AgentBoxError(.invalidArgument, "text must not be empty") }
            guard text.utf8.count <= maxTextBytes else {
                throw AgentBoxError(.tooLarge, "text holds \(text.utf8.count) bytes; at most \(maxTextBytes) per request")
            }
            guard !text.utf8.contains(0) else { throw AgentBoxError(.invalidArgument, "text must not contain NUL") }
            return ["xdotool", "type", "--delay", "8", "--", text]
        case (nil, let keys?):
            return ["xdotool", "key", "--delay", "8", "--"] + (try chords(keys))
        default:
            throw AgentBoxError(.invalidArgument, "give exactly one of text (to type) and keys (chords such as ctrl+s)")
        }
    }

    /// Key chords separated by spaces: each is key names (X keysyms such as `ctrl`, `Return`, `a`, `F5`,
    /// `KP_Enter`) joined by `+`.
    static func chords(_ keys: String) throws -> [String] {
        guard keys.utf8.count <= maxKeysBytes else {
            throw AgentBoxError(.tooLarge, "keys holds \(keys.utf8.count) bytes; at most \(maxKeysBytes)")
        }
        let chords = keys.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard !chords.isEmpty else { throw AgentBoxError(.invalidArgument, "keys must name at least one key, such as ctrl+s") }
        for chord in chords {
            let names = chord.split(separator: "+", omittingEmptySubsequences: false)
            for name in names {
                guard !name.isEmpty, name.utf8.count <= 64,
                    name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_") })
                else {
                    throw AgentBoxError(
                        .invalidArgument, "'\(chord.prefix(80))' is not a key chord: key names (letters, digits, _) joined by '+', such as ctrl+s")
                }
            }
        }
        return chords
    }

    /// A window id as the API writes it (`0x` and lowercase hexadecimal), checked.
    static func windowID(_ text: String) throws -> UInt32 {
        let lowered = text.lowercased()
        guard lowered.hasPrefix("0x"), lowered.count <= 10, let value = UInt32(lowered.dropFirst(2), radix: 16) else {
            throw AgentBoxError(.invalidArgument, "'\(text.prefix(80))' is not a window id (0x and up to 8 hexadecimal digits)")
        }
        return value
    }

    static func format(windowID: UInt32) -> String { "0x" + String(format: "%08x", windowID) }

    /// One shell line that prints the focused window's id (decimal, possibly empty), then wmctrl's window list.
    static let windowList = ["/bin/sh", "-c", "echo \"active=$(xdotool getwindowfocus 2>/dev/null)\"; exec wmctrl -l -G"]

    /// Parses ``windowList``'s output: `active=ID`, then `0x0120000a  0 10 52 484 316 host title words`.
    static func parseWindows(_ output: String) -> [DesktopWindow] {
        var lines = output.split(separator: "\n", omittingEmptySubsequences: true)
        var focused: UInt32?
        if let first = lines.first, first.hasPrefix("active=") {
            focused = UInt32(first.dropFirst("active=".count))
            lines.removeFirst()
        }
        return lines.compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 7, omittingEmptySubsequences: true)
            guard fields.count >= 7, let id = try? windowID(String(fields[0])),
                let x = Int(fields[2]), let y = Int(fields[3]), let width = Int(fields[4]), let height = Int(fields[5])
            else { return nil }
            let title = fields.count > 7 ? String(fields[7]) : ""
            return DesktopWindow(id: format(windowID: id), title: title, x: x, y: y, width: width, height: height, focused: id == focused)
        }
    }

    /// wmctrl's arguments to focus (activate and raise) or close (ask to close, as the title bar's button does) a window.
    static func focus(_ id: UInt32) -> [String] { ["wmctrl", "-i", "-a", format(windowID: id)] }
    static func close(_ id: UInt32) -> [String] { ["wmctrl", "-i", "-c", format(windowID: id)] }

    /// The clipboard (the CLIPBOARD selection, what ctrl+c and ctrl+v use). Reading an empty one fails: it is "".
    static let clipboardGet = ["xclip", "-selection", "clipboard", "-o"]
    /// xclip stays in the background to serve the selection; its output goes nowhere, so nothing waits for it.
    static let clipboardSet = ["/bin/sh", "-c", "exec xclip -selection clipboard -i >/dev/null 2>&1"]

    /// The region and output size of a screenshot, checked against the display's size.
    static func screenshotGeometry(_ request: DesktopScreenshotRequest, width: Int, height: Int) throws -> (
        x: Int, y: Int, width: Int, height: Int, outWidth: Int, outHeight: Int
    ) {
        var region = (x: 0, y: 0, width: width, height: height)
        let parts = [request.x, request.y, request.width, request.height]
        if parts.contains(where: { $0 != nil }) {
            guard let x = request.x, let y = request.y, let w = request.width, let h = request.height else {
                throw AgentBoxError(.invalidArgument, "a region needs all of x, y, width and height")
            }
            guard x >= 0, y >= 0, w > 0, h > 0, x + w <= width, y + h <= height else {
                throw AgentBoxError(.invalidArgument, "the region \(x),\(y) \(w)x\(h) is not inside the \(width)x\(height) display")
            }
            region = (x, y, w, h)
        }
        let scale = request.scale ?? 1
        guard scale.isFinite, scale >= 0.05, scale <= 1 else {
            throw AgentBoxError(.invalidArgument, "scale must be 0.05...1, not \(scale)")
        }
        let outWidth = max(1, Int((Double(region.width) * scale).rounded()))
        let outHeight = max(1, Int((Double(region.height) * scale).rounded()))
        return (region.x, region.y, region.width, region.height, outWidth, outHeight)
    }
}
