import Foundation
import Testing

import AgentBoxAPI
@testable import AgentBox

/// Parses JSON text written in a test.
func parseJSON(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

/// The violations of `instance` (JSON text) against `schema` (JSON text), as `path: message` lines.
func schemaViolations(_ schema: String, _ instance: String) throws -> [SchemaViolation] {
    try JSONSchemaValidator(schema: parseJSON(schema)).violations(of: parseJSON(instance))
}

/// `depth` arrays nested in one another, built without recursion.
func deeplyNestedArray(_ depth: Int) -> JSONValue {
    var value: JSONValue = .array([])
    for _ in 0..<depth { value = .array([value]) }
    return value
}

/// Frees a deeply nested value one level at a time (releasing it whole would recurse once per level).
func dismantleNested(_ value: consuming JSONValue) {
    var current = value
    while true {
        switch current {
        case .array(let items) where !items.isEmpty: current = items[0]
        case .object(let fields) where !fields.isEmpty: current = fields.values.first ?? .null
        default: return
        }
    }
}

@Suite struct SchemaTypeKeyword {
    @Test(arguments: [
        ("\"integer\"", "3", true), ("\"integer\"", "3.0", true), ("\"integer\"", "-7", true), ("\"integer\"", "1e20", true),
        ("\"integer\"", "3.5", false), ("\"integer\"", "\"3\"", false), ("\"integer\"", "null", false),
        ("\"number\"", "3", true), ("\"number\"", "3.5", true), ("\"number\"", "-0.001", true),
        ("\"number\"", "\"3.5\"", false), ("\"number\"", "true", false),
        ("\"string\"", "\"\"", true), ("\"string\"", "\"x\"", true), ("\"string\"", "1", false), ("\"string\"", "null", false),
        ("\"boolean\"", "true", true), ("\"boolean\"", "false", true), ("\"boolean\"", "0", false), ("\"boolean\"", "\"true\"", false),
        ("\"null\"", "null", true), ("\"null\"", "0", false), ("\"null\"", "\"\"", false),
        ("\"object\"", "{}", true), ("\"object\"", "{\"a\":1}", true), ("\"object\"", "[]", false), ("\"object\"", "null", false),
        ("\"array\"", "[]", true), ("\"array\"", "[1,\"a\"]", true), ("\"array\"", "{}", false), ("\"array\"", "\"[]\"", false),
        ("[\"string\",\"null\"]", "null", true), ("[\"string\",\"null\"]", "\"a\"", true), ("[\"string\",\"null\"]", "1", false),
        ("[\"integer\",\"boolean\"]", "2", true), ("[\"integer\",\"boolean\"]", "false", true), ("[\"integer\",\"boolean\"]", "2.5", false),
        ("[\"number\",\"integer\"]", "2.5", true),
    ])
    func typeKeyword(schemaType: String, instance: String, valid: Bool) throws {
        let found = try schemaViolations("{\"type\": \(schemaType)}", instance)
        #expect(found.isEmpty == valid, "\(schemaType) vs \(instance): \(found)")
    }

    @Test func messagesNameTheExpectedAndTheActual() throws {
        #expect(try schemaViolations(#"{"type":"integer"}"#, "2.5").map(\.message) == ["expected integer, got number 2.5"])
        #expect(try schemaViolations(#"{"type":"integer"}"#, #""ten""#).map(\.message) == [#"expected integer, got string "ten""#])
        #expect(try schemaViolations(#"{"type":["string","null"]}"#, "[1,2]").map(\.message) == ["expected string or null, got array of 2 items"])
        #expect(try schemaViolations(#"{"type":["object","array","null"]}"#, "true").map(\.message) == ["expected object, array or null, got boolean true"])
        #expect(try schemaViolations(#"{"type":"string"}"#, "{\"a\":1}").map(\.message) == ["expected string, got object with 1 property"])
    }
}

@Suite struct SchemaObjectKeywords {
    let nested = """
        {"type":"object","properties":{
          "user":{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0}},"required":["name"]},
          "count":{"type":"integer"}
        },"required":["user"]}
        """

    @Test func validNestedObject() throws {
        #expect(try schemaViolations(nested, #"{"user":{"name":"Ada","age":36},"count":2,"other":true}"#).isEmpty)
    }

    @Test func nestedViolationsHaveTheirPaths() throws {
        let found = try schemaViolations(nested, #"{"user":{"name":5,"age":-1},"count":"x"}"#)
        #expect(found == [
            SchemaViolation(path: "/count", message: #"expected integer, got string "x""#),
            SchemaViolation(path: "/user/age", message: "must be at least 0, got -1"),
            SchemaViolation(path: "/user/name", message: "expected string, got integer 5"),
        ])
    }

    @Test func requiredIsReportedAtTheObject() throws {
        #expect(try schemaViolations(nested, "{}") == [SchemaViolation(path: "", message: #"missing required property "user""#)])
        #expect(try schemaViolations(nested, #"{"user":{}}"#) == [SchemaViolation(path: "/user", message: #"missing required property "name""#)])
    }

    @Test func requiredOnlyAppliesToObjects() throws {
        #expect(try schemaViolations(#"{"required":["a"]}"#, "[1]").isEmpty)
        #expect(try schemaViolations(#"{"required":["a","b"]}"#, #"{"b":null}"#).map(\.message) == [#"missing required property "a""#])
    }

    @Test func propertiesOnlyApplyWhenPresent() throws {
        #expect(try schemaViolations(#"{"properties":{"a":{"type":"string"}}}"#, "{}").isEmpty)
        #expect(try schemaViolations(#"{"properties":{"a":{"type":"string"}}}"#, "5").isEmpty)
    }

    @Test func additionalPropertiesFalse() throws {
        let schema = #"{"type":"object","properties":{"a":{},"b":{}},"additionalProperties":false}"#
        #expect(try schemaViolations(schema, #"{"a":1,"b":2}"#).isEmpty)
        #expect(try schemaViolations(schema, #"{"a":1,"zed":2,"extra":3}"#) == [
            SchemaViolation(path: "/extra", message: #"unexpected property (allowed: "a", "b")"#),
            SchemaViolation(path: "/zed", message: #"unexpected property (allowed: "a", "b")"#),
        ])
        #expect(try schemaViolations(#"{"additionalProperties":false}"#, #"{"x":1}"#).map(\.message) == ["unexpected property (no properties are allowed)"])
    }

    @Test func additionalPropertiesSchema() throws {
        let schema = #"{"properties":{"name":{"type":"string"}},"additionalProperties":{"type":"integer"}}"#
        #expect(try schemaViolations(schema, #"{"name":"x","a":1,"b":2}"#).isEmpty)
        #expect(try schemaViolations(schema, #"{"name":"x","a":"1"}"#) == [SchemaViolation(path: "/a", message: #"expected integer, got string "1""#)])
        #expect(try schemaViolations(#"{"additionalProperties":true}"#, #"{"a":1}"#).isEmpty)
    }

    @Test func falsePropertyForbidsIt() throws {
        #expect(try schemaViolations(#"{"properties":{"secret":false}}"#, #"{"secret":1}"#) == [SchemaViolation(path: "/secret", message: "no value is allowed here")])
        #expect(try schemaViolations(#"{"properties":{"secret":false}}"#, #"{"other":1}"#).isEmpty)
    }

    @Test func pathTokensAreEscaped() throws {
        let schema = #"{"properties":{"a/b":{"type":"string"},"m~n":{"type":"string"},"":{"type":"string"}}}"#
        let found = try schemaViolations(schema, #"{"a/b":1,"m~n":2,"":3}"#)
        #expect(found.map(\.path) == ["/", "/a~1b", "/m~0n"])
    }
}

@Suite struct SchemaArrayKeywords {
    @Test func itemsPathsIncludeTheIndex() throws {
        let schema = #"{"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}}}"#
        let found = try schemaViolations(schema, #"{"items":[{"name":"a"},{"name":"b"},{"name":3},{}]}"#)
        #expect(found == [
            SchemaViolation(path: "/items/2/name", message: "expected string, got integer 3"),
            SchemaViolation(path: "/items/3", message: #"missing required property "name""#),
        ])
        #expect(found[0].description == "/items/2/name: expected string, got integer 3")
    }

    @Test func nestedArrays() throws {
        let schema = #"{"type":"array","items":{"type":"array","items":{"type":"integer"},"maxItems":2}}"#
        #expect(try schemaViolations(schema, "[[1,2],[],[3]]").isEmpty)
        #expect(try schemaViolations(schema, "[[1,2],[1,2,3],[1.5]]") == [
            SchemaViolation(path: "/1", message: "must have at most 2 items, has 3"),
            SchemaViolation(path: "/2/0", message: "expected integer, got number 1.5"),
        ])
    }

    @Test(arguments: [("[]", false), ("[1]", true), ("[1,2]", true), ("[1,2,3]", true), ("[1,2,3,4]", false)])
    func itemCounts(instance: String, valid: Bool) throws {
        #expect(try schemaViolations(#"{"minItems":1,"maxItems":3}"#, instance).isEmpty == valid)
    }

    @Test func countMessages() throws {
        #expect(try schemaViolations(#"{"minItems":2}"#, "[1]").map(\.message) == ["must have at least 2 items, has 1"])
        #expect(try schemaViolations(#"{"maxItems":1}"#, "[1,2]").map(\.message) == ["must have at most 1 item, has 2"])
        #expect(try schemaViolations(#"{"minItems":2}"#, #""ab""#).isEmpty)
    }

    @Test func itemsFalseAllowsOnlyEmptyArrays() throws {
        #expect(try schemaViolations(#"{"items":false}"#, "[]").isEmpty)
        #expect(try schemaViolations(#"{"items":false}"#, "[1]") == [SchemaViolation(path: "/0", message: "no value is allowed here")])
    }
}

