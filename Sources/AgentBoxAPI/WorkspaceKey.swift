/// The name of a workspace: 1–128 characters of `A–Z a–z 0–9 . _ - :`.
///
/// A key is chosen by the caller and never used as a file name on the host (workspaces get an internal id for
/// that), so `.` and `..` are valid keys without being a path hazard.
public struct WorkspaceKey: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let rawValue: String

    /// The longest key accepted.
    public static let maxLength = 128

    /// Validates `rawValue`; `nil` when it is not a valid key.
    public init?(rawValue: String) {
        guard Self.validationProblem(rawValue) == nil else { return nil }
        self.rawValue = rawValue
    }

    /// Validates `rawValue`, throwing an error whose description says what is wrong with it.
    public init(validating rawValue: String) throws(InvalidWorkspaceKey) {
        if let problem = Self.validationProblem(rawValue) {
            throw InvalidWorkspaceKey(key: rawValue, reason: problem)
        }
        self.rawValue = rawValue
    }

    /// Why `candidate` is not a valid key, or `nil` when it is one.
    public static func validationProblem(_ candidate: String) -> String? {
        let bytes = candidate.utf8
        if bytes.isEmpty { return "a workspace key must not be empty" }
        if bytes.count > maxLength { return "a workspace key has at most \(maxLength) characters, not \(bytes.count)" }
        for byte in bytes where !isAllowed(byte) {
            let shown = byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : hexByte(byte)
            return "a workspace key may hold only A-Z a-z 0-9 . _ - : (found \(shown))"
        }
        return nil
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"),
            UInt8(ascii: ":"):
            return true
        default:
            return false
        }
    }

    private static func hexByte(_ byte: UInt8) -> String {
        "byte 0x" + String(byte, radix: 16, uppercase: true)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        guard let key = WorkspaceKey(rawValue: raw) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: Self.validationProblem(raw) ?? "invalid workspace key")
        }
        self = key
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }

    public static func < (lhs: WorkspaceKey, rhs: WorkspaceKey) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Thrown when a string is not a valid ``WorkspaceKey``.
public struct InvalidWorkspaceKey: Error, Sendable, CustomStringConvertible {
    /// The rejected key.
    public let key: String
    /// What is wrong with it, in words a caller can act on.
    public let reason: String
    public var description: String { reason }
}
