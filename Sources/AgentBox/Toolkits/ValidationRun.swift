import AgentBoxAPI

/// One validation of an instance: the violations found so far, where in the instance it is, and the work left.
///
/// It descends into the instance only where a subschema does (`properties`, `additionalProperties`, `items`), so its
/// recursion is as deep as the schema, whatever the instance's depth.
struct ValidationRun {
    private(set) var violations: [SchemaViolation] = []
    /// Violations to collect before stopping.
    private var limit: Int
    /// In silent mode: a violation was found (and not recorded).
    private var failedSilently = false
    private var steps = 0
    private var patternTicks = SchemaPattern.maximumTicks
    /// The step budget ran out: the result is incomplete.
    private(set) var exhausted = false
    /// Where the value being checked is in the instance.
    private var path: [PathToken] = []
    private var mode = Mode.detailed

    /// How much a violation's message matters.
    private enum Mode: Equatable {
        /// It is reported: a failed `anyOf`/`oneOf` says why each of its first alternatives failed.
        case detailed
        /// It explains an alternative's failure: it is made, but says no more than that for a nested `anyOf`/`oneOf`.
        case brief
        /// Only whether there is a violation matters (an alternative being tried): no message is made.
        case silent
    }

    /// A member name or an item's index, escaped for a JSON pointer only when a violation is recorded.
    private enum PathToken {
        case name(String)
        case index(Int)

        var pointerToken: String {
            switch self {
            case .name(let name): JSONFacts.pointerToken(name)
            case .index(let index): String(index)
            }
        }
    }

    /// A run that collects up to `limit` violations, or, `silent`, only finds whether there is one.
    init(limit: Int, silent: Bool = false) {
        self.limit = limit
        mode = silent ? .silent : .detailed
    }

    /// Whether the value broke the schema (so far).
    var foundViolation: Bool { failedSilently || !violations.isEmpty }

    private var isDone: Bool { exhausted || failedSilently || violations.count >= limit }

    mutating func check(_ value: JSONValue, against node: SchemaNode) {
        guard !isDone, spend(1) else { return }
        switch node {
        case .anything: return
        case .nothing: record("no value is allowed here")
        case .rules(let box): check(value, against: box.rules)
        }
    }

    private mutating func check(_ value: JSONValue, against rules: SchemaRules) {
        if let types = rules.types, !types.admits(value) {
            record("expected \(types.phrase), got \(JSONFacts.preview(value))")
        }
        if let values = rules.enumValues, spend(values.count), !values.contains(where: { JSONFacts.equal(value, $0) }) {
            let listed = values.prefix(10).map { JSONFacts.literal($0, limit: 40) }.joined(separator: ", ")
            record("must be one of \(listed)\(values.count > 10 ? ", … (\(values.count) values)" : ""); got \(JSONFacts.preview(value))")
        }
        if let constant = rules.constValue, !JSONFacts.equal(value, constant) {
            record("must be \(JSONFacts.literal(constant)); got \(JSONFacts.preview(value))")
        }

        switch value {
        case .object(let fields): checkObject(fields, against: rules)
        case .array(let items): checkArray(items, against: rules)
        case .string(let text): checkString(text, against: rules)
        case .number(let number): checkNumber(number, against: rules)
        case .bool, .null: break
        }

        if let alternatives = rules.allOf {
            for alternative in alternatives { check(value, against: alternative) }
        }
        if let alternatives = rules.anyOf { checkAnyOf(value, alternatives) }
        if let alternatives = rules.oneOf { checkOneOf(value, alternatives) }
    }

