import Foundation

/// A parsed schedule: a cron expression or a one-shot RFC 3339 instant, in an IANA time zone.
///
/// ## Cron expressions
/// Five whitespace-separated fields `minute hour day-of-month month day-of-week`, or six with a leading `second`
/// (for five fields the second is 0). Each field is a comma-separated list of:
/// - `*` (every value); `?` is accepted as `*` in day-of-month and day-of-week;
/// - a value `n`; a range `a-b` (ascending: `5-1` is an error);
/// - steps `*/s`, `a-b/s`, and `a/s`, which means `a-max/s` as in Vixie cron (`10/15` minutes = 10,25,40,55;
///   day-of-week's max is 7, so `1/2` there is Monday, Wednesday, Friday and Sunday).
///   A step of 0 is an error; a step beyond the range just keeps the first value.
///
/// | field        | values | names |
/// |--------------|--------|-------|
/// | second       | 0-59   |       |
/// | minute       | 0-59   |       |
/// | hour         | 0-23   |       |
/// | day-of-month | 1-31   |       |
/// | month        | 1-12   | JAN-DEC |
/// | day-of-week  | 0-7    | SUN-SAT (0 and 7 are both Sunday) |
///
/// Names are three letters, case-insensitive, and work in ranges (`MON-FRI`, `jan-mar`); `SUN` closing a range
/// that starts later in the week is 7 (`FRI-SUN` = Friday, Saturday, Sunday). Out-of-range values, unknown names,
/// empty list elements and malformed steps are errors naming the field and the offending text.
///
/// Macros (Vixie's meanings): `@yearly` and `@annually` = `0 0 1 1 *`, `@monthly` = `0 0 1 * *`,
/// `@weekly` = `0 0 * * 0`, `@daily` and `@midnight` = `0 0 * * *`, `@hourly` = `0 * * * *`; case-insensitive.
/// Any other `@…` (including `@reboot`) is an error.
///
/// ## Day-of-month and day-of-week (Vixie cron's rule)
/// If either day field starts with `*` (or `?`), a day must match BOTH fields; otherwise a day matches when EITHER
/// field matches. With a plain `*` this reads as "only the other field restricts": `0 0 13 * *` is every 13th,
/// `0 0 * * 5` every Friday, while `0 0 13 * 5` is every 13th AND every Friday. Because the rule looks only at the
/// first character, `0 0 */2 * 1` (day-of-month starts with `*`) is Mondays that fall on an odd day of the month,
/// and `0 0 29 2 1` (neither starts with `*`) is every Monday in February plus February 29.
///
/// An expression that can never fire (`0 0 30 2 *`, `0 0 31 4,6,9,11 *`) is rejected at parse time.
/// `0 0 29 2 *` is valid and fires only in leap years.
///
/// ## Time zones and daylight saving
/// The expression is matched against the local wall clock of `timeZone` (an IANA name; default UTC):
/// - A wall time the clock skips (spring forward, e.g. 02:30 in Europe/Berlin on 2027-03-28) fires once, at the
///   first instant after the gap (03:00 local). All skipped slots collapse into that one firing, which is also the
///   firing of a 03:00 slot: `*/15 * * * *` fires at 01:45, 03:00, 03:15 local, each once.
/// - A wall time the clock shows twice (fall back, e.g. 02:00-02:59 in Berlin on 2027-10-31) fires only at its
///   first occurrence; nothing fires during the repeated second pass.
/// - Fire times are whole seconds, strictly increasing, never duplicated.
///
/// ## One-shot
/// An RFC 3339 instant (`2027-01-01T09:00:00Z`, `2027-01-01T10:00:00+01:00`, fractional seconds allowed) fires once,
/// at that instant (fraction kept). The time zone is still validated and kept.
public struct CronSchedule: Sendable, Hashable {
    /// The expression as given (trimmed).
    public let expression: String
    public let timeZone: TimeZone
    let kind: Kind

    enum Kind: Sendable, Hashable {
        case cron(Pattern)
        case oneShot(Date)
    }

    public var isOneShot: Bool {
        if case .oneShot = kind { true } else { false }
    }

