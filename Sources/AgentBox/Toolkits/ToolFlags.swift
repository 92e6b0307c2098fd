import AgentBoxAPI

/// How a flag's text becomes a JSON value, decided from the property's schema.
indirect enum ToolFlagKind: Equatable, Sendable {
    case string
    case integer
    case number
    /// Written bare (`--verbose`), `--verbose=false`, or `--no-verbose`.
    case boolean
    /// An array: the flag is repeated, each value converted as `element`.
    case list(element: ToolFlagKind)
    /// Anything else (an object, several types, no type): the text is parsed as JSON; when that fails and the schema
    /// may be a string, the text is taken as the string.
    case json(label: String, textIsString: Bool)

    /// Reads `schema`'s `type` (and, without one, its enum or const) to decide.
    init(schema: JSONValue, nested: Bool = false) {
        let declared = Self.typeNames(of: schema)
        let named = declared.filter { $0 != "null" }
        switch named.count == 1 ? named.first : nil {
        case "string"?: self = .string
        case "integer"?: self = .integer
        case "number"?: self = .number
        case "boolean"?: self = .boolean
        case "array"? where !nested:
            let items = schema["items"] ?? .object([:])
            self = .list(element: ToolFlagKind(schema: items, nested: true))
        case "array"?: self = .json(label: "JSON array", textIsString: false)
        case "object"?: self = .json(label: "JSON object", textIsString: false)
        default:
            if declared.isEmpty, let literals = Self.literals(of: schema), !literals.isEmpty {
                if literals.allSatisfy({ $0.stringValue != nil }) {
                    self = .string
                    return
                }
                if literals.allSatisfy({ if case .bool = $0 { true } else { false } }) {
                    self = .boolean
                    return
                }
            }
            let label = named.isEmpty ? "JSON or text" : named.joined(separator: "|")
            self = .json(label: label, textIsString: named.isEmpty || named.contains("string"))
        }
    }

    /// The `type` names of a schema (`[]` when there is no `type`).
    static func typeNames(of schema: JSONValue) -> [String] {
        switch schema["type"] {
        case .string(let name): [name]
        case .array(let names): names.compactMap(\.stringValue)
        default: []
        }
    }

    /// The values of a schema's `enum`, or its `const` alone.
    static func literals(of schema: JSONValue) -> [JSONValue]? {
        if case .array(let values) = schema["enum"] { return values }
        if let constant = schema["const"] { return [constant] }
        return nil
    }

    /// How help shows the value: `string`, `integer`, `JSON object`.
    var label: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .number: "number"
        case .boolean: "true|false"
        case .list(let element): element.label
        case .json(let label, _): label
        }
    }
}

/// A flag of a tool's command: one top-level property of its input schema.
struct ToolFlag: Sendable {
    /// The property's name, as the input has it.
    let property: String
    /// The name help shows: the kebab-case form of the property's (`--max-results` for `maxResults`), or the
    /// property's own when that form is ambiguous.
    var spelling: String
    let schema: JSONValue
    let kind: ToolFlagKind
    let isRequired: Bool
    /// `null` is among the schema's types: the text `null` gives null (except for strings).
    let acceptsNull: Bool
}

/// A tool's flags, and the lookup of a written flag name.
struct ToolFlagSet: Sendable {
    /// Flags that are the command's own, never a property's (a property with such a name is set through `--json`).
    static let reserved: Set<String> = ["json", "help"]

    /// Required flags first (in the schema's order), then the rest by kebab-case name.
    private(set) var flags: [ToolFlag] = []
    /// Properties that no flag can set because their name is reserved.
    private(set) var unreachable: [String] = []
    private var byExactName: [String: Int] = [:]
    private var byNormalName: [String: [Int]] = [:]