@Suite struct SchemaValueKeywords {
    @Test(arguments: [
        ("1", true), ("1.0", true), ("\"a\"", true), ("null", true), ("{\"b\":2,\"a\":1}", true), ("[1,\"x\"]", true),
        ("2", false), ("\"A\"", false), ("false", false), ("{\"a\":1}", false), ("[\"x\",1]", false), ("[1,\"x\",3]", false),
    ])
    func enumUsesJSONEquality(instance: String, valid: Bool) throws {
        let schema = #"{"enum":[1,"a",null,{"a":1,"b":2},[1,"x"]]}"#
        #expect(try schemaViolations(schema, instance).isEmpty == valid)
    }

    @Test func enumMessageListsTheValues() throws {
        #expect(try schemaViolations(#"{"enum":["fast","deep"]}"#, #""slow""#).map(\.message) == [#"must be one of "fast", "deep"; got string "slow""#])
    }

    @Test func constIncludingNull() throws {
        #expect(try schemaViolations(#"{"const":null}"#, "null").isEmpty)
        #expect(try schemaViolations(#"{"const":null}"#, "0").map(\.message) == ["must be null; got integer 0"])
        #expect(try schemaViolations(#"{"const":{"k":[1,2]}}"#, #"{"k":[1,2.0]}"#).isEmpty)
        #expect(try schemaViolations(#"{"const":{"k":[1,2]}}"#, #"{"k":[2,1]}"#).count == 1)
        #expect(try schemaViolations(#"{"const":"v"}"#, #""v""#).isEmpty)
    }

