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
    /// The most bytes of text one keyboard request types (at xdotool's 2 ms a key, 4,096 ASCII characters take ~8 s).
    static let maxTextBytes = 4 << 10
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
        ["Xvfb", display, "-displayfd", "1", "-screen", "0", "\(width)x\(height)x24", "-nolisten", "tcp", "-noreset", "-ac", "-dpi", "96"]
    }

    /// The window manager: Openbox, light and EWMH-compliant (what wmctrl needs to list, focus and close windows).
    /// Openbox runs its `--startup` command once it manages the screen: the line it prints says the desktop is ready
    /// (Openbox's own messages, such as a missing menu file, come on standard output too).
    static let windowManager = ["openbox", "--sm-disable", "--startup", "/bin/echo \(windowManagerReady)"]
    static let windowManagerReady = "agentbox-window-manager-ready"

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
            // Control characters have no key to type them (X has no keysym for C1 controls): only tab and newlines.
            if let control = text.unicodeScalars.first(where: { ($0.value < 0x20 && !"\t\n\r".unicodeScalars.contains($0)) || (0x7F...0x9F).contains($0.value) }) {
                throw AgentBoxError(
                    .invalidArgument, "text must not contain control characters (U+\(String(format: "%04X", control.value))); tab and newlines are typed")
            }
            return type(text)
        case (nil, let keys?):
            return ["xdotool", "key", "--delay", "8", "--"] + (try chords(keys))
        default:
            throw AgentBoxError(.invalidArgument, "give exactly one of text (to type) and keys (chords such as ctrl+s)")
        }
    }

    /// Text to type in pieces that each need at most `slots` characters outside the keyboard map (anything not
    /// ASCII), with those characters. Typing them needs keycodes bound to their keysyms; xdotool binds one per
    /// character and unbinds it at once, and a program that reads the map after the unbinding loses the character.
    /// So the runtime binds each piece's characters to keycodes of its own first (``keymap(_:keycodes:)``), and
    /// leaves them bound while xdotool types.
    static func typingPieces(_ text: String, slots: Int) -> [(text: String, unmapped: [Unicode.Scalar])] {
        var pieces: [(text: String, unmapped: [Unicode.Scalar])] = []
        var current = "", unmapped: [Unicode.Scalar] = []
        for character in text {
            let needed = character.unicodeScalars.filter { !$0.isASCII && !unmapped.contains($0) }
            let distinct = Array(Set(needed))
            if !distinct.isEmpty, unmapped.count + distinct.count > slots, !current.isEmpty {
                pieces.append((current, unmapped))
                current = ""
                unmapped = []
            }
            current.append(character)
            for scalar in character.unicodeScalars where !scalar.isASCII && !unmapped.contains(scalar) { unmapped.append(scalar) }
        }
        if !current.isEmpty { pieces.append((current, unmapped)) }
        return pieces
    }

    /// xmodmap's arguments binding each character to one of `keycodes` (as its keysym, `U` and its code point).
    static func keymap(_ scalars: [Unicode.Scalar], keycodes: [Int]) -> [String] {
        ["xmodmap"] + zip(scalars, keycodes).flatMap { scalar, keycode -> [String] in
            let name = "U" + String(format: "%04X", scalar.value)
            return ["-e", "keycode \(keycode) = \(name) \(name)"]
        }
    }

    /// The keycodes `xmodmap -pke` shows bound to nothing (`keycode  93 =`), at most 24.
    static func freeKeycodes(_ output: String) -> [Int] {
        Array(
            output.split(separator: "\n").compactMap { line -> Int? in
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count == 3, fields[0] == "keycode", fields[2] == "=", let code = Int(fields[1]), code > 8 else { return nil }
                return code
            }.prefix(24))
    }

    /// xdotool's arguments to type `text` (already checked).
    static func type(_ text: String) -> [String] { ["xdotool", "type", "--delay", "2", "--", text] }

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

    /// One shell script that prints the focused window's id (decimal, possibly empty), then each window the window
    /// manager lists (wmctrl) with its client area's absolute geometry (xwininfo; wmctrl's own `-G` figures are
    /// off by the decorations): `0x0060000c X Y WIDTH HEIGHT title words`. Without a window manager wmctrl fails,
    /// and so does the script (an empty list would say "no windows" when the truth is "cannot tell"). A window that
    /// goes while wmctrl reads it fails wmctrl too (X's `BadWindow`): that is asked again, up to five times.
    static let windowList = [
        "/bin/sh", "-c",
        """
        echo "active=$(xdotool getwindowfocus 2>/dev/null)"
        attempt=1
        until windows=$(wmctrl -l 2>/dev/null); do
          [ "$attempt" -lt 5 ] || { wmctrl -l >/dev/null; exit 1; }
          attempt=$((attempt + 1))
          sleep 0.05
        done
        printf '%s\n' "$windows" | while read -r id desktop host title; do
          [ -n "$id" ] || continue
          geometry=$(xwininfo -id "$id" 2>/dev/null | awk '/Absolute upper-left X/{x=$NF} /Absolute upper-left Y/{y=$NF} /^ *Width:/{w=$NF} /^ *Height:/{h=$NF} END{print x, y, w, h}')
          echo "$id $geometry $title"
        done
        """,
    ]

    /// Parses ``windowList``'s output. Lines that do not parse (a window that went meanwhile) are left out.
    static func parseWindows(_ output: String) -> [DesktopWindow] {
        var lines = output.split(separator: "\n", omittingEmptySubsequences: true)
        var focused: UInt32?
        if let first = lines.first, first.hasPrefix("active=") {
            focused = UInt32(first.dropFirst("active=".count))
            lines.removeFirst()
        }
        return lines.compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 5, let id = try? windowID(String(fields[0])),
                let x = Int(fields[1]), let y = Int(fields[2]), let width = Int(fields[3]), let height = Int(fields[4])
            else { return nil }
            let title = fields.count > 5 ? String(fields[5]) : ""
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
