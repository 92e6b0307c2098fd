import Foundation
import Testing

@testable import AgentBox

/// Helpers shared by the cron tests. Dates are written as RFC 3339 UTC strings and parsed with Foundation's ISO 8601
/// parser (independent of the code under test).
enum CronTestSupport {
    /// "2027-03-28T01:00:00Z" as a Date (an unparsable string gives distantPast, which fails any comparison).
    static func utc(_ text: String) -> Date {
        (try? Date(text, strategy: .iso8601)) ?? .distantPast
    }

    /// A Date as "2027-03-28T01:00:00Z" (fractional seconds shown only when present).
    static func iso(_ date: Date) -> String {
        if date.timeIntervalSince1970.rounded(.down) == date.timeIntervalSince1970 {
            return date.formatted(.iso8601)
        }
        return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// The first `count` fire times strictly after `after`, by repeated `next(after:)`, as UTC strings.
    static func fires(_ expression: String, zone: String? = nil, after: String, count: Int) throws -> [String] {
        let schedule = try CronSchedule(expression, timeZone: zone)
        return fires(schedule, after: utc(after), count: count).map(iso)
    }

    static func fires(_ schedule: CronSchedule, after: Date, count: Int) -> [Date] {
        var result: [Date] = []
        var cursor = after
        while result.count < count, let next = schedule.next(after: cursor) {
            result.append(next)
            cursor = next
        }
        return result
    }

    /// The error `CronSchedule.init` throws, or nil when it parses.
    static func parseError(_ expression: String, zone: String? = nil) -> CronScheduleError? {
        do {
            _ = try CronSchedule(expression, timeZone: zone)
            return nil
        } catch {
            return error
        }
    }

    /// The values a single field allows, sorted.
    static func values(_ text: String, _ unit: CronSchedule.Pattern.Unit) throws -> [Int] {
        let bits = try CronSchedule.Pattern.parseField(Substring(text), as: unit)
        return (0..<64).filter { bits & (1 << UInt64($0)) != 0 }
    }

    /// The parsed pattern of a cron expression.
    static func pattern(_ expression: String) throws -> CronSchedule.Pattern {
        let schedule = try CronSchedule(expression)
        guard case .cron(let pattern) = schedule.kind else {
            Issue.record("'\(expression)' parsed as a one-shot")
            return try CronSchedule.Pattern(fields: "* * * * *")
        }
        return pattern
    }

    /// Local wall-clock components of `date` in `zone`, computed by Foundation's Calendar.
    static func wallClock(_ date: Date, _ zone: TimeZone) -> WallTime {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        return WallTime(
            year: c.year ?? 0, month: c.month ?? 0, day: c.day ?? 0, hour: c.hour ?? 0, minute: c.minute ?? 0,
            second: c.second ?? 0, weekday: (c.weekday ?? 1) - 1)
    }

    /// A local date and time; weekday 0 = Sunday.
    struct WallTime: Equatable, CustomStringConvertible {
        var year, month, day, hour, minute, second, weekday: Int
        var description: String {
            "\(year)-\(month)-\(day) \(hour):\(minute):\(second) (weekday \(weekday))"
        }
    }
}
