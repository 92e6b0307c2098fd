import Foundation
import Testing

@testable import AgentBox

/// Properties checked against Foundation's Calendar (an implementation independent of the code under test) and a
/// brute-force reference of the daylight-saving rules.
@Suite("CronSchedule properties")
struct CronSchedulePropertyTests {
    typealias WallTime = CronTestSupport.WallTime

    /// Expressions with an independent predicate on the local wall time.
    static let expressions: [(String, @Sendable (WallTime) -> Bool)] = [
        ("*/15 * * * *", { $0.minute % 15 == 0 && $0.second == 0 }),
        ("30 2 * * *", { $0.hour == 2 && $0.minute == 30 && $0.second == 0 }),
        ("0 * * * *", { $0.minute == 0 && $0.second == 0 }),
        ("*/20 1-3 * * *", { (1...3).contains($0.hour) && $0.minute % 20 == 0 && $0.second == 0 }),
        ("0 0 29 2 1", { $0.month == 2 && ($0.day == 29 || $0.weekday == 1) && midnight($0) }),
        ("0 0 */2 * 1", { $0.day % 2 == 1 && $0.weekday == 1 && midnight($0) }),
        ("0 0 13 * FRI", { ($0.day == 13 || $0.weekday == 5) && midnight($0) }),
        ("0 9-17 * * MON-FRI", { (9...17).contains($0.hour) && (1...5).contains($0.weekday) && $0.minute + $0.second == 0 }),
        ("59 23 31 12 *", { $0.month == 12 && $0.day == 31 && $0.hour == 23 && $0.minute == 59 && $0.second == 0 }),
        ("0 0 31 * *", { $0.day == 31 && midnight($0) }),
        ("15,45 */7 * * * *", { [15, 45].contains($0.second) && $0.minute % 7 == 0 }),
        ("*/10 30 2 * * *", { $0.hour == 2 && $0.minute == 30 && $0.second % 10 == 0 }),
    ]

    private static func midnight(_ wall: WallTime) -> Bool { wall.hour == 0 && wall.minute == 0 && wall.second == 0 }

    static let zones = [
        "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo",
        "Pacific/Chatham",
    ]

    @Test("2,000 consecutive fire times increase and match the local wall time", arguments: expressions.indices, zones)
    func consecutiveFireTimes(expressionIndex: Int, zoneName: String) throws {
        let (expression, matches) = Self.expressions[expressionIndex]
        let schedule = try CronSchedule(expression, timeZone: zoneName)
        let zone = try #require(TimeZone(identifier: zoneName))
        // São Paulo stopped daylight saving in 2019; start where it still had it.
        let start = CronTestSupport.utc(zoneName == "America/Sao_Paulo" ? "2018-10-01T00:00:00Z" : "2026-10-01T00:00:00Z")
        let times = CronTestSupport.fires(schedule, after: start, count: 2000)
        #expect(times.count == 2000)
        var previous = start
        for time in times {
            guard time > previous else {
                let (this, before) = (CronTestSupport.iso(time), CronTestSupport.iso(previous))
                Issue.record("\(expression) in \(zoneName): \(this) does not follow \(before)")
                return
            }
            #expect(time.timeIntervalSince1970.rounded(.down) == time.timeIntervalSince1970)
            let wall = CronTestSupport.wallClock(time, zone)
            if !matches(wall) && !Self.isEndOfGapWithMatchingSlot(time, zone: zone, matches: matches) {
                Issue.record("\(expression) in \(zoneName): \(CronTestSupport.iso(time)) is local \(wall), which does not match")
                return
            }
            previous = time
        }
        // fireTimes is the same sequence, whatever the window and limit.
        let last = try #require(times.last)
        #expect(schedule.fireTimes(after: start, through: last, limit: 5000) == times)
        #expect(schedule.fireTimes(after: start, through: last, limit: 700) == Array(times.prefix(700)))
        #expect(schedule.fireTimes(after: times[999], through: last, limit: 5000) == Array(times.suffix(1000)))
        let justBefore = times[1499].addingTimeInterval(-0.5)
        #expect(schedule.fireTimes(after: start, through: justBefore, limit: 5000) == Array(times.prefix(1499)))
    }

