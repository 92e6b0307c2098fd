import Foundation
import Testing

@testable import AgentBox

@Suite("CronSchedule.next(after:)")
struct CronScheduleNextTests {
    private func fires(_ expression: String, _ zone: String? = nil, after: String, count: Int) throws -> [String] {
        try CronTestSupport.fires(expression, zone: zone, after: after, count: count)
    }

    private func utc(_ text: String) -> Date { CronTestSupport.utc(text) }

    // MARK: Basics

    @Test func everyFifteenMinutes() throws {
        #expect(
            try fires("*/15 * * * *", after: "2027-01-01T00:07:30Z", count: 4) == [
                "2027-01-01T00:15:00Z", "2027-01-01T00:30:00Z", "2027-01-01T00:45:00Z", "2027-01-01T01:00:00Z",
            ])
    }

    @Test func nextIsStrictlyAfterTheDate() throws {
        let schedule = try CronSchedule("*/15 * * * *")
        #expect(schedule.next(after: utc("2027-01-01T00:15:00Z")) == utc("2027-01-01T00:30:00Z"))
        #expect(schedule.next(after: utc("2027-01-01T00:14:59Z")) == utc("2027-01-01T00:15:00Z"))
        let slot = utc("2027-01-01T00:15:00Z")
        #expect(schedule.next(after: slot.addingTimeInterval(-0.5)) == slot)
        #expect(schedule.next(after: slot.addingTimeInterval(-0.000_001)) == slot)
        #expect(schedule.next(after: slot.addingTimeInterval(0.5)) == utc("2027-01-01T00:30:00Z"))
    }

    @Test func fireTimesHaveNoFractionalSeconds() throws {
        let schedule = try CronSchedule("* * * * * *")
        let next = try #require(schedule.next(after: Date(timeIntervalSince1970: 1_800_000_000.75)))
        #expect(next.timeIntervalSince1970 == 1_800_000_001)
        let minute = try CronSchedule("* * * * *")
        let nextMinute = try #require(minute.next(after: Date(timeIntervalSince1970: 1_800_000_000.75)))
        #expect(nextMinute.timeIntervalSince1970 == 1_800_000_060)  // 2027-01-15T08:00:00.75Z -> 08:01:00Z
        #expect(nextMinute.timeIntervalSince1970.truncatingRemainder(dividingBy: 60) == 0)
    }

    @Test func workingHours() throws {
        // 2027-01-01 is a Friday.
        #expect(
            try fires("30 9-17/4 * * MON-FRI", after: "2027-01-01T12:00:00Z", count: 6) == [
                "2027-01-01T13:30:00Z", "2027-01-01T17:30:00Z", "2027-01-04T09:30:00Z", "2027-01-04T13:30:00Z",
                "2027-01-04T17:30:00Z", "2027-01-05T09:30:00Z",
            ])
    }

    @Test func namedMonths() throws {
        #expect(
            try fires("0 12 1 jan,JUL *", after: "2027-03-01T00:00:00Z", count: 3) == [
                "2027-07-01T12:00:00Z", "2028-01-01T12:00:00Z", "2028-07-01T12:00:00Z",
            ])
    }

    @Test func stepFromAValue() throws {
        #expect(
            try fires("10/20 */12 * * *", after: "2027-05-05T11:00:00Z", count: 4) == [
                "2027-05-05T12:10:00Z", "2027-05-05T12:30:00Z", "2027-05-05T12:50:00Z", "2027-05-06T00:10:00Z",
            ])
    }

    // MARK: Day-of-month / day-of-week

    @Test func dayOfMonthAndDayOfWeekBothRestrictedMeansEither() throws {
        // Every 13th and every Friday; Friday 2027-08-13 fires once.
        #expect(
            try fires("0 0 13 * 5", after: "2027-08-01T00:00:00Z", count: 8) == [
                "2027-08-06T00:00:00Z", "2027-08-13T00:00:00Z", "2027-08-20T00:00:00Z", "2027-08-27T00:00:00Z",
                "2027-09-03T00:00:00Z", "2027-09-10T00:00:00Z", "2027-09-13T00:00:00Z", "2027-09-17T00:00:00Z",
            ])
        // Days 1-7 and every Monday (not "the first Monday").
        #expect(
            try fires("0 0 1-7 * MON", after: "2026-12-31T12:00:00Z", count: 10) == [
                "2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z", "2027-01-03T00:00:00Z", "2027-01-04T00:00:00Z",
                "2027-01-05T00:00:00Z", "2027-01-06T00:00:00Z", "2027-01-07T00:00:00Z", "2027-01-11T00:00:00Z",
                "2027-01-18T00:00:00Z", "2027-01-25T00:00:00Z",
            ])
    }

    @Test func aStarDayFieldLeavesOnlyTheOtherOne() throws {
        #expect(
            try fires("0 0 13 * *", after: "2027-08-01T00:00:00Z", count: 3) == [
                "2027-08-13T00:00:00Z", "2027-09-13T00:00:00Z", "2027-10-13T00:00:00Z",
            ])
        #expect(
            try fires("0 0 * * 5", after: "2027-08-01T00:00:00Z", count: 3) == [
                "2027-08-06T00:00:00Z", "2027-08-13T00:00:00Z", "2027-08-20T00:00:00Z",
            ])
        #expect(
            try fires("0 0 ? * MON", after: "2027-01-01T00:00:00Z", count: 2) == [
                "2027-01-04T00:00:00Z", "2027-01-11T00:00:00Z",
            ])
        #expect(
            try fires("0 0 1 * ?", after: "2027-01-01T00:00:00Z", count: 2) == [
                "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z",
            ])
    }

    @Test func aSteppedStarDayFieldIsANDedAsInVixie() throws {
        // `*/2` starts with `*`, so day-of-month AND day-of-week: Mondays that are odd days of the month.
        #expect(
            try fires("0 0 */2 * 1", after: "2027-01-01T00:00:00Z", count: 8) == [
                "2027-01-11T00:00:00Z", "2027-01-25T00:00:00Z", "2027-02-01T00:00:00Z", "2027-02-15T00:00:00Z",
                "2027-03-01T00:00:00Z", "2027-03-15T00:00:00Z", "2027-03-29T00:00:00Z", "2027-04-05T00:00:00Z",
            ])
        // Likewise in day-of-week: the 1st of the month when it is a Sunday, Tuesday, Thursday or Saturday.
        #expect(
            try fires("0 0 1 * */2", after: "2027-01-01T00:00:00Z", count: 3) == [
                "2027-04-01T00:00:00Z", "2027-05-01T00:00:00Z", "2027-06-01T00:00:00Z",
            ])
    }

    // MARK: February 29 and month ends

    @Test func february29FiresOnlyInLeapYears() throws {
        #expect(
            try fires("0 0 29 2 *", after: "2025-03-01T00:00:00Z", count: 3) == [
                "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z",
            ])
        // 2100 is not a leap year: eight years from 2096 to 2104.
        #expect(
            try fires("0 0 29 2 *", after: "2096-03-01T00:00:00Z", count: 1) == ["2104-02-29T00:00:00Z"])
        // 2000 is.
        #expect(
            try fires("0 0 29 2 *", after: "1996-03-01T00:00:00Z", count: 1) == ["2000-02-29T00:00:00Z"])
        #expect(try fires("0 0 29 2 *", after: "2028-02-28T23:59:59Z", count: 1) == ["2028-02-29T00:00:00Z"])
        #expect(try fires("0 0 29 2 *", after: "2028-02-29T00:00:00Z", count: 1) == ["2032-02-29T00:00:00Z"])
    }

    @Test func february29OrMondayFiresEveryFebruaryMondayAndOnFebruary29() throws {
        // Neither day field starts with `*`: every Monday in February, and February 29 (a Tuesday in 2028).
        #expect(
            try fires("0 0 29 2 1", after: "2027-12-31T00:00:00Z", count: 12) == [
                "2028-02-07T00:00:00Z", "2028-02-14T00:00:00Z", "2028-02-21T00:00:00Z", "2028-02-28T00:00:00Z",
                "2028-02-29T00:00:00Z", "2029-02-05T00:00:00Z", "2029-02-12T00:00:00Z", "2029-02-19T00:00:00Z",
                "2029-02-26T00:00:00Z", "2030-02-04T00:00:00Z", "2030-02-11T00:00:00Z", "2030-02-18T00:00:00Z",
            ])
    }

    @Test func february29OnASundayIsRare() throws {
        // `*/7` is Sunday and starts with `*`: February 29 AND Sunday.
        #expect(
            try fires("0 0 29 2 */7", after: "2027-01-01T00:00:00Z", count: 3) == [
                "2032-02-29T00:00:00Z", "2060-02-29T00:00:00Z", "2088-02-29T00:00:00Z",
            ])
    }

    @Test func the31stSkipsShortMonths() throws {
        #expect(
            try fires("0 0 31 * *", after: "2027-01-01T00:00:00Z", count: 8) == [
                "2027-01-31T00:00:00Z", "2027-03-31T00:00:00Z", "2027-05-31T00:00:00Z", "2027-07-31T00:00:00Z",
                "2027-08-31T00:00:00Z", "2027-10-31T00:00:00Z", "2027-12-31T00:00:00Z", "2028-01-31T00:00:00Z",
            ])
        #expect(
            try fires("0 0 30 * *", after: "2027-01-01T00:00:00Z", count: 3) == [
                "2027-01-30T00:00:00Z", "2027-03-30T00:00:00Z", "2027-04-30T00:00:00Z",
            ])
        #expect(
            try fires("0 0 31 4,5,6 *", after: "2027-01-01T00:00:00Z", count: 2) == [
                "2027-05-31T00:00:00Z", "2028-05-31T00:00:00Z",
            ])
    }

    @Test func dayRollsOverMonthEnds() throws {
        #expect(try fires("0 0 * * *", after: "2027-02-28T12:00:00Z", count: 1) == ["2027-03-01T00:00:00Z"])
        #expect(
            try fires("0 0 * * *", after: "2028-02-28T12:00:00Z", count: 2) == [
                "2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z",
            ])
        #expect(try fires("0 0 * * *", after: "2027-04-30T00:00:00Z", count: 1) == ["2027-05-01T00:00:00Z"])
    }

    // MARK: Year rollover

    @Test func yearRollover() throws {
        #expect(try fires("0 0 1 1 *", after: "2026-12-31T23:59:59Z", count: 1) == ["2027-01-01T00:00:00Z"])
        #expect(try fires("0 0 1 1 *", after: "2027-01-01T00:00:00Z", count: 1) == ["2028-01-01T00:00:00Z"])
        #expect(try fires("59 23 31 12 *", after: "2026-12-31T23:58:59Z", count: 1) == ["2026-12-31T23:59:00Z"])
        #expect(
            try fires("59 23 31 12 *", after: "2026-12-31T23:59:00Z", count: 2) == [
                "2027-12-31T23:59:00Z", "2028-12-31T23:59:00Z",
            ])
        #expect(
            try fires("* * * * *", after: "2026-12-31T23:58:30Z", count: 2) == [
                "2026-12-31T23:59:00Z", "2027-01-01T00:00:00Z",
            ])
        #expect(
            try fires("59 59 23 31 12 *", after: "2026-12-31T23:59:59Z", count: 1) == ["2027-12-31T23:59:59Z"])
        #expect(
            try fires("* * * * * *", after: "2026-12-31T23:59:58Z", count: 2) == [
                "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z",
            ])
        // In a zone: midnight of January 1st in Tokyo is 15:00 UTC on December 31st.
        #expect(
            try fires("0 0 1 1 *", "Asia/Tokyo", after: "2026-12-31T14:59:59Z", count: 1) == ["2026-12-31T15:00:00Z"])
    }

    // MARK: Seconds

    @Test func sixFieldsWithSeconds() throws {
        #expect(
            try fires("*/10 * * * * *", after: "2027-01-01T00:00:05Z", count: 7) == [
                "2027-01-01T00:00:10Z", "2027-01-01T00:00:20Z", "2027-01-01T00:00:30Z", "2027-01-01T00:00:40Z",
                "2027-01-01T00:00:50Z", "2027-01-01T00:01:00Z", "2027-01-01T00:01:10Z",
            ])
        #expect(
            try fires("15,45 30 9 * * *", after: "2027-01-01T09:30:15Z", count: 3) == [
                "2027-01-01T09:30:45Z", "2027-01-02T09:30:15Z", "2027-01-02T09:30:45Z",
            ])
        #expect(
            try fires("30 0 0 * * *", after: "2027-01-01T00:00:30Z", count: 1) == ["2027-01-02T00:00:30Z"])
        #expect(
            try fires("0 0 * * * *", after: "2027-01-01T00:59:59Z", count: 1) == ["2027-01-01T01:00:00Z"])
    }

    @Test func tenThousandSecondsInARow() throws {
        let schedule = try CronSchedule("* * * * * *")
        let start = utc("2027-12-31T23:00:00Z")
        let times = CronTestSupport.fires(schedule, after: start, count: 10_000)
        #expect(times.count == 10_000)
        for (index, time) in times.enumerated() where time != start.addingTimeInterval(Double(index + 1)) {
            Issue.record("fire \(index) is \(CronTestSupport.iso(time))")
            break
        }
    }

    @Test func tenThousandFiresOfARareExpressionTerminate() throws {
        let schedule = try CronSchedule("0 0 29 2 1")
        let times = CronTestSupport.fires(schedule, after: utc("2027-01-01T00:00:00Z"), count: 10_000)
        #expect(times.count == 10_000)
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 < $1 })
    }

    // MARK: Time zones without daylight saving

    @Test func evaluatesInTheScheduleTimeZone() throws {
        #expect(try fires("0 9 * * *", "Asia/Kolkata", after: "2027-06-01T00:00:00Z", count: 2) == [
            "2027-06-01T03:30:00Z", "2027-06-02T03:30:00Z",
        ])
        #expect(try fires("0 9 * * *", "Asia/Tokyo", after: "2027-06-01T00:00:00Z", count: 1) == ["2027-06-02T00:00:00Z"])
        #expect(try fires("0 9 * * *", "Etc/GMT+5", after: "2027-06-01T00:00:00Z", count: 1) == ["2027-06-01T14:00:00Z"])
        // Berlin in summer (CEST, +2) and winter (CET, +1).
        #expect(try fires("0 9 * * *", "Europe/Berlin", after: "2027-07-01T00:00:00Z", count: 1) == ["2027-07-01T07:00:00Z"])
        #expect(try fires("0 9 * * *", "Europe/Berlin", after: "2027-01-01T00:00:00Z", count: 1) == ["2027-01-01T08:00:00Z"])
        // The day of week is the local one: Monday 00:30 in Tokyo is Sunday 15:30 UTC.
        #expect(try fires("30 0 * * MON", "Asia/Tokyo", after: "2027-01-01T00:00:00Z", count: 1) == ["2027-01-03T15:30:00Z"])
    }

    // MARK: One-shot

    @Test func oneShotFiresOnceIfStrictlyAfter() throws {
        let schedule = try CronSchedule("2027-01-01T10:00:00+01:00", timeZone: "Europe/Berlin")
        let instant = utc("2027-01-01T09:00:00Z")
        #expect(schedule.next(after: utc("2026-06-01T00:00:00Z")) == instant)
        #expect(schedule.next(after: instant.addingTimeInterval(-0.001)) == instant)
        #expect(schedule.next(after: instant) == nil)
        #expect(schedule.next(after: utc("2027-06-01T00:00:00Z")) == nil)
        let (early, late) = (utc("2026-01-01T00:00:00Z"), utc("2028-01-01T00:00:00Z"))
        #expect(schedule.fireTimes(after: early, through: late, limit: 10) == [instant])
        #expect(schedule.fireTimes(after: early, through: instant, limit: 10) == [instant])
        #expect(schedule.fireTimes(after: instant, through: late, limit: 10) == [])
        #expect(schedule.fireTimes(after: early, through: utc("2027-01-01T08:59:59Z"), limit: 10) == [])
        #expect(schedule.fireTimes(after: early, through: late, limit: 0) == [])
    }

    @Test func oneShotKeepsFractionalSeconds() throws {
        let schedule = try CronSchedule("2027-01-01T09:00:00.250Z")
        let instant = Date(timeIntervalSince1970: 1_798_794_000.25)
        #expect(schedule.next(after: utc("2027-01-01T09:00:00Z")) == instant)
        #expect(schedule.next(after: instant) == nil)
    }

    // MARK: fireTimes

    @Test func fireTimesIsAHalfOpenIntervalWithALimit() throws {
        let schedule = try CronSchedule("0 * * * *")
        let from = utc("2027-01-01T00:00:00Z"), through = utc("2027-01-01T05:00:00Z")
        #expect(schedule.fireTimes(after: from, through: through, limit: 100).map(CronTestSupport.iso) == [
            "2027-01-01T01:00:00Z", "2027-01-01T02:00:00Z", "2027-01-01T03:00:00Z", "2027-01-01T04:00:00Z",
            "2027-01-01T05:00:00Z",
        ])
        #expect(schedule.fireTimes(after: from, through: through, limit: 2).map(CronTestSupport.iso) == [
            "2027-01-01T01:00:00Z", "2027-01-01T02:00:00Z",
        ])
        #expect(schedule.fireTimes(after: from, through: through, limit: 0) == [])
        #expect(schedule.fireTimes(after: from, through: through, limit: -1) == [])
        #expect(schedule.fireTimes(after: through, through: from, limit: 10) == [])
        #expect(schedule.fireTimes(after: from, through: from, limit: 10) == [])
        #expect(schedule.fireTimes(after: from, through: utc("2027-01-01T00:59:59Z"), limit: 10) == [])
    }

    // MARK: Extreme dates

    @Test func extremeDatesDoNotCrash() throws {
        let schedule = try CronSchedule("0 0 29 2 *", timeZone: "Europe/Berlin")
        #expect(schedule.next(after: Date(timeIntervalSince1970: .infinity)) == nil)
        #expect(schedule.next(after: Date(timeIntervalSince1970: -.infinity)) == nil)
        #expect(schedule.next(after: Date(timeIntervalSince1970: .nan)) == nil)
        #expect(schedule.next(after: Date(timeIntervalSince1970: 1e300)) == nil)
        let farFuture = try #require(schedule.next(after: .distantFuture))
        #expect(farFuture > .distantFuture)
        let farPast = try #require(schedule.next(after: .distantPast))
        #expect(farPast > .distantPast)
        let everySecond = try CronSchedule("* * * * * *")
        #expect(everySecond.next(after: Date(timeIntervalSince1970: -1.5)) == Date(timeIntervalSince1970: -1))
        #expect(everySecond.next(after: Date(timeIntervalSince1970: -1)) == Date(timeIntervalSince1970: 0))
    }
}
