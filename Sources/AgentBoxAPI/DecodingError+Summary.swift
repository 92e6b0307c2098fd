import Foundation

extension DecodingError {
    /// A one-line account of the error that names the field it is about (`'limits.memoryMb' should be an integer`),
    /// for answers to callers who sent malformed JSON: the HTTP API's 400s and the MCP tools' argument errors.
    public var summary: String {
        func path(_ codingPath: [any CodingKey]) -> String {
            let text = codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
                .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
            return text.isEmpty ? "the body" : "'\(text)'"
        }
        switch self {
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) should be \(Self.jsonName(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) should be \(Self.jsonName(type)), not null"
        case .keyNotFound(let key, let context):
            return "missing field \(path(context.codingPath + [key]))"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "not valid JSON" }
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(self)"
        }
    }

    private static func jsonName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt64.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        case is [Any].Type: "an array"
        default: "an object"
        }
    }
}
