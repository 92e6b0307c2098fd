import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox desktop …`: a workspace's X display — start and stop it, take screenshots, drive the mouse and the
/// keyboard, list, focus and close windows, get and set the clipboard.
struct DesktopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "desktop", abstract: "Drive a workspace's X display: screenshots, mouse, keyboard, windows, clipboard.",
        discussion: """
            Examples:
              agentbox desktop start demo
              agentbox spawn demo -- xterm
              agentbox desktop type demo 'echo hello'
              agentbox desktop key demo Return
              agentbox desktop screenshot demo -o screen.png
            """,
        subcommands: [Start.self, Stop.self, Screenshot.self, Click.self, Move.self, Mouse.self, TypeText.self, Key.self, Windows.self, Clipboard.self])

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the display (Xvfb and a window manager in the workspace's sandbox); programs started afterwards get DISPLAY.",
            discussion: """
                Example:
                  agentbox desktop start demo --width 1280 --height 800
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Option(help: "Width in pixels (64...4096; default 1280).") var width: Int?
        @Option(help: "Height in pixels (64...4096; default 800).") var height: Int?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let desktop = try await client.makeClient().startDesktop(key, width: width, height: height)
                if json { return try printJSON(desktop) }
                print("\(desktop.display) \(desktop.width)x\(desktop.height)")
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the display and every program on it.",
            discussion: """
                Example:
                  agentbox desktop stop demo
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String

        func run() async throws {
            try await runClientCall { try await client.makeClient().stopDesktop(key) }
        }
    }

    struct Screenshot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Save a PNG of the display (or of a region, scaled).",
            discussion: """
                Examples:
                  agentbox desktop screenshot demo -o screen.png
                  agentbox desktop screenshot demo --region 0,0,640,400 --scale 0.5 -o corner.png
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Option(name: [.short, .long], help: "Where to write the PNG ('-' for stdout).") var output: String = "screenshot.png"
        @Option(help: "A region: X,Y,WIDTH,HEIGHT in display pixels.") var region: String?
        @Option(help: "The PNG's size relative to the region (0.05...1).") var scale: Double?

        func run() async throws {
            var request = DesktopScreenshotRequest(scale: scale)
            if let region {
                let parts = region.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard parts.count == 4, parts.allSatisfy({ $0 != nil }) else {
                    throw ValidationError("--region takes X,Y,WIDTH,HEIGHT, such as 0,0,640,400")
                }
                request.x = parts[0]
                request.y = parts[1]
                request.width = parts[2]
                request.height = parts[3]
            }
            try await runClientCall {
                let png = try await client.makeClient().screenshot(key, request)
                if output == "-" {
                    writeStandardOutput(png)
                } else {
                    try png.write(to: URL(fileURLWithPath: output))
                    print("\(output) (\(png.count) bytes)")
                }
            }
        }
    }

    struct Click: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Click at X Y.",
            discussion: """
                Examples:
                  agentbox desktop click demo 100 200
                  agentbox desktop click demo 100 200 --button right --double
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "X in display pixels.") var x: Int
        @Argument(help: "Y in display pixels.") var y: Int
        @Option(help: "left, middle or right.") var button: DesktopMouseButton = .left
        @Flag(help: "Double-click.") var double = false

        func run() async throws {
            try await runClientCall {
                try await client.makeClient().mouse(key, .init(action: double ? .doubleClick : .click, x: x, y: y, button: button))
            }
        }
    }

    struct Move: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move the pointer to X Y.",
            discussion: """
                Example:
                  agentbox desktop move demo 640 400
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "X in display pixels.") var x: Int
        @Argument(help: "Y in display pixels.") var y: Int

        func run() async throws {
            try await runClientCall { try await client.makeClient().mouse(key, .init(action: .move, x: x, y: y)) }
        }
    }

    struct Mouse: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Any mouse action: move, click, doubleClick, down, up, scroll.",
            discussion: """
                Examples (a drag, then three notches down):
                  agentbox desktop mouse demo down 10 10 && agentbox desktop mouse demo up 300 200
                  agentbox desktop mouse demo scroll 640 400 --amount 3
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "move, click, doubleClick, down, up or scroll.") var action: DesktopMouseAction
        @Argument(help: "X in display pixels.") var x: Int
        @Argument(help: "Y in display pixels.") var y: Int
        @Option(help: "left, middle or right.") var button: DesktopMouseButton?
        @Option(help: "Scroll notches (positive down, negative up).") var amount: Int?

        func run() async throws {
            try await runClientCall {
                try await client.makeClient().mouse(key, .init(action: action, x: x, y: y, button: button, amount: amount))
            }
        }
    }

    struct TypeText: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "type", abstract: "Type text (Unicode) into the focused window.",
            discussion: """
                Example:
                  agentbox desktop type demo 'héllo wörld'
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The text.") var text: String

        func run() async throws {
            try await runClientCall { try await client.makeClient().type(key, text: text) }
        }
    }

    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Press key chords (X key names joined by '+'), one after another.",
            discussion: """
                Examples:
                  agentbox desktop key demo ctrl+s
                  agentbox desktop key demo ctrl+a BackSpace Return
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "Chords such as ctrl+s, Return, alt+F4.") var chords: [String]

        func run() async throws {
            try await runClientCall { try await client.makeClient().press(key, keys: chords.joined(separator: " ")) }
        }
    }

    struct Windows: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the windows, or focus or close one.",
            discussion: """
                Examples:
                  agentbox desktop windows demo
                  agentbox desktop windows demo --focus 0x00600003
                  agentbox desktop windows demo --close 0x00600003
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Option(help: "Give this window the focus.") var focus: String?
        @Option(help: "Ask this window to close.") var close: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let api = try client.makeClient()
                if let focus { return try await api.focusWindow(key, id: focus) }
                if let close { return try await api.closeWindow(key, id: close) }
                let list = try await api.windows(key)
                if json { return try printJSON(list) }
                printRows(
                    [["ID", "FOCUSED", "GEOMETRY", "TITLE"]]
                        + list.items.map { [$0.id, $0.focused ? "*" : "", "\($0.width)x\($0.height)+\($0.x)+\($0.y)", $0.title] })
            }
        }
    }

    struct Clipboard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the clipboard's text, or set it.",
            discussion: """
                Examples:
                  agentbox desktop clipboard demo
                  agentbox desktop clipboard demo --set 'some text'
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Option(help: "Put this text on the clipboard.") var set: String?

        func run() async throws {
            try await runClientCall {
                let api = try client.makeClient()
                if let set { return try await api.setClipboard(key, text: set) }
                print(try await api.clipboard(key), terminator: "")
            }
        }
    }
}

extension DesktopMouseButton: ExpressibleByArgument {}
extension DesktopMouseAction: ExpressibleByArgument {}
