import AgentBoxAPI

/// Where a keyword is in a schema, for ``SchemaProblem``s: a JSON pointer such as `/properties/tags/items`.
struct SchemaLocation {
    private(set) var pointer = ""

    func appending(_ tokens: String...) -> SchemaLocation {
        var next = self
        for token in tokens { next.pointer += "/" + JSONFacts.pointerToken(token) }
        return next
    }

    func problem(_ detail: String) -> SchemaProblem {
        SchemaProblem(detail: pointer.isEmpty ? "at the top level: \(detail)" : "at \(pointer): \(detail)")
    }
}

/// Reads a schema into ``SchemaNode``s, refusing anything the validator would not enforce and anything beyond its
/// bounds. Recursion follows the schema, and stops at ``JSONSchemaValidator/maximumSchemaDepth``.
struct SchemaCompiler {
    /// JSON values read so far, literals included, against ``JSONSchemaValidator/maximumSchemaValues``.
    private var valueCount = 0

    /// Keywords accepted and ignored, with what their value must be.
    private static let annotations: [String: AnnotationValue] = [
        "title": .string, "description": .string, "$comment": .string, "$schema": .string, "format": .string,
        "default": .any, "examples": .array, "deprecated": .boolean, "readOnly": .boolean, "writeOnly": .boolean,
    ]

    private enum AnnotationValue {
        case string, boolean, array, any
    }

    mutating func compile(_ schema: JSONValue, at location: SchemaLocation, depth: Int) throws(SchemaProblem) -> SchemaNode {
        guard depth <= JSONSchemaValidator.maximumSchemaDepth else {
            throw location.problem("subschemas nest deeper than \(JSONSchemaValidator.maximumSchemaDepth) levels")
        }
        try count(1, at: location)
        switch schema {
        case .bool(let accepts): return accepts ? .anything : .nothing
        case .object(let fields):
            if fields.isEmpty { return .anything }
            return .rules(SchemaRulesBox(try rules(fields, at: location, depth: depth)))
        default:
            throw location.problem("a schema must be an object or a boolean, not \(JSONFacts.kind(of: schema))")
        }
    }

    private mutating func rules(_ fields: [String: JSONValue], at location: SchemaLocation, depth: Int) throws(SchemaProblem) -> SchemaRules {
        var rules = SchemaRules()
        // Sorted, so that the problem reported for a schema with several is always the same one.
        for keyword in fields.keys.sorted() {
            guard let value = fields[keyword] else { continue }
            let here = location.appending(keyword)
            switch keyword {
            case "type": rules.types = try types(value, at: here)
            case "enum":
                guard case .array(let values) = value, !values.isEmpty else {
                    throw here.problem("enum must be a non-empty array")
                }
                try literal(value, at: here, depth: depth)
                rules.enumValues = values
            case "const":
                try literal(value, at: here, depth: depth)
                rules.constValue = value

            case "properties":
                guard case .object(let properties) = value else { throw here.problem("properties must be an object") }
                for name in properties.keys.sorted() {
                    guard let subschema = properties[name] else { continue }
                    rules.properties.append((name, try compile(subschema, at: here.appending(name), depth: depth + 1)))
                }
                rules.declaredNames = Set(properties.keys)
            case "required":
                guard case .array(let names) = value else { throw here.problem("required must be an array of strings") }
                var seen: Set<String> = []
                for name in names {
                    guard case .string(let text) = name else { throw here.problem("required must be an array of strings") }
                    guard seen.insert(text).inserted else { throw here.problem("required lists \(JSONFacts.quoted(text)) twice") }
                    rules.required.append(text)
                }
                try count(names.count, at: here)
            case "additionalProperties": rules.additionalProperties = try compile(value, at: here, depth: depth + 1)

            case "items":
                if case .array = value {
                    throw here.problem("items must be one schema (tuple validation with an array of schemas is not supported)")
                }
                rules.items = try compile(value, at: here, depth: depth + 1)
            case "minItems": rules.minItems = try count(value, at: here, keyword: keyword)
            case "maxItems": rules.maxItems = try count(value, at: here, keyword: keyword)

            case "minimum": rules.minimum = try number(value, at: here, keyword: keyword)
            case "maximum": rules.maximum = try number(value, at: here, keyword: keyword)
            case "exclusiveMinimum": rules.exclusiveMinimum = try number(value, at: here, keyword: keyword)
            case "exclusiveMaximum": rules.exclusiveMaximum = try number(value, at: here, keyword: keyword)

            case "minLength": rules.minLength = try count(value, at: here, keyword: keyword)
            case "maxLength": rules.maxLength = try count(value, at: here, keyword: keyword)
            case "pattern":
                guard case .string(let source) = value else { throw here.problem("pattern must be a string") }
                do {
                    rules.pattern = try SchemaPattern(source)
                } catch {
                    throw here.problem(error.detail)
                }

            case "anyOf": rules.anyOf = try alternatives(value, at: here, keyword: keyword, depth: depth)
            case "oneOf": rules.oneOf = try alternatives(value, at: here, keyword: keyword, depth: depth)
            case "allOf": rules.allOf = try alternatives(value, at: here, keyword: keyword, depth: depth)

            default:
                guard let expected = Self.annotations[keyword] else {
                    throw location.problem("unsupported keyword \(JSONFacts.quoted(keyword))\(Self.hint(for: keyword))")
                }
                switch (expected, value) {
                case (.string, .string), (.boolean, .bool), (.array, .array), (.any, _): try literal(value, at: here, depth: depth)
                case (.string, _): throw here.problem("\(keyword) must be a string")
                case (.boolean, _): throw here.problem("\(keyword) must be a boolean")
                case (.array, _): throw here.problem("\(keyword) must be an array")
                }
            }
        }
        return rules
    }

