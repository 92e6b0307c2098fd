import Foundation
import Testing

@testable import AgentBox

/// Daylight-saving behaviour. Transitions used (2027):
/// - Europe/Berlin spring forward Sun 2027-03-28 at 01:00Z: 02:00 CET -> 03:00 CEST (02:00-02:59 do not exist).
/// - Europe/Berlin fall back Sun 2027-10-31 at 01:00Z: 03:00 CEST -> 02:00 CET (02:00-02:59 occur twice:
///   00:00Z-00:59Z in CEST, then 01:00Z-01:59Z in CET).
/// - America/New_York spring forward Sun 2027-03-14 at 07:00Z: 02:00 EST -> 03:00 EDT.
/// - America/New_York fall back Sun 2027-11-07 at 06:00Z: 02:00 EDT -> 01:00 EST (01:00-01:59 occur twice:
///   05:00Z-05:59Z in EDT, then 06:00Z-06:59Z in EST).
@Suite("CronSchedule daylight saving")
struct CronScheduleDaylightSavingTests {
    private func fires(_ expression: String, _ zone: String, after: String, count: Int) throws -> [String] {
        try CronTestSupport.fires(expression, zone: zone, after: after, count: count)
    }

    private func next(_ expression: String, _ zone: String, after: String) throws -> String? {
        try CronSchedule(expression, timeZone: zone).next(after: CronTestSupport.utc(after)).map(CronTestSupport.iso)
    }

    // MARK: Europe/Berlin, spring forward