    @Test(arguments: [
        ("{\"minimum\":3}", "3", true), ("{\"minimum\":3}", "2.999", false), ("{\"minimum\":3}", "\"1\"", true),
        ("{\"maximum\":3}", "3", true), ("{\"maximum\":3}", "3.001", false),
        ("{\"exclusiveMinimum\":3}", "3", false), ("{\"exclusiveMinimum\":3}", "3.001", true),
        ("{\"exclusiveMaximum\":3}", "3", false), ("{\"exclusiveMaximum\":3}", "2.999", true),
        ("{\"minimum\":-1.5,\"maximum\":1.5}", "-1.5", true), ("{\"minimum\":-1.5,\"maximum\":1.5}", "1.6", false),
    ])
    func numericBounds(schema: String, instance: String, valid: Bool) throws {
        #expect(try schemaViolations(schema, instance).isEmpty == valid)
    }

    @Test func numericMessages() throws {
        #expect(try schemaViolations(#"{"minimum":1}"#, "0").map(\.message) == ["must be at least 1, got 0"])
        #expect(try schemaViolations(#"{"maximum":10}"#, "10.5").map(\.message) == ["must be at most 10, got 10.5"])
        #expect(try schemaViolations(#"{"exclusiveMinimum":0}"#, "0").map(\.message) == ["must be greater than 0, got 0"])
        #expect(try schemaViolations(#"{"exclusiveMaximum":1.5}"#, "2").map(\.message) == ["must be less than 1.5, got 2"])
    }

