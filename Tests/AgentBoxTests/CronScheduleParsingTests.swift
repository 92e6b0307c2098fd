import Foundation
import Testing

@testable import AgentBox

@Suite("CronSchedule parsing")
struct CronScheduleParsingTests {
    typealias Unit = CronSchedule.Pattern.Unit

    // MARK: Field syntax

    static let fieldCases: [(String, Unit, [Int])] = [
        // `*`, single values, leading zeros
        ("*", .minute, Array(0...59)),
        ("*", .second, Array(0...59)),
        ("*", .hour, Array(0...23)),
        ("*", .dayOfMonth, Array(1...31)),
        ("*", .month, Array(1...12)),
        ("*", .dayOfWeek, Array(0...6)),
        ("5", .minute, [5]),
        ("00", .minute, [0]),
        ("07", .hour, [7]),
        ("59", .second, [59]),
        ("31", .dayOfMonth, [31]),
        // lists and ranges
        ("1,2,3", .minute, [1, 2, 3]),
        ("3,1,2,3", .minute, [1, 2, 3]),
        ("1-5", .hour, [1, 2, 3, 4, 5]),
        ("5-5", .hour, [5]),
        ("0-59", .minute, Array(0...59)),
        ("1-3,10,20-21", .dayOfMonth, [1, 2, 3, 10, 20, 21]),
        // steps: */n, a-b/n, a/n (= a-max/n)
        ("*/15", .minute, [0, 15, 30, 45]),
        ("*/7", .hour, [0, 7, 14, 21]),
        ("*/10", .dayOfMonth, [1, 11, 21, 31]),
        ("*/3", .month, [1, 4, 7, 10]),
        ("*/1", .minute, Array(0...59)),
        ("*/100", .minute, [0]),
        ("10-30/10", .minute, [10, 20, 30]),
        ("10-31/10", .minute, [10, 20, 30]),
        ("0-23/6", .hour, [0, 6, 12, 18]),
        ("10/15", .minute, [10, 25, 40, 55]),
        ("5/20", .hour, [5]),
        ("2/5", .month, [2, 7, 12]),
        ("15/5", .dayOfMonth, [15, 20, 25, 30]),
        ("1-3,*/20,45", .minute, [0, 1, 2, 3, 20, 40, 45]),
        ("*/20,*/30", .second, [0, 20, 30, 40]),
        // month names, any case, in lists and ranges
        ("JAN", .month, [1]),
        ("dec", .month, [12]),
        ("jan,Jun,DEC", .month, [1, 6, 12]),
        ("JAN-MAR", .month, [1, 2, 3]),
        ("mar-5", .month, [3, 4, 5]),
        ("Feb-Dec/2", .month, [2, 4, 6, 8, 10, 12]),
        // day-of-week: 0 and 7 are Sunday, names, ranges
        ("0", .dayOfWeek, [0]),
        ("7", .dayOfWeek, [0]),
        ("0,7", .dayOfWeek, [0]),
        ("5-7", .dayOfWeek, [0, 5, 6]),
        ("0-7", .dayOfWeek, Array(0...6)),
        ("MON-FRI", .dayOfWeek, [1, 2, 3, 4, 5]),
        ("mon,Wed,FRI", .dayOfWeek, [1, 3, 5]),
        ("sun", .dayOfWeek, [0]),
        ("SUN-SAT", .dayOfWeek, Array(0...6)),
        ("sun-sun", .dayOfWeek, [0]),
        ("FRI-SUN", .dayOfWeek, [0, 5, 6]),
        ("sat-sun", .dayOfWeek, [0, 6]),
        ("*/2", .dayOfWeek, [0, 2, 4, 6]),
        ("1/2", .dayOfWeek, [0, 1, 3, 5]),  // 1-7/2 as in Vixie: 1,3,5,7 and 7 is Sunday
        ("*/7", .dayOfWeek, [0]),
        // `?` = `*` in the day fields
        ("?", .dayOfMonth, Array(1...31)),
        ("?", .dayOfWeek, Array(0...6)),
    ]