    private mutating func checkObject(_ fields: [String: JSONValue], against rules: SchemaRules) {
        guard spend((rules.required.count + rules.properties.count) / 16) else { return }
        for name in rules.required where fields[name] == nil {
            record("missing required property \(JSONFacts.quoted(name))")
        }
        for (name, schema) in rules.properties {
            guard !isDone else { return }
            guard let member = fields[name] else { continue }
            descend(.name(name)) { $0.check(member, against: schema) }
        }
        guard let additional = rules.additionalProperties, spend(fields.count / 16) else { return }
        // Only the undeclared names are sorted (for a stable order); usually there are few or none.
        let undeclared = fields.keys.filter { !rules.declaredNames.contains($0) }.sorted()
        for name in undeclared {
            guard !isDone, let member = fields[name] else { return }
            if case .nothing = additional {
                let list = Self.allowedList(rules.properties)
                descend(.name(name)) { $0.record("unexpected property (\(list))") }
            } else {
                descend(.name(name)) { $0.check(member, against: additional) }
            }
        }
    }

    private mutating func checkArray(_ items: [JSONValue], against rules: SchemaRules) {
        if let minimum = rules.minItems, items.count < minimum {
            record("must have at least \(Self.plural(minimum, "item")), has \(items.count)")
        }
        if let maximum = rules.maxItems, items.count > maximum {
            record("must have at most \(Self.plural(maximum, "item")), has \(items.count)")
        }
        guard let schema = rules.items else { return }
        for (index, item) in items.enumerated() {
            guard !isDone else { return }
            descend(.index(index)) { $0.check(item, against: schema) }
        }
    }

    private mutating func checkString(_ text: String, against rules: SchemaRules) {
        if rules.minLength != nil || rules.maxLength != nil {
            // Counting stops just past the larger bound, so a huge string costs no more than the schema allows.
            let cap = max(rules.minLength ?? 0, rules.maxLength ?? 0)
            let length = JSONFacts.scalarCount(of: text, cappedAt: cap)
            guard spend(length / 16) else { return }
            if let minimum = rules.minLength, length < minimum {
                record("must be at least \(Self.plural(minimum, "character")) long, has \(length)")
            }
            if let maximum = rules.maxLength, length > maximum {
                record("must be at most \(Self.plural(maximum, "character")) long, has more")
            }
        }
        guard let pattern = rules.pattern else { return }
        let length = JSONFacts.scalarCount(of: text, cappedAt: SchemaPattern.maximumSubjectLength)
        guard length <= SchemaPattern.maximumSubjectLength else {
            record("is too long to check against the pattern \(JSONFacts.quoted(pattern.source, limit: 80)) "
                + "(more than \(SchemaPattern.maximumSubjectLength) characters)")
            return
        }
        guard spend(SchemaPattern.stepsPerTest + length / 16) else { return }
        switch pattern.test(text, ticks: &patternTicks) {
        case .match: break
        case .noMatch: record("does not match the pattern \(JSONFacts.quoted(pattern.source, limit: 80))")
        case .tooCostly:
            record("could not be checked against the pattern \(JSONFacts.quoted(pattern.source, limit: 80)): matching takes too long")
        }
    }

    private mutating func checkNumber(_ number: Double, against rules: SchemaRules) {
        func text(_ value: Double) -> String { JSONValue.number(value).jsonText }
        if let bound = rules.minimum, number < bound {
            record("must be at least \(text(bound)), got \(text(number))")
        }
        if let bound = rules.exclusiveMinimum, number <= bound {
            record("must be greater than \(text(bound)), got \(text(number))")
        }
        if let bound = rules.maximum, number > bound {
            record("must be at most \(text(bound)), got \(text(number))")
        }
        if let bound = rules.exclusiveMaximum, number >= bound {
            record("must be less than \(text(bound)), got \(text(number))")
        }
    }

    private mutating func checkAnyOf(_ value: JSONValue, _ alternatives: [SchemaNode]) {
        for alternative in alternatives {
            let matched = matches(value, alternative)
            if exhausted || matched { return }
        }
        let why = reasons(value, alternatives)
        record("matches none of the \(alternatives.count) anyOf alternatives\(why)")
    }