    @Test func typeAndBoundsAreIndependent() throws {
        #expect(try schemaViolations(#"{"type":"integer","minimum":3}"#, "2.5").map(\.message) == [
            "expected integer, got number 2.5", "must be at least 3, got 2.5",
        ])
    }
}

@Suite struct SchemaStringKeywords {
    @Test(arguments: [
        ("\"ab\"", true), ("\"a\"", false), ("\"abcd\"", true), ("\"abcde\"", false),
        // Unicode scalars: é precomposed is one, e + combining acute is two, 👍 is one, a flag is two.
        ("\"\u{E9}\u{E9}\"", true), ("\"e\u{301}\"", true), ("\"👍\"", false), ("\"🇫🇷\"", true), ("\"🇫🇷🇫🇷🇫🇷\"", false),
        ("5", true),
    ])
    func lengthInUnicodeScalars(instance: String, valid: Bool) throws {
        #expect(try schemaViolations(#"{"minLength":2,"maxLength":4}"#, instance).isEmpty == valid)
    }

    @Test func lengthMessages() throws {
        #expect(try schemaViolations(#"{"minLength":3}"#, #""ab""#).map(\.message) == ["must be at least 3 characters long, has 2"])
        #expect(try schemaViolations(#"{"maxLength":1}"#, #""ab""#).map(\.message) == ["must be at most 1 character long, has more"])
        let long = String(repeating: "x", count: 1_000_000)
        #expect(try JSONSchemaValidator(schema: parseJSON(#"{"maxLength":5}"#)).violations(of: .string(long)).count == 1)
    }

    @Test(arguments: [
        ("^[a-z]+$", "abc", true), ("^[a-z]+$", "abC", false), ("^[a-z]+$", "", false),
        ("b", "abc", true), ("^b", "abc", false),  // unanchored search, as JSON Schema says
        ("^\\d{3}-\\d{4}$", "555-1234", true), ("^\\d{3}-\\d{4}$", "555-12345", false),
        ("^(foo|bar)$", "bar", true), ("^(foo|bar)$", "foobar", false),
        ("^https?://", "https://example.com", true), ("^https?://", "ftp://x", false),
        ("^\\w+@\\w+\\.\\w+$", "a@b.io", true), ("é", "café", true),
    ])
    func pattern(pattern: String, text: String, valid: Bool) throws {
        let schema = JSONValue.object(["pattern": .string(pattern)])
        let found = try JSONSchemaValidator(schema: schema).violations(of: .string(text))
        #expect(found.isEmpty == valid, "\(pattern) vs \(text)")
    }

    @Test func patternMessageAndNonStrings() throws {
        #expect(try schemaViolations(#"{"pattern":"^a"}"#, #""b""#).map(\.message) == [#"does not match the pattern "^a""#])
        #expect(try schemaViolations(#"{"pattern":"^a"}"#, "12").isEmpty)
    }

    @Test func invalidAndOverlongPatternsAreRefused() throws {
        #expect(throws: SchemaProblem.self) { try JSONSchemaValidator(schema: parseJSON(#"{"pattern":"(unclosed"}"#)) }
        #expect(throws: SchemaProblem.self) { try JSONSchemaValidator(schema: parseJSON(#"{"pattern":"[z-a]"}"#)) }
        let long = JSONValue.object(["pattern": .string(String(repeating: "a", count: SchemaPattern.maximumLength + 1))])
        #expect(throws: SchemaProblem(detail: "at /pattern: pattern is longer than 1000 characters")) { try JSONSchemaValidator(schema: long) }
        let longest = JSONValue.object(["pattern": .string(String(repeating: "a", count: SchemaPattern.maximumLength))])
        #expect(throws: Never.self) { try JSONSchemaValidator(schema: longest) }
    }