    @Test("field syntax", arguments: fieldCases)
    func fieldSyntax(text: String, unit: Unit, expected: [Int]) throws {
        #expect(try CronTestSupport.values(text, unit) == expected)
    }

    @Test func fiveFieldsMapToMinuteHourDayMonthWeekday() throws {
        let pattern = try CronTestSupport.pattern("1 2 3 4 5")
        #expect(pattern.seconds == 1 << 0)
        #expect(pattern.minutes == 1 << 1)
        #expect(pattern.hours == 1 << 2)
        #expect(pattern.daysOfMonth == 1 << 3)
        #expect(pattern.months == 1 << 4)
        #expect(pattern.daysOfWeek == 1 << 5)
    }

    @Test func sixFieldsStartWithSeconds() throws {
        let pattern = try CronTestSupport.pattern("7 1 2 3 4 5")
        #expect(pattern.seconds == 1 << 7)
        #expect(pattern.minutes == 1 << 1)
        #expect(pattern.hours == 1 << 2)
        #expect(pattern.daysOfMonth == 1 << 3)
        #expect(pattern.months == 1 << 4)
        #expect(pattern.daysOfWeek == 1 << 5)
    }

    @Test func whitespaceRunsAndTabsSeparateFieldsAndTheExpressionIsTrimmed() throws {
        let schedule = try CronSchedule("  */5 \t 1   *\t\t* MON-fri \n", timeZone: "Europe/Berlin")
        #expect(schedule.expression == "*/5 \t 1   *\t\t* MON-fri")
        let plain = try CronSchedule("*/5 1 * * 1-5")
        #expect(!schedule.isOneShot)
        #expect(schedule.kind == plain.kind)
    }

    @Test func namesAreCaseInsensitiveInWholeExpressions() throws {
        let a = try CronTestSupport.pattern("0 12 * jan,JUL Mon-Fri")
        let b = try CronTestSupport.pattern("0 12 * 1,7 1-5")
        #expect(a == b)
    }

    // MARK: Macros

    static let macroCases: [(String, String)] = [
        ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@hourly", "0 * * * *"),
        ("@Daily", "0 0 * * *"), ("@HOURLY", "0 * * * *"), ("  @weekly  ", "0 0 * * 0"),
    ]

    @Test("macros expand to Vixie's meanings", arguments: macroCases)
    func macro(macro: String, expansion: String) throws {
        let schedule = try CronSchedule(macro)
        let expanded = try CronSchedule(expansion)
        #expect(schedule.expression == macro.trimmingCharacters(in: .whitespaces))
        #expect(schedule.kind == expanded.kind)
    }

