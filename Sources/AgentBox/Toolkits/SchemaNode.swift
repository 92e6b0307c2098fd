import AgentBoxAPI

/// A schema as the validator uses it: checked and with its keywords decoded, so that validating never re-reads JSON.
enum SchemaNode: Sendable {
    /// `true` or `{}`: every value.
    case anything
    /// `false`: no value.
    case nothing
    case rules(SchemaRulesBox)
}

/// Holds a schema's rules by reference: checking a value against a subschema then costs one retain, not one for
/// each of the rules' arrays and values (which copying the struct out of an enum would).
final class SchemaRulesBox: Sendable {
    let rules: SchemaRules

    init(_ rules: SchemaRules) { self.rules = rules }
}

/// The decoded keywords of one object schema; `nil` where the keyword is absent.
struct SchemaRules: Sendable {
    var types: JSONTypeSet?
    var enumValues: [JSONValue]?
    /// `.some(.null)` for `"const": null`.
    var constValue: JSONValue?

    /// Sorted by name, so that violations come out in a stable order.
    var properties: [(name: String, schema: SchemaNode)] = []
    var declaredNames: Set<String> = []
    var required: [String] = []
    var additionalProperties: SchemaNode?

    var items: SchemaNode?
    var minItems: Int?
    var maxItems: Int?

    var minimum: Double?
    var maximum: Double?
    var exclusiveMinimum: Double?
    var exclusiveMaximum: Double?

    var minLength: Int?
    var maxLength: Int?
    var pattern: SchemaPattern?

    var anyOf: [SchemaNode]?
    var oneOf: [SchemaNode]?
    var allOf: [SchemaNode]?
}

/// The `type` keyword's names.
struct JSONTypeSet: OptionSet, Sendable {
    let rawValue: UInt8

    static let null = JSONTypeSet(rawValue: 1 << 0)
    static let boolean = JSONTypeSet(rawValue: 1 << 1)
    static let object = JSONTypeSet(rawValue: 1 << 2)
    static let array = JSONTypeSet(rawValue: 1 << 3)
    static let number = JSONTypeSet(rawValue: 1 << 4)
    static let string = JSONTypeSet(rawValue: 1 << 5)
    static let integer = JSONTypeSet(rawValue: 1 << 6)

    /// Every name, in the order messages list them.
    static let names: [(name: String, type: JSONTypeSet)] = [
        ("object", .object), ("array", .array), ("string", .string), ("integer", .integer), ("number", .number),
        ("boolean", .boolean), ("null", .null),
    ]

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init?(name: String) {
        guard let entry = Self.names.first(where: { $0.name == name }) else { return nil }
        self = entry.type
    }

    /// Whether `value` is of one of these types (an integral number is an `integer`, and every number a `number`).
    func admits(_ value: JSONValue) -> Bool {
        switch value {
        case .null: contains(.null)
        case .bool: contains(.boolean)
        case .object: contains(.object)
        case .array: contains(.array)
        case .string: contains(.string)
        case .number(let number): contains(.number) || (contains(.integer) && JSONFacts.isInteger(number))
        }
    }

    /// `string`, `string or null`, `object, array or null`.
    var phrase: String {
        let parts = Self.names.filter { contains($0.type) }.map(\.name)
        guard let last = parts.last else { return "nothing" }
        return parts.count == 1 ? last : parts.dropLast().joined(separator: ", ") + " or " + last
    }
}