    @Test func overlongStringsAreNotTested() throws {
        let validator = try JSONSchemaValidator(schema: parseJSON(#"{"pattern":"x"}"#))
        #expect(validator.violations(of: .string(String(repeating: "x", count: SchemaPattern.maximumSubjectLength))).isEmpty)
        let found = validator.violations(of: .string(String(repeating: "x", count: SchemaPattern.maximumSubjectLength + 1)))
        #expect(found.map(\.message) == [#"is too long to check against the pattern "x" (more than 10000 characters)"#])
    }

    @Test(.timeLimit(.minutes(1)))
    func catastrophicBacktrackingIsCutShort() throws {
        let validator = try JSONSchemaValidator(schema: parseJSON(#"{"type":"array","items":{"pattern":"^(a+)+$"}}"#))
        let evil = JSONValue.string(String(repeating: "a", count: 40) + "b")
        let clock = ContinuousClock()
        let start = clock.now
        let found = validator.violations(of: .array(Array(repeating: evil, count: 30)))
        #expect(clock.now - start < .seconds(5))
        #expect(found.count == 20)
        #expect(found.allSatisfy { $0.message.hasSuffix("matching takes too long") })
        // An ordinary value still matches.
        #expect(validator.violations(of: [.string("aaaa")]).isEmpty)
    }
}

@Suite struct SchemaCombinators {
    @Test(arguments: [("\"x\"", true), ("3", true), ("null", false), ("3.5", false)])
    func anyOf(instance: String, valid: Bool) throws {
        #expect(try schemaViolations(#"{"anyOf":[{"type":"string"},{"type":"integer"}]}"#, instance).isEmpty == valid)
    }

    @Test func anyOfMessageSummarisesEachAlternative() throws {
        let found = try schemaViolations(#"{"properties":{"v":{"anyOf":[{"type":"string"},{"type":"integer","minimum":10}]}}}"#, #"{"v":5}"#)
        #expect(found == [SchemaViolation(
            path: "/v",
            message: "matches none of the 2 anyOf alternatives (#1: /v: expected string, got integer 5; #2: /v: must be at least 10, got 5)")])
    }

    @Test(arguments: [("3", false), ("3.0", false), ("3.5", true), ("\"3\"", false)])
    func oneOfNeedsExactlyOne(instance: String, valid: Bool) throws {
        // An integer is also a number, so integers match both alternatives.
        #expect(try schemaViolations(#"{"oneOf":[{"type":"integer"},{"type":"number"}]}"#, instance).isEmpty == valid)
    }

    @Test func oneOfMessages() throws {
        let schema = #"{"oneOf":[{"type":"integer"},{"type":"number"},{"type":"string"}]}"#
        #expect(try schemaViolations(schema, "1").map(\.message) == ["matches more than one of the oneOf alternatives (#1 and #2); it must match exactly one"])
        #expect(try schemaViolations(schema, "null").map(\.message) == [
            "matches none of the 3 oneOf alternatives (#1: expected integer, got null; #2: expected number, got null; #3: expected string, got null)"
        ])
    }

    @Test func oneOfDiscriminatesObjects() throws {
        let schema = """
            {"oneOf":[
              {"type":"object","properties":{"kind":{"const":"url"},"url":{"type":"string"}},"required":["kind","url"],"additionalProperties":false},
              {"type":"object","properties":{"kind":{"const":"text"},"text":{"type":"string"}},"required":["kind","text"],"additionalProperties":false}
            ]}
            """
        #expect(try schemaViolations(schema, #"{"kind":"url","url":"x"}"#).isEmpty)
        #expect(try schemaViolations(schema, #"{"kind":"text","text":"x"}"#).isEmpty)
        #expect(try schemaViolations(schema, #"{"kind":"url","text":"x"}"#).count == 1)
    }