    @Test func macrosFire() throws {
        let after = "2027-03-10T10:20:30Z"
        #expect(try CronTestSupport.fires("@yearly", after: after, count: 2) == ["2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"])
        #expect(
            try CronTestSupport.fires("@monthly", after: after, count: 2) == ["2027-04-01T00:00:00Z", "2027-05-01T00:00:00Z"])
        // 2027-03-14 is a Sunday.
        #expect(try CronTestSupport.fires("@weekly", after: after, count: 2) == ["2027-03-14T00:00:00Z", "2027-03-21T00:00:00Z"])
        #expect(try CronTestSupport.fires("@daily", after: after, count: 2) == ["2027-03-11T00:00:00Z", "2027-03-12T00:00:00Z"])
        #expect(try CronTestSupport.fires("@midnight", after: after, count: 1) == ["2027-03-11T00:00:00Z"])
        #expect(try CronTestSupport.fires("@hourly", after: after, count: 2) == ["2027-03-10T11:00:00Z", "2027-03-10T12:00:00Z"])
    }

    // MARK: Day-of-month / day-of-week rule

    static let dayRuleCases: [(String, CronSchedule.Pattern.DayRule)] = [
        ("0 0 13 * 5", .either),  // both restricted: OR
        ("0 0 1-7 * MON", .either),
        ("0 0 29 2 1", .either),
        ("0 0 13 * *", .both),  // `*` in day-of-week: only day-of-month restricts
        ("0 0 * * 5", .both),
        ("0 0 * * *", .both),
        ("0 0 */2 * 1", .both),  // starts with `*`: Vixie ANDs, so `*/2` still restricts
        ("0 0 1 * */2", .both),
        ("0 0 *,5 * 1", .both),
        ("0 0 ? * MON", .both),  // `?` is `*`
        ("0 0 1 * ?", .both),
        ("0 0 1-31 * 0-7", .either),
    ]

    @Test("day rule follows the first character of the day fields", arguments: dayRuleCases)
    func dayRule(expression: String, rule: CronSchedule.Pattern.DayRule) throws {
        #expect(try CronTestSupport.pattern(expression).dayRule == rule)
    }

    // MARK: One-shot

    static let instantCases: [(String, Double)] = [
        ("2027-01-01T09:00:00Z", 1_798_794_000),
        ("2027-01-01T10:00:00+01:00", 1_798_794_000),
        ("2027-01-01T03:30:00-05:30", 1_798_794_000),
        ("2027-01-01T09:00:00+00:00", 1_798_794_000),
        ("2027-01-01T09:00:00-00:00", 1_798_794_000),
        ("2027-01-01t09:00:00z", 1_798_794_000),
        ("2027-01-01 09:00:00Z", 1_798_794_000),
        ("2027-01-01T09:00:00.5Z", 1_798_794_000.5),
        ("2027-01-01T09:00:00.250+00:00", 1_798_794_000.25),
        ("2028-02-29T23:59:59Z", 1_835_481_599),
        ("1970-01-01T00:00:00Z", 0),
    ]

    @Test("RFC 3339 one-shot instants", arguments: instantCases)
    func oneShot(text: String, seconds: Double) throws {
        let schedule = try CronSchedule(text, timeZone: "Europe/Berlin")
        #expect(schedule.isOneShot)
        #expect(schedule.expression == text)
        #expect(schedule.timeZone.identifier == "Europe/Berlin")
        #expect(schedule.kind == .oneShot(Date(timeIntervalSince1970: seconds)))
    }

    // MARK: Time zones

    static let validZones: [String?] = [
        nil, "", "UTC", "GMT", "Etc/UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Calcutta",
        "Australia/Lord_Howe", "Pacific/Chatham", "Etc/GMT+5", "US/Eastern", "EST5EDT", "Japan", "CET",
    ]

    @Test("valid IANA time zones", arguments: validZones)
    func validZone(zone: String?) throws {
        let schedule = try CronSchedule("0 0 * * *", timeZone: zone)
        if let zone, !zone.isEmpty {
            #expect(schedule.timeZone == TimeZone(identifier: zone))
        } else {
            #expect(schedule.timeZone.secondsFromGMT(for: CronTestSupport.utc("2027-07-01T00:00:00Z")) == 0)
            let newYear = CronTestSupport.utc("2027-01-01T00:00:00Z")
            #expect(schedule.timeZone.nextDaylightSavingTimeTransition(after: newYear) == nil)
        }
    }

    @Test func defaultTimeZoneIsUTC() throws {
        let a = try CronSchedule("0 9 * * *")
        let b = try CronSchedule("0 9 * * *", timeZone: "")
        #expect(a == b)
        #expect(a.next(after: CronTestSupport.utc("2027-07-01T00:00:00Z")) == CronTestSupport.utc("2027-07-01T09:00:00Z"))
    }

    @Test func equalityAndHashingFollowExpressionAndZone() throws {
        let a = try CronSchedule("0 9 * * *", timeZone: "Europe/Berlin")
        let b = try CronSchedule(" 0 9 * * * ", timeZone: "Europe/Berlin")
        let c = try CronSchedule("0 9 * * *", timeZone: "Europe/Paris")
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(a != c)
        #expect(Set([a, b, c]).count == 2)
    }
}

