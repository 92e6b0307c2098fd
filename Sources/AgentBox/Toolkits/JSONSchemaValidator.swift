import Foundation

import AgentBoxAPI

/// A JSON Schema, checked once when it is given and then used to validate any number of instances.
///
/// It understands a subset of draft 2020-12 — the part tool input schemas use — and refuses every other keyword when
/// it is built, so that a schema it could not enforce fails at registration rather than letting bad input through:
///
/// - `type` (one name or an array of them: `object`, `array`, `string`, `number`, `integer`, `boolean`, `null`;
///   an integer is a number without a fraction, so `3.0` is one);
/// - objects: `properties`, `required`, `additionalProperties` (a boolean or a schema);
/// - arrays: `items` (one schema for every item), `minItems`, `maxItems`;
/// - any value: `enum`, `const` (JSON equality: `1` equals `1.0`, key order does not matter);
/// - numbers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers, as in 2020-12);
/// - strings: `minLength`, `maxLength` (counted in Unicode scalars, the "characters" of RFC 8259),
///   `pattern` (see ``SchemaPattern``: an ICU regular expression, searched for anywhere in the string);
/// - `anyOf`, `oneOf` (exactly one must match), `allOf`;
/// - annotations, accepted and ignored: `title`, `description`, `default`, `examples`, `$schema`, `$comment`,
///   `deprecated`, `readOnly`, `writeOnly`, and `format` (not enforced: `"format": "uri"` accepts any string).
///
/// `true` and `false` are schemas too (anything, nothing). Not supported: `$ref`/`$defs`, `not`, `if`/`then`/`else`,
/// `prefixItems`, `contains`, `uniqueItems`, `multipleOf`, `patternProperties`, `propertyNames`, `minProperties`,
/// `maxProperties`, `dependentRequired`/`dependentSchemas`, `unevaluated*`, `$id`/`$anchor`.
///
/// Bounds, so that neither a hostile schema nor a hostile instance can exhaust the stack or the CPU: subschemas nest
/// at most ``maximumSchemaDepth`` deep and a schema holds at most ``maximumSchemaValues`` JSON values; validation
/// descends into an instance only where the schema does (so an instance 10,000 arrays deep costs no deeper recursion
/// than the schema), stops after ``maximumViolations`` violations, and stops with a violation saying so after
/// ``maximumSteps`` steps of work.
public struct JSONSchemaValidator: Sendable {
    /// How deep subschemas may nest (`properties`, `items`, `anyOf`… each add a level); enum, const and annotation
    /// values may nest this deep too.
    public static let maximumSchemaDepth = 32
    /// How many JSON values a schema may hold in all, its literals included.
    public static let maximumSchemaValues = 10_000
    /// How many violations ``violations(of:)`` reports at most.
    public static let maximumViolations = 20
    /// The work one validation may do: a step per (subschema, value) pair checked, per enum value compared,
    /// per 16 characters counted, and ``SchemaPattern/stepsPerTest`` per pattern test.
    public static let maximumSteps = 1_000_000

    let root: SchemaNode

    /// Checks that `schema` is one this validator fully understands; throws a ``SchemaProblem`` naming the
    /// unsupported keyword or bad value (and where it is in the schema).
    public init(schema: JSONValue) throws(SchemaProblem) {
        var compiler = SchemaCompiler()
        root = try compiler.compile(schema, at: SchemaLocation(), depth: 0)
    }

    /// A validator for a tool's input: as ``init(schema:)``, and the top level must say `"type": "object"`.
    public static func toolInput(_ schema: JSONValue) throws(SchemaProblem) -> JSONSchemaValidator {
        guard case .object(let fields) = schema else {
            throw SchemaProblem(detail: "a tool's input schema must be a JSON object with \"type\": \"object\"")
        }
        guard case .string("object") = fields["type"] else {
            throw SchemaProblem(detail: "a tool's input schema must have \"type\": \"object\" at the top level")
        }
        return try JSONSchemaValidator(schema: schema)
    }

    /// Every violation of the schema by `instance` (at most ``maximumViolations``), each with the JSON pointer of
    /// the offending value (`""` for the instance itself, `/items/2/name` below it); empty when `instance` is valid.
    public func violations(of instance: JSONValue) -> [SchemaViolation] {
        var run = ValidationRun(limit: Self.maximumViolations)
        run.check(instance, against: root)
        var found = run.violations
        if run.exhausted {
            let stop = SchemaViolation(
                path: "",
                message: "validation stopped: the input is too large or complex to check against its schema "
                    + "(more than \(Self.maximumSteps) steps of work)")
            if found.count >= Self.maximumViolations { found.removeLast() }
            found.append(stop)
        }
        return found
    }

    /// Whether `instance` satisfies the schema.
    public func isValid(_ instance: JSONValue) -> Bool {
        var run = ValidationRun(limit: 1, silent: true)
        run.check(instance, against: root)
        return !run.foundViolation && !run.exhausted
    }
}

/// Why a schema cannot be used: an unsupported keyword, a keyword with a bad value, or a schema beyond the bounds.
public struct SchemaProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong and where in the schema, e.g. `at /properties/url: unsupported keyword "$ref"`.
    public let detail: String

    public init(detail: String) { self.detail = detail }

    public var description: String { "unsupported input schema: \(detail)" }
}

/// One way an instance breaks its schema.
public struct SchemaViolation: Sendable, Equatable, CustomStringConvertible {
    /// The JSON pointer (RFC 6901) of the offending value in the instance: `""` for the instance itself.
    public let path: String
    /// What is wrong, e.g. `expected integer, got string "ten"`.
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}