    /// Whether `time` is the first instant after a spring-forward gap in which a matching wall time was skipped.
    private static func isEndOfGapWithMatchingSlot(_ time: Date, zone: TimeZone, matches: (WallTime) -> Bool) -> Bool {
        let before = zone.secondsFromGMT(for: time.addingTimeInterval(-1)), after = zone.secondsFromGMT(for: time)
        guard after > before else { return false }
        // The skipped wall times are [time + before, time + after), seen on a UTC calendar.
        let utc = TimeZone(secondsFromGMT: 0) ?? .gmt
        var slot = time.addingTimeInterval(TimeInterval(before))
        let end = time.addingTimeInterval(TimeInterval(after))
        while slot < end {
            if matches(CronTestSupport.wallClock(slot, utc)) { return true }
            slot = slot.addingTimeInterval(1)
        }
        return false
    }

    // MARK: Brute force around every transition

    /// Minute-resolution expressions for the brute-force comparison.
    static let minuteExpressions: [(String, @Sendable (WallTime) -> Bool)] = [
        ("* * * * *", { _ in true }),
        ("*/15 * * * *", { $0.minute % 15 == 0 }),
        ("*/7 0-3 * * *", { $0.minute % 7 == 0 && $0.hour <= 3 }),
        ("30 2 * * *", { $0.hour == 2 && $0.minute == 30 }),
        ("0 * * * *", { $0.minute == 0 }),
        ("0 2 * * *", { $0.hour == 2 && $0.minute == 0 }),
        ("0 1 * * *", { $0.hour == 1 && $0.minute == 0 }),
        ("45 2 * * *", { $0.hour == 2 && $0.minute == 45 }),
        ("0 0 * * *", { $0.hour == 0 && $0.minute == 0 }),
        ("0 23 * * *", { $0.hour == 23 && $0.minute == 0 }),
        ("59 1 * * *", { $0.hour == 1 && $0.minute == 59 }),
        ("0 3 * * *", { $0.hour == 3 && $0.minute == 0 }),
    ]

    static let transitionZones: [(String, String)] = [
        ("Europe/Berlin", "2026-01-01T00:00:00Z"), ("America/New_York", "2026-01-01T00:00:00Z"),
        ("Australia/Lord_Howe", "2026-01-01T00:00:00Z"), ("Pacific/Chatham", "2026-01-01T00:00:00Z"),
        ("America/Sao_Paulo", "2017-06-01T00:00:00Z"), ("Pacific/Apia", "2011-06-01T00:00:00Z"),
    ]