@Suite("CronSchedule errors")
struct CronScheduleErrorTests {
    /// (expression, time zone, field, parts the detail must contain)
    static let cases: [(String, String?, CronScheduleError.Field, [String])] = [
        // shape
        ("", nil, .schedule, ["schedule: empty expression"]),
        ("   \t ", nil, .schedule, ["empty expression"]),
        ("* * * *", nil, .schedule, ["expected 5 fields", "got 4"]),
        ("*", nil, .schedule, ["got 1"]),
        ("* * * * * * *", nil, .schedule, ["got 7"]),
        // out of range, naming the field and the range
        ("60 * * * *", nil, .schedule, ["schedule: field 'minute' value 60 is out of range 0-59"]),
        ("0 25 * * *", nil, .schedule, ["schedule: field 'hour' value 25 is out of range 0-23"]),
        ("0 0 0 * *", nil, .schedule, ["field 'day-of-month' value 0 is out of range 1-31"]),
        ("0 0 32 * *", nil, .schedule, ["field 'day-of-month' value 32 is out of range 1-31"]),
        ("0 0 * 13 *", nil, .schedule, ["field 'month' value 13 is out of range 1-12"]),
        ("0 0 * 0 *", nil, .schedule, ["field 'month' value 0 is out of range 1-12"]),
        ("0 0 * * 8", nil, .schedule, ["field 'day-of-week' value 8 is out of range 0-7"]),
        ("60 * * * * *", nil, .schedule, ["field 'second' value 60 is out of range 0-59"]),
        ("0 60 * * * *", nil, .schedule, ["field 'minute' value 60"]),
        ("0-60 * * * *", nil, .schedule, ["field 'minute' value 60 is out of range 0-59"]),
        ("1,2,99 * * * *", nil, .schedule, ["field 'minute' value 99"]),
        ("0 0 1-40/2 * *", nil, .schedule, ["field 'day-of-month' value 40"]),
        ("0 0 40/2 * *", nil, .schedule, ["field 'day-of-month' value 40"]),
        ("99999999999999999999999 * * * *", nil, .schedule, ["field 'minute' value 99999999999999999999999 is out of range"]),
        // ranges must ascend
        ("30-10 * * * *", nil, .schedule, ["field 'minute' range '30-10' is descending (30 > 10)"]),
        ("0 0 * * 5-1", nil, .schedule, ["field 'day-of-week' range '5-1' is descending"]),
        ("0 0 * * FRI-MON", nil, .schedule, ["field 'day-of-week' range 'FRI-MON' is descending (5 > 1)"]),
        ("0 0 * DEC-JAN *", nil, .schedule, ["field 'month' range 'DEC-JAN' is descending (12 > 1)"]),
        ("0 0 * * 7-0", nil, .schedule, ["range '7-0' is descending"]),
        // malformed ranges
        ("-5 * * * *", nil, .schedule, ["field 'minute' range '-5' is not of the form a-b"]),
        ("5- * * * *", nil, .schedule, ["range '5-'"]),
        ("1-2-3 * * * *", nil, .schedule, ["range '1-2-3'"]),
        // steps
        ("*/0 * * * *", nil, .schedule, ["field 'minute' step 0 in '*/0'"]),
        ("0 0-23/0 * * *", nil, .schedule, ["field 'hour' step 0 in '0-23/0'"]),
        ("5/00 * * * *", nil, .schedule, ["step 0"]),
        ("*/x * * * *", nil, .schedule, ["field 'minute' step 'x' in '*/x' is not a number"]),
        ("*/ * * * *", nil, .schedule, ["field 'minute' step '' in '*/'"]),
        ("*/-1 * * * *", nil, .schedule, ["step '-1'"]),
        ("0 0 * JAN/FEB *", nil, .schedule, ["field 'month' step 'FEB'"]),
        ("1/2/3 * * * *", nil, .schedule, ["field 'minute' element '1/2/3' has more than one '/'"]),
        ("/5 * * * *", nil, .schedule, ["field 'minute' element '/5' has nothing before '/'"]),
        // lists
        ("1,,2 * * * *", nil, .schedule, ["field 'minute' has an empty list element in '1,,2'"]),
        (",1 * * * *", nil, .schedule, ["empty list element"]),
        ("0 1, * * *", nil, .schedule, ["field 'hour' has an empty list element"]),
        // values and names
        ("abc * * * *", nil, .schedule, ["field 'minute' value 'abc' is not a number"]),
        ("0 MON * * *", nil, .schedule, ["field 'hour' value 'MON' is not a number"]),
        ("0 0 JAN * *", nil, .schedule, ["field 'day-of-month' value 'JAN'"]),
        ("0 0 * FOO *", nil, .schedule, ["field 'month' value 'FOO' is neither a number 1-12 nor a month name JAN-DEC"]),
        ("0 0 * JAN-FOO *", nil, .schedule, ["field 'month' value 'FOO'"]),
        ("0 0 * January *", nil, .schedule, ["field 'month' value 'January'"]),
        ("0 0 * * FUNDAY", nil, .schedule, ["field 'day-of-week' value 'FUNDAY' is neither a number 0-7 nor a day name"]),
        ("0 0 * * MONDAY", nil, .schedule, ["field 'day-of-week' value 'MONDAY'"]),
        ("0 0 * * +1", nil, .schedule, ["field 'day-of-week' value '+1'"]),
        ("1.5 * * * *", nil, .schedule, ["field 'minute' value '1.5'"]),
        ("L * * * *", nil, .schedule, ["field 'minute' value 'L'"]),
        // `?`
        ("? * * * *", nil, .schedule, ["field 'minute' '?' is only allowed in day-of-month and day-of-week"]),
        ("0 0 * ? *", nil, .schedule, ["field 'month' '?'"]),
        ("0 0 ?/2 * *", nil, .schedule, ["field 'day-of-month' '?' cannot take a step"]),
        // macros
        ("@reboot", nil, .schedule, ["unknown macro '@reboot'"]),
        ("@every 5m", nil, .schedule, ["unknown macro '@every 5m'"]),
        ("@", nil, .schedule, ["unknown macro '@'"]),
        ("@daily 0", nil, .schedule, ["unknown macro '@daily 0'"]),
        // never fires
        ("0 0 30 2 *", nil, .schedule, ["never fires", "day-of-month '30'", "month '2'"]),
        ("0 0 31 4,6,9,11 *", nil, .schedule, ["never fires", "day-of-month '31'", "month '4,6,9,11'"]),
        ("0 0 30,31 FEB *", nil, .schedule, ["never fires", "month 'FEB'"]),
        ("0 0 31 2,4 ?", nil, .schedule, ["never fires"]),
        ("0 0 30 2 */2", nil, .schedule, ["never fires", "day-of-week '*/2'"]),
        ("0 0 0 31 2 *", nil, .schedule, ["never fires"]),
        // one-shot instants
        ("2027-13-01T00:00:00Z", nil, .schedule, ["invalid RFC 3339 instant '2027-13-01T00:00:00Z'", "month 13 is out of range"]),
        ("2027-02-29T00:00:00Z", nil, .schedule, ["day 29 is out of range 1-28"]),
        ("2027-04-31T00:00:00Z", nil, .schedule, ["day 31 is out of range 1-30"]),
        ("2027-01-00T00:00:00Z", nil, .schedule, ["day 0 is out of range"]),
        ("2027-01-01T24:00:00Z", nil, .schedule, ["hour 24 is out of range 0-23"]),
        ("2027-01-01T09:60:00Z", nil, .schedule, ["minute 60"]),
        ("2027-01-01T09:00:60Z", nil, .schedule, ["leap second"]),
        ("2027-01-01T09:00:00", nil, .schedule, ["missing time zone offset"]),
        ("2027-01-01T09:00Z", nil, .schedule, ["invalid RFC 3339 instant"]),
        ("2027-01-01", nil, .schedule, ["invalid RFC 3339 instant '2027-01-01'"]),
        ("2027-01-01T9:00:00Z", nil, .schedule, ["hour needs 2 digits"]),
        ("2027-01-01T09:00:00+1:00", nil, .schedule, ["offset hour needs 2 digits"]),
        ("2027-01-01T09:00:00+0100", nil, .schedule, ["':' in the offset"]),
        ("2027-01-01T09:00:00+24:00", nil, .schedule, ["offset hour 24 is out of range"]),
        ("2027-01-01T09:00:00.Z", nil, .schedule, ["fractional seconds need at least one digit"]),
        ("2027-01-01T09:00:00Z later", nil, .schedule, ["unexpected text after the offset"]),
        ("2027-01-01X09:00:00Z", nil, .schedule, ["expected 'T'"]),
        ("2027-01-01T09:00:00EST", nil, .schedule, ["expected 'Z' or an offset"]),
        // time zones
        ("0 0 * * *", "Mars/Olympus", .timezone, ["timezone: unknown IANA time zone 'Mars/Olympus'"]),
        ("0 0 * * *", "europe/berlin", .timezone, ["unknown IANA time zone 'europe/berlin'"]),
        ("0 0 * * *", "Europe/Berlin ", .timezone, ["'Europe/Berlin '"]),
        ("0 0 * * *", "PST", .timezone, ["timezone: 'PST' is not an IANA time zone name"]),
        ("0 0 * * *", "JST", .timezone, ["'JST' is not an IANA time zone name"]),
        ("0 0 * * *", "CEST", .timezone, ["'CEST'"]),
        ("0 0 * * *", "GMT+5", .timezone, ["'GMT+5' is not an IANA time zone name"]),
        ("0 0 * * *", "UTC+01:00", .timezone, ["'UTC+01:00'"]),
        ("0 0 * * *", "Berlin", .timezone, ["'Berlin'"]),
        ("2027-01-01T09:00:00Z", "Nowhere/Special", .timezone, ["'Nowhere/Special'"]),
        // a bad schedule is reported before a bad time zone
        ("0 25 * * *", "Mars/Olympus", .schedule, ["field 'hour'"]),
    ]