    private mutating func checkOneOf(_ value: JSONValue, _ alternatives: [SchemaNode]) {
        var matching: [Int] = []
        for (index, alternative) in alternatives.enumerated() {
            let matched = matches(value, alternative)
            if exhausted { return }
            if matched {
                matching.append(index)
                if matching.count == 2 { break }
            }
        }
        switch matching.count {
        case 0:
            let why = reasons(value, alternatives)
            record("matches none of the \(alternatives.count) oneOf alternatives\(why)")
        case 1: break
        default:
            record("matches more than one of the oneOf alternatives (#\(matching[0] + 1) and #\(matching[1] + 1)); it must match exactly one")
        }
    }

    /// Why the first alternatives fail, ` (#1: …; #2: …)`, when the violation will be reported in detail. Made by
    /// checking them again, briefly, only for a violation that is reported (at most ``maximumViolations`` of them).
    private mutating func reasons(_ value: JSONValue, _ alternatives: [SchemaNode]) -> String {
        guard mode == .detailed, !isDone else { return "" }
        var reasons: [SchemaViolation] = []
        for alternative in alternatives.prefix(3) {
            guard let reason = firstViolation(value, alternative), !exhausted else { return "" }
            reasons.append(reason)
        }
        return " (" + Self.summary(of: reasons, total: alternatives.count) + ")"
    }

    /// Whether `value` matches `node`, found without making messages or touching this run's violations.
    /// The step budget is shared.
    private mutating func matches(_ value: JSONValue, _ node: SchemaNode) -> Bool {
        let saved = (mode, failedSilently)
        (mode, failedSilently) = (.silent, false)
        check(value, against: node)
        let failed = failedSilently
        (mode, failedSilently) = saved
        return !failed
    }

    /// The first violation of `node` by `value`, made in brief, apart from this run's violations; `nil` if none.
    /// The step budget and the path are shared.
    private mutating func firstViolation(_ value: JSONValue, _ node: SchemaNode) -> SchemaViolation? {
        let saved = (violations, limit, mode)
        (violations, limit, mode) = ([], 1, .brief)
        check(value, against: node)
        let first = violations.first
        (violations, limit, mode) = saved
        return first
    }

    /// `#1: /name: expected string, got integer 3; #2: …`, the first few alternatives' first violations.
    private static func summary(of reasons: [SchemaViolation], total: Int) -> String {
        var parts = reasons.enumerated().map { "#\($0.offset + 1): \(JSONFacts.shortened($0.element.description, to: 120))" }
        if total > reasons.count { parts.append("…") }
        return parts.joined(separator: "; ")
    }

    /// `allowed: "a", "b"` or `no properties are allowed`.
    private static func allowedList(_ properties: [(name: String, schema: SchemaNode)]) -> String {
        guard !properties.isEmpty else { return "no properties are allowed" }
        let names = properties.prefix(20).map { JSONFacts.quoted($0.name) }.joined(separator: ", ")
        return "allowed: \(names)\(properties.count > 20 ? ", …" : "")"
    }

    private static func plural(_ count: Int, _ noun: String) -> String {
        count == 1 ? "1 \(noun)" : "\(count) \(noun)s"
    }

    private mutating func descend(_ token: PathToken, _ body: (inout ValidationRun) -> Void) {
        path.append(token)
        body(&self)
        path.removeLast()
    }

    /// Adds a violation at the current path; the message is made only when someone will read it.
    private mutating func record(_ message: @autoclosure () -> String) {
        guard !isDone else { return }
        guard mode != .silent else {
            failedSilently = true
            return
        }
        let pointer = path.map { "/" + $0.pointerToken }.joined()
        violations.append(SchemaViolation(path: pointer, message: message()))
    }

    /// Takes `count` steps from the budget; `false` (and the run is over) when it has run out.
    private mutating func spend(_ count: Int) -> Bool {
        steps += count
        if steps > JSONSchemaValidator.maximumSteps { exhausted = true }
        return !exhausted
    }
}