    @Test func berlinSpringForwardSkippedTimeFiresAtTheEndOfTheGap() throws {
        // 02:30 CET on the 27th, 03:00 CEST (the first instant after the gap) on the 28th, 02:30 CEST on the 29th.
        #expect(
            try fires("30 2 * * *", "Europe/Berlin", after: "2027-03-26T12:00:00Z", count: 3) == [
                "2027-03-27T01:30:00Z", "2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z",
            ])
        #expect(
            try fires("0 2 * * *", "Europe/Berlin", after: "2027-03-26T12:00:00Z", count: 3) == [
                "2027-03-27T01:00:00Z", "2027-03-28T01:00:00Z", "2027-03-29T00:00:00Z",
            ])
    }

    @Test func berlinSpringForwardHourlyFiresOnceAtThreeOClock() throws {
        // 01:00 CET, then 02:00 (skipped) and 03:00 CEST collapse into 01:00Z, then 04:00 CEST.
        #expect(
            try fires("0 * * * *", "Europe/Berlin", after: "2027-03-27T22:30:00Z", count: 5) == [
                "2027-03-27T23:00:00Z", "2027-03-28T00:00:00Z", "2027-03-28T01:00:00Z", "2027-03-28T02:00:00Z",
                "2027-03-28T03:00:00Z",
            ])
    }

    @Test func berlinSpringForwardQuarterHoursCollapseIntoOneFiring() throws {
        // 01:45 CET; 02:00, 02:15, 02:30, 02:45 (skipped) and 03:00 CEST fire once at 01:00Z; then 03:15 CEST.
        #expect(
            try fires("*/15 * * * *", "Europe/Berlin", after: "2027-03-28T00:30:00Z", count: 4) == [
                "2027-03-28T00:45:00Z", "2027-03-28T01:00:00Z", "2027-03-28T01:15:00Z", "2027-03-28T01:30:00Z",
            ])
    }

    @Test func berlinSpringForwardNextFromInsideAndAroundTheTransition() throws {
        // The last second before the gap, the transition itself, a date with a fraction just before it.
        #expect(try next("30 2 * * *", "Europe/Berlin", after: "2027-03-28T00:59:59Z") == "2027-03-28T01:00:00Z")
        #expect(try next("30 2 * * *", "Europe/Berlin", after: "2027-03-28T01:00:00Z") == "2027-03-29T00:30:00Z")
        #expect(try next("*/15 * * * *", "Europe/Berlin", after: "2027-03-28T01:00:00Z") == "2027-03-28T01:15:00Z")
        let schedule = try CronSchedule("30 2 * * *", timeZone: "Europe/Berlin")
        let transition = CronTestSupport.utc("2027-03-28T01:00:00Z")
        #expect(schedule.next(after: transition.addingTimeInterval(-0.25)) == transition)
    }

    // MARK: Europe/Berlin, fall back

    @Test func berlinFallBackRepeatedTimeFiresAtItsFirstOccurrenceOnly() throws {
        // 02:30 CEST on the 30th, 02:30 CEST (first pass) on the 31st, 02:30 CET on November 1st.
        #expect(
            try fires("30 2 * * *", "Europe/Berlin", after: "2027-10-29T12:00:00Z", count: 3) == [
                "2027-10-30T00:30:00Z", "2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z",
            ])
        #expect(
            try fires("0 2 * * *", "Europe/Berlin", after: "2027-10-29T12:00:00Z", count: 3) == [
                "2027-10-30T00:00:00Z", "2027-10-31T00:00:00Z", "2027-11-01T01:00:00Z",
            ])
    }

    @Test func berlinFallBackHourlySkipsTheSecondPass() throws {
        // 00:00, 01:00, 02:00 CEST, (02:00 CET does not fire), 03:00 CET.
        #expect(
            try fires("0 * * * *", "Europe/Berlin", after: "2027-10-30T21:30:00Z", count: 5) == [
                "2027-10-30T22:00:00Z", "2027-10-30T23:00:00Z", "2027-10-31T00:00:00Z", "2027-10-31T02:00:00Z",
                "2027-10-31T03:00:00Z",
            ])
    }

    @Test func berlinFallBackQuarterHoursSkipTheSecondPass() throws {
        #expect(
            try fires("*/15 * * * *", "Europe/Berlin", after: "2027-10-31T00:20:00Z", count: 4) == [
                "2027-10-31T00:30:00Z", "2027-10-31T00:45:00Z", "2027-10-31T02:00:00Z", "2027-10-31T02:15:00Z",
            ])
    }

    @Test func berlinFallBackNextFromInsideTheSecondPass() throws {
        // 01:15Z is 02:15 CET, in the second pass: nothing more fires until after the repeated hour.
        #expect(try next("30 2 * * *", "Europe/Berlin", after: "2027-10-31T01:15:00Z") == "2027-11-01T01:30:00Z")
        #expect(try next("*/15 * * * *", "Europe/Berlin", after: "2027-10-31T01:15:00Z") == "2027-10-31T02:00:00Z")
        #expect(try next("0 * * * *", "Europe/Berlin", after: "2027-10-31T01:00:00Z") == "2027-10-31T02:00:00Z")
        #expect(try next("* * * * *", "Europe/Berlin", after: "2027-10-31T01:30:00Z") == "2027-10-31T02:00:00Z")
        #expect(try next("* * * * * *", "Europe/Berlin", after: "2027-10-31T01:59:58Z") == "2027-10-31T02:00:00Z")
        #expect(try next("* * * * * *", "Europe/Berlin", after: "2027-10-31T01:00:00Z") == "2027-10-31T02:00:00Z")
        // At the first pass's last second the next slot is after the repeated hour too.
        #expect(try next("* * * * *", "Europe/Berlin", after: "2027-10-31T00:59:59Z") == "2027-10-31T02:00:00Z")
        #expect(try next("* * * * * *", "Europe/Berlin", after: "2027-10-31T00:59:58Z") == "2027-10-31T00:59:59Z")
        // Inside the first pass the next slot is still in the first pass.
        #expect(try next("* * * * *", "Europe/Berlin", after: "2027-10-31T00:30:30Z") == "2027-10-31T00:31:00Z")
        // A schedule outside the repeated hour is unaffected.
        #expect(try next("0 4 * * *", "Europe/Berlin", after: "2027-10-31T01:30:00Z") == "2027-10-31T03:00:00Z")
        #expect(try next("0 1 * * *", "Europe/Berlin", after: "2027-10-31T01:30:00Z") == "2027-11-01T00:00:00Z")
    }

    // MARK: America/New_York, spring forward

    @Test func newYorkSpringForward() throws {
        #expect(
            try fires("30 2 * * *", "America/New_York", after: "2027-03-12T12:00:00Z", count: 3) == [
                "2027-03-13T07:30:00Z", "2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z",
            ])
        #expect(
            try fires("0 2 * * *", "America/New_York", after: "2027-03-12T12:00:00Z", count: 3) == [
                "2027-03-13T07:00:00Z", "2027-03-14T07:00:00Z", "2027-03-15T06:00:00Z",
            ])
        #expect(
            try fires("0 1 * * *", "America/New_York", after: "2027-03-12T12:00:00Z", count: 3) == [
                "2027-03-13T06:00:00Z", "2027-03-14T06:00:00Z", "2027-03-15T05:00:00Z",
            ])
        // 01:00 EST, 02:00 (skipped) + 03:00 EDT once, 04:00 EDT.
        #expect(
            try fires("0 * * * *", "America/New_York", after: "2027-03-14T05:30:00Z", count: 3) == [
                "2027-03-14T06:00:00Z", "2027-03-14T07:00:00Z", "2027-03-14T08:00:00Z",
            ])
        #expect(
            try fires("*/15 * * * *", "America/New_York", after: "2027-03-14T06:40:00Z", count: 3) == [
                "2027-03-14T06:45:00Z", "2027-03-14T07:00:00Z", "2027-03-14T07:15:00Z",
            ])
        #expect(try next("30 2 * * *", "America/New_York", after: "2027-03-14T07:00:00Z") == "2027-03-15T06:30:00Z")
    }

    // MARK: America/New_York, fall back

    @Test func newYorkFallBack() throws {
        // 01:00 EDT on the 6th, 01:00 EDT (first pass) on the 7th, 01:00 EST on the 8th.
        #expect(
            try fires("0 1 * * *", "America/New_York", after: "2027-11-05T12:00:00Z", count: 3) == [
                "2027-11-06T05:00:00Z", "2027-11-07T05:00:00Z", "2027-11-08T06:00:00Z",
            ])
        // 02:00 exists once on the 7th (EST).
        #expect(
            try fires("0 2 * * *", "America/New_York", after: "2027-11-05T12:00:00Z", count: 3) == [
                "2027-11-06T06:00:00Z", "2027-11-07T07:00:00Z", "2027-11-08T07:00:00Z",
            ])
        #expect(
            try fires("30 2 * * *", "America/New_York", after: "2027-11-05T12:00:00Z", count: 3) == [
                "2027-11-06T06:30:00Z", "2027-11-07T07:30:00Z", "2027-11-08T07:30:00Z",
            ])
        // 00:00 EDT, 01:00 EDT, (01:00 EST does not fire), 02:00 EST.
        #expect(
            try fires("0 * * * *", "America/New_York", after: "2027-11-07T03:30:00Z", count: 4) == [
                "2027-11-07T04:00:00Z", "2027-11-07T05:00:00Z", "2027-11-07T07:00:00Z", "2027-11-07T08:00:00Z",
            ])
        #expect(
            try fires("*/15 * * * *", "America/New_York", after: "2027-11-07T05:20:00Z", count: 4) == [
                "2027-11-07T05:30:00Z", "2027-11-07T05:45:00Z", "2027-11-07T07:00:00Z", "2027-11-07T07:15:00Z",
            ])
    }

    @Test func newYorkFallBackNextFromInsideTheSecondPass() throws {
        // 06:30Z is 01:30 EST, the second pass of 01:00-01:59.
        #expect(try next("0 1 * * *", "America/New_York", after: "2027-11-07T06:30:00Z") == "2027-11-08T06:00:00Z")
        #expect(try next("30 1 * * *", "America/New_York", after: "2027-11-07T06:00:00Z") == "2027-11-08T06:30:00Z")
        #expect(try next("*/15 * * * *", "America/New_York", after: "2027-11-07T06:30:00Z") == "2027-11-07T07:00:00Z")
        #expect(try next("*/15 * * * *", "America/New_York", after: "2027-11-07T06:59:59Z") == "2027-11-07T07:00:00Z")
        #expect(try next("*/15 * * * *", "America/New_York", after: "2027-11-07T05:59:59Z") == "2027-11-07T07:00:00Z")
        #expect(try next("0 2 * * *", "America/New_York", after: "2027-11-07T06:30:00Z") == "2027-11-07T07:00:00Z")
    }

    // MARK: Other zones

    @Test func lordHoweHalfHourShifts() throws {
        // Spring forward Sun 2027-10-03 02:00 (+10:30) -> 02:30 (+11) at 15:30Z: 02:00 and 02:15 collapse into
        // 02:30, which fires once.
        #expect(
            try fires("0 2 * * *", "Australia/Lord_Howe", after: "2027-10-01T00:00:00Z", count: 4) == [
                "2027-10-01T15:30:00Z", "2027-10-02T15:30:00Z", "2027-10-03T15:00:00Z", "2027-10-04T15:00:00Z",
            ])
        #expect(
            try fires("*/15 * * * *", "Australia/Lord_Howe", after: "2027-10-02T15:00:00Z", count: 3) == [
                "2027-10-02T15:15:00Z", "2027-10-02T15:30:00Z", "2027-10-02T15:45:00Z",
            ])
        // Fall back Sun 2027-04-04 02:00 (+11) -> 01:30 (+10:30) at 15:00Z: 01:30-01:59 repeat.
        #expect(
            try fires("*/15 * * * *", "Australia/Lord_Howe", after: "2027-04-03T14:40:00Z", count: 3) == [
                "2027-04-03T14:45:00Z", "2027-04-03T15:30:00Z", "2027-04-03T15:45:00Z",
            ])
    }

    @Test func saoPauloMidnightGapAndRepeatedEvening() throws {
        // 2018-11-04: 00:00 (-03) -> 01:00 (-02): midnight does not exist and fires at 01:00 local.
        #expect(
            try fires("0 0 * * *", "America/Sao_Paulo", after: "2018-11-02T00:00:00Z", count: 4) == [
                "2018-11-02T03:00:00Z", "2018-11-03T03:00:00Z", "2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z",
            ])
        // 2019-02-17: 00:00 (-02) -> 23:00 on the 16th (-03): 23:00 on the 16th fires at its first occurrence.
        #expect(
            try fires("0 23 * * *", "America/Sao_Paulo", after: "2019-02-15T00:00:00Z", count: 4) == [
                "2019-02-15T01:00:00Z", "2019-02-16T01:00:00Z", "2019-02-17T01:00:00Z", "2019-02-18T02:00:00Z",
            ])
    }

    @Test func apiaSkippedAWholeDay() throws {
        // Samoa skipped 2011-12-30 (-10 -> +14 at 10:00Z): its noon fires at the first instant after the gap,
        // midnight of the 31st, which is also where the 31st's midnight fires (once).
        #expect(
            try fires("0 12 * * *", "Pacific/Apia", after: "2011-12-28T00:00:00Z", count: 5) == [
                "2011-12-28T22:00:00Z", "2011-12-29T22:00:00Z", "2011-12-30T10:00:00Z", "2011-12-30T22:00:00Z",
                "2011-12-31T22:00:00Z",
            ])
        #expect(
            try fires("0 0 * * *", "Pacific/Apia", after: "2011-12-28T00:00:00Z", count: 4) == [
                "2011-12-28T10:00:00Z", "2011-12-29T10:00:00Z", "2011-12-30T10:00:00Z", "2011-12-31T10:00:00Z",
            ])
    }

    @Test func chathamQuarterHourOffset() throws {
        // 2027-09-26 02:45 (+12:45) -> 03:45 (+13:45) at 14:00Z.
        #expect(
            try fires("45 2 * * *", "Pacific/Chatham", after: "2027-09-24T12:00:00Z", count: 3) == [
                "2027-09-24T14:00:00Z", "2027-09-25T14:00:00Z", "2027-09-26T13:00:00Z",
            ])
    }
}