    init(schema: JSONValue) {
        let required: [String]
        if case .array(let names) = schema["required"] {
            required = names.compactMap(\.stringValue)
        } else {
            required = []
        }
        guard case .object(let properties) = schema["properties"] else { return }
        let requiredSet = Set(required)
        let optional = properties.keys.filter { !requiredSet.contains($0) }
            .map { (spelling: FlagSpelling.normalized($0), name: $0) }
            .sorted { ($0.spelling, $0.name) < ($1.spelling, $1.name) }
            .map(\.name)
        let order = required.filter { properties[$0] != nil } + optional
        var seen: Set<String> = []
        for name in order where seen.insert(name).inserted {
            guard let property = properties[name] else { continue }
            if Self.reserved.contains(FlagSpelling.normalized(name)) {
                unreachable.append(name)
                continue
            }
            let kind = ToolFlagKind(schema: property)
            let acceptsNull = ToolFlagKind.typeNames(of: property).contains("null")
            flags.append(ToolFlag(property: name, spelling: FlagSpelling.normalized(name), schema: property, kind: kind,
                                  isRequired: requiredSet.contains(name), acceptsNull: acceptsNull))
        }
        for (index, flag) in flags.enumerated() {
            byExactName[flag.property] = index
            byNormalName[flag.spelling, default: []].append(index)
        }
        // Two properties with one kebab-case form (`max_results` and `maxResults`): each is shown as written.
        for indices in byNormalName.values where indices.count > 1 {
            for index in indices { flags[index].spelling = flags[index].property }
        }
    }

    enum Lookup {
        case found(ToolFlag)
        case ambiguous([ToolFlag])
        case unknown
    }

    /// The flag named `written`: the property of that exact name, else the one whose kebab-case form is the
    /// same as `written`'s (so `--max-results`, `--max_results` and `--maxResults` all find `maxResults`).
    func lookup(_ written: String) -> Lookup {
        if let index = byExactName[written] { return .found(flags[index]) }
        guard let indices = byNormalName[FlagSpelling.normalized(written)] else { return .unknown }
        return indices.count == 1 ? .found(flags[indices[0]]) : .ambiguous(indices.map { flags[$0] })
    }
}

/// How names are spelt on the command line.
enum FlagSpelling {
    /// The kebab-case form of a name: `maxResults`, `max_results` and `MaxResults` are all `max-results`;
    /// `URLPath` is `url-path`, `userID` is `user-id`.
    static func normalized(_ name: String) -> String {
        let scalars = Array(name.unicodeScalars)
        var out = String.UnicodeScalarView()
        func hyphen() {
            if let last = out.last, last != "-" { out.append("-") }
        }
        for (index, scalar) in scalars.enumerated() {
            if scalar == "_" || scalar == "-" || scalar == " " {
                hyphen()
                continue
            }
            if scalar.properties.isUppercase {
                let previous = index > 0 ? scalars[index - 1] : nil
                let next = index + 1 < scalars.count ? scalars[index + 1] : nil
                // A word starts here after a lower-case letter or a digit, or as the last capital of an acronym.
                if let previous,
                   previous.properties.isLowercase || previous.properties.numericType != nil
                    || (previous.properties.isUppercase && next?.properties.isLowercase == true)
                {
                    hyphen()
                }
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        while out.last == "-" { out.removeLast() }
        return String(out)
    }

    /// The closest of `candidates` to `written` (kebab-case forms compared), if one is close enough to be a typo.
    static func suggestion(for written: String, among candidates: [String]) -> String? {
        let target = Array(normalized(written).unicodeScalars)
        guard !target.isEmpty, target.count <= 64 else { return nil }
        let allowed = target.count <= 3 ? 1 : target.count <= 6 ? 2 : 3
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let other = Array(normalized(candidate).unicodeScalars)
            guard other.count <= 64, abs(other.count - target.count) <= allowed else { continue }
            let distance = editDistance(target, other)
            if distance <= allowed, distance < (best?.distance ?? .max) { best = (candidate, distance) }
        }
        return best?.name
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1.
    static func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var before = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], before[j - 2] + 1)
                }
            }
            (before, previous, current) = (previous, current, before)
        }
        return previous[b.count]
    }
}