    @Test func allOfReportsEveryBranch() throws {
        let schema = #"{"allOf":[{"type":"string"},{"minLength":3},{"pattern":"^a"}]}"#
        #expect(try schemaViolations(schema, #""abc""#).isEmpty)
        #expect(try schemaViolations(schema, #""b""#).map(\.message) == ["must be at least 3 characters long, has 1", #"does not match the pattern "^a""#])
    }

    @Test func combinatorsNest() throws {
        let schema = #"{"type":"array","items":{"anyOf":[{"type":"null"},{"allOf":[{"type":"integer"},{"oneOf":[{"minimum":10},{"maximum":0}]}]}]}}"#
        #expect(try schemaViolations(schema, "[null, 10, -3, 0]").isEmpty)
        #expect(try schemaViolations(schema, "[5]").map(\.path) == ["/0"])
    }
}

@Suite struct SchemaBooleansAndAnnotations {
    @Test func trueAndEmptyAcceptAnything() throws {
        for instance in ["1", "null", "{\"a\":[1]}", "\"x\""] {
            #expect(try schemaViolations("true", instance).isEmpty)
            #expect(try schemaViolations("{}", instance).isEmpty)
            #expect(try schemaViolations("false", instance) == [SchemaViolation(path: "", message: "no value is allowed here")])
        }
    }

    @Test func annotationsAreAcceptedAndFormatIsNotEnforced() throws {
        let schema = """
            {"$schema":"https://json-schema.org/draft/2020-12/schema","title":"T","description":"D","$comment":"c",
             "type":"object","default":{},"examples":[{"email":"a@b.c"}],"deprecated":false,"readOnly":false,"writeOnly":false,
             "properties":{"email":{"type":"string","format":"email","description":"an address","default":"x","examples":["a@b.c"]}}}
            """
        #expect(try schemaViolations(schema, #"{"email":"not an email"}"#).isEmpty)
    }
}

