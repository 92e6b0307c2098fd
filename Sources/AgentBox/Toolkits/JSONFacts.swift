import Foundation

import AgentBoxAPI

/// Small questions about JSON values that the validator and the command line ask, each answered without recursing
/// deeper than the shallower of the values involved (an untrusted instance may be nested thousands deep).
enum JSONFacts {
    /// Whether `number` has no fraction (`3.0` is an integer, as JSON Schema says).
    static func isInteger(_ number: Double) -> Bool {
        number.isFinite && number.rounded(.towardZero) == number
    }

    /// JSON equality: numbers by value, objects regardless of key order. Recurses only while both values are
    /// containers, so its depth is that of the shallower value (a schema's literal, bounded when the schema is built).
    static func equal(_ left: JSONValue, _ right: JSONValue) -> Bool {
        switch (left, right) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)):
            guard a.count == b.count else { return false }
            return zip(a, b).allSatisfy { equal($0, $1) }
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            return a.allSatisfy { key, value in b[key].map { equal(value, $0) } ?? false }
        default: return false
        }
    }

    /// The kind of a value as messages name it: `integer` for an integral number.
    static func kind(of value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "boolean"
        case .number(let number): isInteger(number) ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// A short, shallow description of a value for messages: `string "ten"`, `number 2.5`, `array of 3 items`.
    static func preview(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let flag): "boolean \(flag)"
        case .number(let number): "\(kind(of: value)) \(JSONValue.number(number).jsonText)"
        case .string(let text): "string \(quoted(text))"
        case .array(let items): items.count == 1 ? "array of 1 item" : "array of \(items.count) items"
        case .object(let fields): fields.count == 1 ? "object with 1 property" : "object with \(fields.count) properties"
        }
    }

    /// `text` as a JSON string, cut to about `limit` characters with `…`.
    static func quoted(_ text: String, limit: Int = 40) -> String {
        JSONValue.string(shortened(text, to: limit)).jsonText
    }

    /// A literal from a schema (an enum value, a const, a default) as JSON text, cut to about `limit` characters.
    /// Schema literals are bounded in depth and size when the schema is built, so writing one is safe.
    static func literal(_ value: JSONValue, limit: Int = 60) -> String {
        shortened(value.jsonText, to: limit)
    }

    /// `text` cut to `limit` Unicode scalars, with `…` when something was cut.
    static func shortened(_ text: String, to limit: Int) -> String {
        guard scalarCount(of: text, cappedAt: limit) > limit else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.prefix(limit))) + "…"
    }

    /// How many Unicode scalars `text` has, counting no further than `cap + 1` (so a huge string costs at most `cap`).
    static func scalarCount(of text: String, cappedAt cap: Int) -> Int {
        var count = 0
        for _ in text.unicodeScalars {
            count += 1
            if count > cap { break }
        }
        return count
    }

    /// One reference token of a JSON pointer (RFC 6901): `~` as `~0`, `/` as `~1`.
    static func pointerToken(_ name: String) -> String {
        guard name.contains("~") || name.contains("/") else { return name }
        return name.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }
}
