import Foundation

/// The body of `POST /v1/workspaces/{key}/desktop`: the display's size (default 1280 × 800).
public struct DesktopStartRequest: Codable, Sendable, Equatable {
    /// Pixels, 64...4096 (default 1280).
    public var width: Int?
    /// Pixels, 64...4096 (default 800).
    public var height: Int?

    public init(width: Int? = nil, height: Int? = nil) {
        self.width = width
        self.height = height
    }
}

/// A workspace's X display, as `POST /v1/workspaces/{key}/desktop` answers it.
public struct Desktop: Codable, Sendable, Equatable {
    /// The `DISPLAY` value that programs in the workspace use (`:0`).
    public var display: String
    public var width: Int
    public var height: Int

    public init(display: String, width: Int, height: Int) {
        self.display = display
        self.width = width
        self.height = height
    }
}

/// What `POST /v1/workspaces/{key}/desktop/mouse` does.
public enum DesktopMouseAction: String, Codable, Sendable, CaseIterable {
    /// Moves the pointer to (x, y).
    case move
    /// Moves, then presses and releases `button`.
    case click
    /// Moves, then clicks twice.
    case doubleClick
    /// Moves, then presses `button` (and holds it: a drag is down, move, up).
    case down
    /// Moves, then releases `button`.
    case up
    /// Moves, then scrolls `amount` notches: positive down, negative up.
    case scroll
}

/// A mouse button.
public enum DesktopMouseButton: String, Codable, Sendable, CaseIterable {
    case left
    case middle
    case right
}

/// The body of `POST /v1/workspaces/{key}/desktop/mouse`.
public struct DesktopMouseRequest: Codable, Sendable, Equatable {
    public var action: DesktopMouseAction
    /// Where, in display pixels from the top left corner.
    public var x: Int
    public var y: Int
    /// Default `left`.
    public var button: DesktopMouseButton?
    /// Scroll notches (for `scroll`; default 1; -100...100, positive down).
    public var amount: Int?

    public init(action: DesktopMouseAction, x: Int, y: Int, button: DesktopMouseButton? = nil, amount: Int? = nil) {
        self.action = action
        self.x = x
        self.y = y
        self.button = button
        self.amount = amount
    }
}

/// The body of `POST /v1/workspaces/{key}/desktop/keyboard`: exactly one of `text` (typed as is, Unicode included;
/// a newline is Return) and `keys` (key chords such as `ctrl+s`, several separated by spaces: `ctrl+a BackSpace`).
public struct DesktopKeyboardRequest: Codable, Sendable, Equatable {
    public var text: String?
    public var keys: String?

    public init(text: String? = nil, keys: String? = nil) {
        self.text = text
        self.keys = keys
    }
}

/// A top-level window on a workspace's display.
public struct DesktopWindow: Codable, Sendable, Equatable {
    /// The X window id, as `0x` and hexadecimal digits.
    public var id: String
    public var title: String
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int
    /// Whether it has the keyboard focus.
    public var focused: Bool

    public init(id: String, title: String, x: Int, y: Int, width: Int, height: Int, focused: Bool) {
        self.id = id
        self.title = title
        self.x = x
        self.y = y
        self.width = width
        self.height = height
        self.focused = focused
    }
}

/// The answer of `GET /v1/workspaces/{key}/desktop/windows`, in stacking order of the window manager's list.
public struct DesktopWindowList: Codable, Sendable, Equatable {
    public var items: [DesktopWindow]

    public init(items: [DesktopWindow]) {
        self.items = items
    }
}

/// The clipboard's text: the answer of `GET` and the body of `PUT /v1/workspaces/{key}/desktop/clipboard`.
public struct DesktopClipboard: Codable, Sendable, Equatable {
    public var text: String

    public init(text: String) {
        self.text = text
    }
}

/// What a screenshot shows: the whole display, or a region of it, optionally scaled (the query of
/// `GET /v1/workspaces/{key}/desktop/screenshot`: `x`, `y`, `width`, `height`, `scale`).
public struct DesktopScreenshotRequest: Codable, Sendable, Equatable {
    /// The region's top left corner and size, in display pixels (all four, or none for the whole display).
    public var x: Int?
    public var y: Int?
    public var width: Int?
    public var height: Int?
    /// 0.05...1 (default 1): the PNG's size relative to the region, area-averaged.
    public var scale: Double?

    public init(x: Int? = nil, y: Int? = nil, width: Int? = nil, height: Int? = nil, scale: Double? = nil) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
        self.scale = scale
    }
}