    /// Parses `expression` in time zone `timeZoneIdentifier` (IANA name; nil or "" = "UTC").
    public init(_ expression: String, timeZone timeZoneIdentifier: String? = nil) throws(CronScheduleError) {
        let trimmed = expression.trimmingCharacters(in: .whitespacesAndNewlines)
        self.expression = trimmed
        if trimmed.isEmpty {
            throw .schedule("empty expression")
        } else if Self.looksLikeInstant(trimmed) {
            kind = .oneShot(try Self.parseInstant(trimmed))
        } else if trimmed.hasPrefix("@") {
            guard let expansion = Self.macros[trimmed.lowercased()] else {
                throw .schedule(
                    "unknown macro '\(trimmed)' "
                        + "(known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)")
            }
            kind = .cron(try Pattern(fields: expansion))
        } else {
            kind = .cron(try Pattern(fields: trimmed))
        }
        self.timeZone = try Self.resolveTimeZone(timeZoneIdentifier)
    }

    /// The first fire time strictly after `date`, or nil when there is none (a one-shot already past, or never).
    public func next(after date: Date) -> Date? {
        switch kind {
        case .oneShot(let instant):
            return instant > date ? instant : nil
        case .cron(let pattern):
            return Self.next(of: pattern, in: Zone(timeZone: timeZone), after: date)
        }
    }

    /// Fire times in (from, through], at most `limit` of them, oldest first (used to find missed slots).
    public func fireTimes(after from: Date, through: Date, limit: Int) -> [Date] {
        var times: [Date] = []
        var cursor = from
        while times.count < limit, let time = next(after: cursor), time <= through {
            times.append(time)
            cursor = time
        }
        return times
    }

    // MARK: Next fire time

    private static func next(of pattern: Pattern, in zone: Zone, after date: Date) -> Date? {
        // Fire times are whole seconds, so "after date" is "after floor(date)". Dates too far out to be seconds are
        // answered with nil (no schedule fires 300,000 years from now).
        let seconds = date.timeIntervalSince1970.rounded(.down)
        guard seconds.isFinite, abs(seconds) < 1e13 else { return nil }
        let after = Int(seconds)

        // The search runs on the wall clock, where `zone.instant(forWall:)` is non-decreasing: so the answer is the
        // instant of the first matching wall time at or after `start`, the first wall time whose instant is after
        // `after`. Normally that is the wall time one second after `after`'s.
        var start = zone.wall(at: after) + 1
        let startInstant = zone.instant(forWall: start)
        if startInstant <= after {
            // `after` is in the second pass of a fall-back: the wall times up to the end of the repeated interval
            // already fired in the first pass. The interval ends at the transition's wall time on the old offset.
            let oldOffset = zone.offset(at: startInstant)
            let transition = Zone.firstInstant(after: startInstant, upTo: after) { zone.offset(at: $0) != oldOffset }
            start = transition + oldOffset
        }

        // One pass suffices for real zones; the loop only guards against zone data breaking monotonicity.
        for _ in 0..<1000 {
            guard let wall = pattern.firstMatch(atOrAfterWall: start) else { return nil }
            let instant = zone.instant(forWall: wall)
            if instant > after { return Date(timeIntervalSince1970: TimeInterval(instant)) }
            start = wall + 1
        }
        return nil
    }

    // MARK: Parsing helpers

    static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    ]

    /// IANA names without a '/' (tzdata's zones and backward links). Other names without a '/' that Foundation
    /// accepts ("PST", "JST", "GMT+5", "UTC+01:00") are abbreviations or offsets, not IANA names.
    static let ianaNamesWithoutSlash: Set<String> = [
        "CET", "CST6CDT", "Cuba", "EET", "EST", "EST5EDT", "Egypt", "Eire", "Factory", "GB", "GB-Eire", "GMT", "GMT+0",
        "GMT-0", "GMT0", "Greenwich", "HST", "Hongkong", "Iceland", "Iran", "Israel", "Jamaica", "Japan", "Kwajalein",
        "Libya", "MET", "MST", "MST7MDT", "NZ", "NZ-CHAT", "Navajo", "PRC", "PST8PDT", "Poland", "Portugal", "ROC",
        "ROK", "Singapore", "Turkey", "UCT", "UTC", "Universal", "W-SU", "WET", "Zulu",
    ]

    static func resolveTimeZone(_ identifier: String?) throws(CronScheduleError) -> TimeZone {
        let name = identifier ?? ""
        if name.isEmpty { return .gmt }
        guard name.contains("/") || ianaNamesWithoutSlash.contains(name) else {
            throw .timezone("'\(name)' is not an IANA time zone name (use a name such as 'Europe/Berlin' or 'UTC')")
        }
        guard let zone = TimeZone(identifier: name) else {
            throw .timezone("unknown IANA time zone '\(name)'")
        }
        return zone
    }
}