@Suite struct SchemaProblems {
    @Test(arguments: ["$ref", "$defs", "not", "multipleOf", "uniqueItems", "patternProperties", "if", "then", "prefixItems",
                      "contains", "minProperties", "maxProperties", "propertyNames", "dependentRequired", "unevaluatedProperties",
                      "$id", "requried", "nullable"])
    func unsupportedKeywordsAreRefused(keyword: String) throws {
        let schema = JSONValue.object(["type": "object", keyword: .object([:])])
        #expect {
            try JSONSchemaValidator(schema: schema)
        } throws: { error in
            guard let problem = error as? SchemaProblem else { return false }
            return problem.detail.hasPrefix("at the top level: unsupported keyword \"\(keyword)\"")
        }
    }

    @Test func problemsNameWhereTheyAre() throws {
        #expect(throws: SchemaProblem(detail: #"at /properties/a/items: unsupported keyword "not""#)) {
            try JSONSchemaValidator(schema: parseJSON(#"{"properties":{"a":{"items":{"not":{}}}}}"#))
        }
        #expect(throws: SchemaProblem(detail: #"at /anyOf/1: unsupported keyword "$ref" (references are not supported: write the subschema in place)"#)) {
            try JSONSchemaValidator(schema: parseJSON(##"{"anyOf":[{},{"$ref":"#/x"}]}"##))
        }
        #expect(throws: SchemaProblem(detail: "at /properties/a~1b/type: \"str\" is not a type (the types are object, array, string, integer, number, boolean, null)")) {
            try JSONSchemaValidator(schema: parseJSON(#"{"properties":{"a/b":{"type":"str"}}}"#))
        }
    }

    @Test(arguments: [
        (#"{"type":[]}"#, "at /type: type must be a type name or a non-empty array of them"),
        (#"{"type":5}"#, "at /type: type must be a type name or a non-empty array of them"),
        (#"{"type":["string","string"]}"#, "at /type: type lists string twice"),
        (#"{"properties":[]}"#, "at /properties: properties must be an object"),
        (#"{"properties":{"a":5}}"#, "at /properties/a: a schema must be an object or a boolean, not integer"),
        (#"{"required":"a"}"#, "at /required: required must be an array of strings"),
        (#"{"required":[1]}"#, "at /required: required must be an array of strings"),
        (#"{"required":["a","a"]}"#, #"at /required: required lists "a" twice"#),
        (#"{"additionalProperties":"no"}"#, "at /additionalProperties: a schema must be an object or a boolean, not string"),
        (#"{"items":[{}]}"#, "at /items: items must be one schema (tuple validation with an array of schemas is not supported)"),
        (#"{"minItems":-1}"#, "at /minItems: minItems must be a non-negative integer"),
        (#"{"maxItems":1.5}"#, "at /maxItems: maxItems must be a non-negative integer"),
        (#"{"minLength":"1"}"#, "at /minLength: minLength must be a non-negative integer"),
        (#"{"maximum":"3"}"#, "at /maximum: maximum must be a number"),
        (#"{"exclusiveMinimum":true}"#, "at /exclusiveMinimum: exclusiveMinimum must be a number"),
        (#"{"enum":[]}"#, "at /enum: enum must be a non-empty array"),
        (#"{"enum":"a"}"#, "at /enum: enum must be a non-empty array"),
        (#"{"pattern":5}"#, "at /pattern: pattern must be a string"),
        (#"{"anyOf":[]}"#, "at /anyOf: anyOf must be a non-empty array of schemas"),
        (#"{"oneOf":{}}"#, "at /oneOf: oneOf must be a non-empty array of schemas"),
        (#"{"allOf":[5]}"#, "at /allOf/0: a schema must be an object or a boolean, not integer"),
        (#"{"description":5}"#, "at /description: description must be a string"),
        (#"{"format":true}"#, "at /format: format must be a string"),
        (#"{"examples":"x"}"#, "at /examples: examples must be an array"),
        (#"{"deprecated":"yes"}"#, "at /deprecated: deprecated must be a boolean"),
        ("5", "at the top level: a schema must be an object or a boolean, not integer"),
        ("null", "at the top level: a schema must be an object or a boolean, not null"),
    ])
    func badValuesAreRefused(schema: String, detail: String) throws {
        let value = try parseJSON(schema)
        #expect(throws: SchemaProblem(detail: detail)) { try JSONSchemaValidator(schema: value) }
    }

    @Test func problemDescription() {
        #expect(SchemaProblem(detail: "at /x: y").description == "unsupported input schema: at /x: y")
    }

    @Test func toolInputMustBeAnObjectSchema() throws {
        #expect(throws: Never.self) { try JSONSchemaValidator.toolInput(parseJSON(#"{"type":"object","properties":{"q":{"type":"string"}}}"#)) }
        for schema in [#"{"type":"array"}"#, "{}", "true", #"{"type":["object","null"]}"#, #"{"properties":{}}"#] {
            let value = try parseJSON(schema)
            #expect(throws: SchemaProblem.self, "\(schema)") { try JSONSchemaValidator.toolInput(value) }
        }
        // Still the full check beneath.
        #expect(throws: SchemaProblem(detail: #"at the top level: unsupported keyword "$defs" (references are not supported: write the subschema in place)"#)) {
            try JSONSchemaValidator.toolInput(parseJSON(#"{"type":"object","$defs":{}}"#))
        }
    }
}

@Suite struct SchemaBounds {
    /// `{"items": {"items": … {}}}`, `depth` levels.
    func nestedItemsSchema(_ depth: Int) -> JSONValue {
        var schema: JSONValue = .object([:])
        for _ in 0..<depth { schema = .object(["items": schema]) }
        return schema
    }

    @Test func aDeepInstanceCostsNoDeepRecursion() throws {
        let bomb = deeplyNestedArray(10_000)
        let schemas = [
            #"{"type":"object"}"#,
            #"{"type":"array","items":{"type":"array","items":{"type":"array","minItems":1}}}"#,
            #"{"enum":[[[[1]]], 5]}"#,
            #"{"const":[[[[[[]]]]]]}"#,
            #"{"anyOf":[{"items":{"items":{"type":"string"}}},{"type":"null"}]}"#,
            #"{"oneOf":[{"type":"array"},{"items":true}]}"#,
            "true",
        ]
        var counts: [Int] = []
        for schema in schemas {
            counts.append(try JSONSchemaValidator(schema: parseJSON(schema)).violations(of: bomb).count)
        }
        #expect(counts == [1, 0, 1, 1, 1, 1, 0])
        let deepObject = (0..<10_000).reduce(JSONValue.object([:])) { inner, _ in .object(["a": inner]) }
        let validator = try JSONSchemaValidator(schema: parseJSON(#"{"properties":{"a":{"properties":{"a":{"type":"object","additionalProperties":{"type":"object"}}}}}}"#))
        #expect(validator.violations(of: deepObject).isEmpty)
        #expect(try JSONSchemaValidator(schema: parseJSON(#"{"const":{"a":{"a":{}}}}"#)).violations(of: deepObject).count == 1)
        dismantleNested(bomb)
        dismantleNested(deepObject)
    }

    @Test func aDeepSchemaIsRefused() throws {
        let bomb = nestedItemsSchema(10_000)
        #expect(throws: SchemaProblem.self) { try JSONSchemaValidator(schema: bomb) }
        dismantleNested(bomb)
        #expect(throws: Never.self) { try JSONSchemaValidator(schema: nestedItemsSchema(JSONSchemaValidator.maximumSchemaDepth)) }
        let tooDeep = nestedItemsSchema(JSONSchemaValidator.maximumSchemaDepth + 1)
        #expect {
            try JSONSchemaValidator(schema: tooDeep)
        } throws: { error in
            (error as? SchemaProblem)?.detail.hasSuffix("subschemas nest deeper than 32 levels") == true
        }
    }

    @Test func aDeepLiteralIsRefused() throws {
        let bomb = deeplyNestedArray(10_000)
        #expect(throws: SchemaProblem(detail: "at /const: a value nests deeper than 32 levels")) {
            try JSONSchemaValidator(schema: .object(["const": bomb]))
        }
        #expect(throws: SchemaProblem.self) { try JSONSchemaValidator(schema: .object(["default": bomb])) }
        dismantleNested(bomb)
    }

    @Test func aLargeSchemaIsRefused() throws {
        let values = (0..<JSONSchemaValidator.maximumSchemaValues).map { JSONValue.number(Double($0)) }
        #expect(throws: SchemaProblem(detail: "at /enum: the schema holds more than 10000 values")) {
            try JSONSchemaValidator(schema: .object(["enum": .array(values)]))
        }
        #expect(throws: Never.self) { try JSONSchemaValidator(schema: .object(["enum": .array(Array(values.prefix(9_000)))])) }
    }

    @Test func violationsStopAtTwenty() throws {
        let validator = try JSONSchemaValidator(schema: parseJSON(#"{"type":"array","items":{"type":"string"}}"#))
        let found = validator.violations(of: .array((0..<500).map { .number(Double($0)) }))
        #expect(found.count == JSONSchemaValidator.maximumViolations)
        #expect(found.last?.path == "/19")
    }

    @Test func workIsBounded() throws {
        // Each item is checked against 100 alternatives before the last one matches: over the step budget.
        let alternatives = Array(repeating: JSONValue.object(["type": "string"]), count: 99) + [.object(["type": "integer"])]
        let validator = try JSONSchemaValidator(schema: .object(["items": .object(["anyOf": .array(alternatives)])]))
        #expect(validator.violations(of: .array(Array(repeating: .number(1), count: 1_000))).isEmpty)
        let found = validator.violations(of: .array(Array(repeating: .number(1), count: 12_000)))
        #expect(found.count == 1)
        #expect(found.first?.path == "")
        #expect(found.first?.message.hasPrefix("validation stopped: the input is too large or complex") == true)
        #expect(!validator.isValid(.array(Array(repeating: .number(1), count: 12_000))))
    }

    @Test func isValidAgreesWithViolations() throws {
        let validator = try JSONSchemaValidator(schema: parseJSON(#"{"type":"object","required":["a"]}"#))
        #expect(validator.isValid(try parseJSON(#"{"a":1}"#)))
        #expect(!validator.isValid(try parseJSON("{}")))
    }

    @Test func violationDescription() {
        #expect(SchemaViolation(path: "", message: "m").description == "m")
        #expect(SchemaViolation(path: "/a/0", message: "m").description == "/a/0: m")
    }
}