    @Test("invalid input names the field and the offending part", arguments: cases)
    func invalid(expression: String, zone: String?, field: CronScheduleError.Field, parts: [String]) {
        guard let error = CronTestSupport.parseError(expression, zone: zone) else {
            Issue.record("'\(expression)' in \(zone ?? "nil") parsed, but should fail")
            return
        }
        #expect(error.field == field, "\(error.detail)")
        #expect(error.detail.hasPrefix("\(field.rawValue): "), "\(error.detail)")
        for part in parts {
            #expect(error.detail.contains(part), "'\(error.detail)' lacks '\(part)'")
        }
        #expect(error.description == error.detail)
    }

    @Test func errorsAreEquatable() {
        #expect(CronTestSupport.parseError("0 25 * * *") == CronTestSupport.parseError("0 25 * * *"))
        #expect(CronTestSupport.parseError("0 25 * * *") != CronTestSupport.parseError("0 26 * * *"))
    }

    /// Expressions close to the error cases that are valid.
    static let validCases: [String] = [
        "0 0 29 2 *", "0 0 31 1,4 *", "0 0 30,31 2,3 *", "0 0 31 * *", "0 0 30 2 1", "0 0 31 4 MON", "0 0 29 FEB ?",
        "59 59 23 31 12 *", "0 0 1-31/30 * *", "0 0 * * 7", "0 0 * * 0-7/7", "* * * * *", "* * * * * *",
    ]

    @Test("valid near-misses", arguments: validCases)
    func valid(expression: String) {
        #expect(CronTestSupport.parseError(expression) == nil)
    }
}
