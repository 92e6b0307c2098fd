import AgentBoxAPI
import Foundation
import NIOCore
import NIOHTTP1

/// The desktop: `/v1/workspaces/{key}/desktop` — an X display in the workspace, its screen, input, windows and
/// clipboard.
extension AgentBoxClient {
    /// Starts the workspace's X display (default 1280 × 800), or returns the one that runs. Programs started in the
    /// workspace afterwards get `DISPLAY`.
    ///
    /// ```swift
    /// let desktop = try await client.startDesktop("demo")
    /// _ = try await client.spawn("demo", SpawnRequest(command: "xterm"))
    /// let png = try await client.screenshot("demo")
    /// ```
    @discardableResult
    public func startDesktop(_ key: String, width: Int? = nil, height: Int? = nil) async throws -> Desktop {
        try await send(.POST, desktopPath(key), json: DesktopStartRequest(width: width, height: height))
    }

    /// The desktop, when it is on (never boots the workspace).
    public func desktop(_ key: String) async throws -> Desktop {
        try await send(.GET, desktopPath(key))
    }

    /// Stops the display and every program on it.
    public func stopDesktop(_ key: String) async throws {
        _ = try await perform(.DELETE, desktopPath(key))
    }

    /// A PNG of the display, or of a region of it (`x`, `y`, `width`, `height` in display pixels), scaled by `scale`
    /// (0.05...1).
    ///
    /// ```swift
    /// let corner = try await client.screenshot("demo", .init(x: 0, y: 0, width: 200, height: 100, scale: 0.5))
    /// ```
    public func screenshot(_ key: String, _ request: DesktopScreenshotRequest = DesktopScreenshotRequest()) async throws -> Data {
        var query: [(String, String)] = []
        for (name, value) in [("x", request.x), ("y", request.y), ("width", request.width), ("height", request.height)] {
            if let value { query.append((name, String(value))) }
        }
        if let scale = request.scale { query.append(("scale", String(scale))) }
        return Data(try await perform(.GET, desktopPath(key) + "/screenshot", query: query).body.readableBytesView)
    }

    /// Moves, clicks, double-clicks, presses, releases or scrolls the mouse at (x, y).
    ///
    /// ```swift
    /// try await client.mouse("demo", .init(action: .click, x: 100, y: 200))
    /// ```
    public func mouse(_ key: String, _ request: DesktopMouseRequest) async throws {
        _ = try await perform(.POST, desktopPath(key) + "/mouse", json: request)
    }

    /// Types `text` (Unicode; a newline is Return) into the focused window.
    public func type(_ key: String, text: String) async throws {
        _ = try await perform(.POST, desktopPath(key) + "/keyboard", json: DesktopKeyboardRequest(text: text))
    }

    /// Presses key chords such as `ctrl+s` (several separated by spaces).
    public func press(_ key: String, keys: String) async throws {
        _ = try await perform(.POST, desktopPath(key) + "/keyboard", json: DesktopKeyboardRequest(keys: keys))
    }

    /// The top-level windows.
    public func windows(_ key: String) async throws -> DesktopWindowList {
        try await send(.GET, desktopPath(key) + "/windows")
    }

    /// Gives a window the focus and raises it.
    public func focusWindow(_ key: String, id: String) async throws {
        _ = try await perform(.POST, desktopPath(key) + "/windows/\(Self.escape(id))/focus")
    }

    /// Asks a window to close.
    public func closeWindow(_ key: String, id: String) async throws {
        _ = try await perform(.DELETE, desktopPath(key) + "/windows/\(Self.escape(id))")
    }

    /// The clipboard's text.
    public func clipboard(_ key: String) async throws -> String {
        let clipboard: DesktopClipboard = try await send(.GET, desktopPath(key) + "/clipboard")
        return clipboard.text
    }

    /// Puts text on the clipboard.
    public func setClipboard(_ key: String, text: String) async throws {
        _ = try await perform(.PUT, desktopPath(key) + "/clipboard", json: DesktopClipboard(text: text))
    }

    private func desktopPath(_ key: String) -> String { Self.workspacePath(key) + "/desktop" }

    private static func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? segment
    }
}