    /// What to do instead of a keyword this validator refuses, when there is something.
    private static func hint(for keyword: String) -> String {
        switch keyword {
        case "$ref", "$defs", "definitions": " (references are not supported: write the subschema in place)"
        case "prefixItems": " (tuple validation is not supported)"
        default: ""
        }
    }

    private mutating func types(_ value: JSONValue, at location: SchemaLocation) throws(SchemaProblem) -> JSONTypeSet {
        let names: [JSONValue]
        switch value {
        case .string: names = [value]
        case .array(let list) where !list.isEmpty: names = list
        default: throw location.problem("type must be a type name or a non-empty array of them")
        }
        var set: JSONTypeSet = []
        for name in names {
            guard case .string(let text) = name, let type = JSONTypeSet(name: text) else {
                let known = JSONTypeSet.names.map(\.name).joined(separator: ", ")
                throw location.problem("\(JSONFacts.literal(name)) is not a type (the types are \(known))")
            }
            guard !set.contains(type) else { throw location.problem("type lists \(text) twice") }
            set.insert(type)
        }
        try count(names.count, at: location)
        return set
    }

    private mutating func alternatives(_ value: JSONValue, at location: SchemaLocation, keyword: String, depth: Int) throws(SchemaProblem) -> [SchemaNode] {
        guard case .array(let schemas) = value, !schemas.isEmpty else {
            throw location.problem("\(keyword) must be a non-empty array of schemas")
        }
        var nodes: [SchemaNode] = []
        for (index, schema) in schemas.enumerated() {
            nodes.append(try compile(schema, at: location.appending(String(index)), depth: depth + 1))
        }
        return nodes
    }

    /// A non-negative integer (`minItems`, `maxLength`…); `2.0` is one.
    private func count(_ value: JSONValue, at location: SchemaLocation, keyword: String) throws(SchemaProblem) -> Int {
        guard case .number(let number) = value, JSONFacts.isInteger(number), number >= 0, number <= 9_007_199_254_740_991 else {
            throw location.problem("\(keyword) must be a non-negative integer")
        }
        return Int(number)
    }

    private func number(_ value: JSONValue, at location: SchemaLocation, keyword: String) throws(SchemaProblem) -> Double {
        guard case .number(let number) = value, number.isFinite else {
            throw location.problem("\(keyword) must be a number")
        }
        return number
    }

    /// Checks a literal (an enum, a const, an annotation's value) against the bounds: it may nest as deep as
    /// subschemas may, counted from where it is, and its values count toward the schema's size.
    private mutating func literal(_ value: JSONValue, at location: SchemaLocation, depth: Int) throws(SchemaProblem) {
        guard depth <= JSONSchemaValidator.maximumSchemaDepth else {
            throw location.problem("a value nests deeper than \(JSONSchemaValidator.maximumSchemaDepth) levels")
        }
        try count(1, at: location)
        switch value {
        case .array(let items):
            for item in items { try literal(item, at: location, depth: depth + 1) }
        case .object(let fields):
            for item in fields.values { try literal(item, at: location, depth: depth + 1) }
        default: break
        }
    }

    private mutating func count(_ values: Int, at location: SchemaLocation) throws(SchemaProblem) {
        valueCount += values
        guard valueCount <= JSONSchemaValidator.maximumSchemaValues else {
            throw location.problem("the schema holds more than \(JSONSchemaValidator.maximumSchemaValues) values")
        }
    }
}
