import Foundation

/// A schema's `pattern`: an ICU regular expression (`NSRegularExpression`), searched for anywhere in the string as
/// JSON Schema says (anchor it with `^…$` to match the whole string).
///
/// ICU's syntax agrees with ECMA-262, which JSON Schema names, on what tool schemas use — classes, `\d` `\w` `\s`,
/// quantifiers, anchors, groups, alternation — but not in every corner (ICU's `\d` also matches non-ASCII digits;
/// ICU's `$` also matches before a final newline; `[` inside a class is a nested set in ICU).
///
/// ICU backtracks, so a pattern such as `^(a+)+$` takes exponential time on some strings. Three bounds keep that
/// harmless: a pattern has at most ``maximumLength`` characters; a string longer than ``maximumSubjectLength`` is not
/// tested (it is a violation); and a test is abandoned once ICU has reported progress more than the run's remaining
/// allowance of ticks (ICU reports progress every 10,000 or so matching steps), which makes it a violation too.
struct SchemaPattern: Sendable {
    /// The longest pattern accepted, in Unicode scalars.
    static let maximumLength = 1_000
    /// The longest string tested against a pattern, in Unicode scalars.
    static let maximumSubjectLength = 10_000
    /// ICU progress reports one validation may spend on patterns in all (one is about 10,000 backtracking steps).
    static let maximumTicks = 100
    /// What one test costs from the validation's step budget, beside a step per 16 characters.
    static let stepsPerTest = 500

    let source: String
    let expression: NSRegularExpression

    enum Outcome: Equatable {
        case match
        case noMatch
        /// Abandoned: the run's allowance of progress ticks ran out.
        case tooCostly
    }

    /// Compiles `source`, or says why it cannot be used.
    init(_ source: String) throws(SchemaProblem) {
        guard JSONFacts.scalarCount(of: source, cappedAt: Self.maximumLength) <= Self.maximumLength else {
            throw SchemaProblem(detail: "pattern is longer than \(Self.maximumLength) characters")
        }
        do {
            expression = try NSRegularExpression(pattern: source)
        } catch {
            throw SchemaProblem(detail: "pattern \(JSONFacts.quoted(source, limit: 80)) is not a valid regular expression")
        }
        self.source = source
    }

    /// Searches `text` for the pattern, spending at most `ticks` progress reports (and taking them from it).
    func test(_ text: String, ticks: inout Int) -> Outcome {
        let allowance = ticks
        var spent = 0
        var found = false
        var abandoned = false
        let range = NSRange(text.startIndex..<text.endIndex, in: text)
        expression.enumerateMatches(in: text, options: [.reportProgress], range: range) { match, _, stop in
            if match != nil {
                found = true
                stop.pointee = true
            } else {
                spent += 1
                if spent > allowance {
                    abandoned = true
                    stop.pointee = true
                }
            }
        }
        ticks = max(0, allowance - spent)
        if found { return .match }
        return abandoned ? .tooCostly : .noMatch
    }
}