    /// Around each of a zone's next four transitions, minute by minute, a wall time fires at the first instant the
    /// clock reaches or passes it for the first time: a minute whose clock shows a new, later wall time fires when a
    /// matching wall time lies in (the latest wall time shown so far, its wall time]. Repeated wall times never
    /// fire again. `fireTimes` must give exactly these instants.
    @Test("brute-force reference around transitions", arguments: transitionZones)
    func bruteForceAroundTransitions(zoneName: String, from: String) throws {
        let zone = try #require(TimeZone(identifier: zoneName))
        let utc = TimeZone(secondsFromGMT: 0) ?? .gmt
        let schedules = try Self.minuteExpressions.map { try CronSchedule($0.0, timeZone: zoneName) }
        var transition = CronTestSupport.utc(from)
        for _ in 0..<4 {
            transition = try #require(zone.nextDaylightSavingTimeTransition(after: transition))
            let windowStart = transition.addingTimeInterval(-36 * 3600), windowEnd = transition.addingTimeInterval(36 * 3600)

            var expected = Array(repeating: [Date](), count: schedules.count)
            var latestWall = windowStart.addingTimeInterval(TimeInterval(zone.secondsFromGMT(for: windowStart)))
            var instant = windowStart.addingTimeInterval(60)
            while instant <= windowEnd {
                let wall = instant.addingTimeInterval(TimeInterval(zone.secondsFromGMT(for: instant)))
                if wall > latestWall {
                    // The wall times reached in this step: usually just `wall`; after a gap, the whole gap too.
                    var slots: [WallTime] = []
                    var slot = latestWall.addingTimeInterval(60)
                    while slot <= wall {
                        slots.append(CronTestSupport.wallClock(slot, utc))
                        slot = slot.addingTimeInterval(60)
                    }
                    for (index, entry) in Self.minuteExpressions.enumerated() where slots.contains(where: entry.1) {
                        expected[index].append(instant)
                    }
                    latestWall = wall
                }
                instant = instant.addingTimeInterval(60)
            }
            for (index, schedule) in schedules.enumerated() {
                let actual = schedule.fireTimes(after: windowStart, through: windowEnd, limit: 10_000)
                #expect(
                    actual.map(CronTestSupport.iso) == expected[index].map(CronTestSupport.iso),
                    "\(schedule.expression) in \(zoneName) around \(CronTestSupport.iso(transition))")
            }
        }
    }

    // MARK: Calendar arithmetic

    @Test func civilCalendarAgreesWithFoundation() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? .gmt
        // 1600-01-01 to 9999-12-31 (Foundation's Gregorian calendar is Julian before 1582).
        let first = CronSchedule.Civil.days(year: 1600, month: 1, day: 1)
        let last = CronSchedule.Civil.days(year: 9999, month: 12, day: 31)
        for days in stride(from: first, through: last, by: 97) {
            let date = Date(timeIntervalSince1970: TimeInterval(days * 86_400))
            let c = calendar.dateComponents([.year, .month, .day, .weekday], from: date)
            let civil = CronSchedule.Civil.date(fromDays: days)
            guard civil.year == c.year, civil.month == c.month, civil.day == c.day,
                CronSchedule.Civil.weekday(days: days) == (c.weekday ?? 0) - 1,
                CronSchedule.Civil.days(year: civil.year, month: civil.month, day: civil.day) == days
            else {
                Issue.record("day \(days): civil \(civil), Foundation \(c)")
                return
            }
        }
        // Round trip over a whole 400-year cycle, including negative years.
        for days in stride(from: -800_000, through: -800_000 + 146_097, by: 1) {
            let civil = CronSchedule.Civil.date(fromDays: days)
            if CronSchedule.Civil.days(year: civil.year, month: civil.month, day: civil.day) != days
                || civil.day > CronSchedule.Civil.daysInMonth(year: civil.year, month: civil.month)
            {
                Issue.record("day \(days): civil \(civil) does not round-trip")
                return
            }
        }
    }

    // MARK: Timing (printed, not asserted)

    @Test func measureNext() throws {
        let cases = [
            ("*/15 * * * *", "UTC"), ("*/15 * * * *", "Europe/Berlin"), ("0 0 29 2 1", "UTC"),
            ("0 0 29 2 1", "Europe/Berlin"),
        ]
        for (expression, zone) in cases {
            let schedule = try CronSchedule(expression, timeZone: zone)
            let count = 20_000
            var cursor = CronTestSupport.utc("2027-01-01T00:00:00Z")
            let clock = ContinuousClock()
            let elapsed = clock.measure {
                for _ in 0..<count {
                    guard let next = schedule.next(after: cursor) else { break }
                    cursor = next
                }
            }
            let micros = Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12
            let perCall = String(format: "%.2f", micros / Double(count))
            print("CronSchedule.next timing: '\(expression)' in \(zone): \(perCall) µs per call")
        }
    }
}
