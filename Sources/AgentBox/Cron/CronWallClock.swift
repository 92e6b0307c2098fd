import Foundation

extension CronSchedule {
    /// Proleptic Gregorian calendar arithmetic on "wall seconds": a local date and time encoded as if it were UTC
    /// (seconds since 1970-01-01T00:00:00 on the wall clock). No time zone is involved here, so every wall time
    /// exists exactly once and the arithmetic is plain integer math.
    enum Civil {
        static let secondsPerDay = 86_400

        /// Days since 1970-01-01 of a date (month 1-12, day 1-31). The year is shifted to start in March so
        /// that the leap day is the last day of the shifted year; a 400-year era has exactly 146,097 days.
        static func days(year: Int, month: Int, day: Int) -> Int {
            let shiftedYear = month <= 2 ? year - 1 : year
            let era = floorDiv(shiftedYear, 400)
            let yearOfEra = shiftedYear - era * 400  // 0...399
            let shiftedMonth = (month + 9) % 12  // March = 0 ... February = 11
            let dayOfYear = (153 * shiftedMonth + 2) / 5 + day - 1  // 0...365
            let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
            return era * 146_097 + dayOfEra - 719_468  // 719,468 days from 0000-03-01 to 1970-01-01
        }

        /// The date `days` days after 1970-01-01 (the inverse of `days(year:month:day:)`).
        static func date(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
            let shifted = days + 719_468
            let era = floorDiv(shifted, 146_097)
            let dayOfEra = shifted - era * 146_097  // 0...146096
            let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
            let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
            let shiftedMonth = (5 * dayOfYear + 2) / 153
            let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
            let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
            return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
        }

        /// 0 = Sunday ... 6 = Saturday (1970-01-01 was a Thursday).
        static func weekday(days: Int) -> Int { floorMod(days + 4, 7) }

        static func isLeapYear(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

        static func daysInMonth(year: Int, month: Int) -> Int {
            switch month {
            case 2: isLeapYear(year) ? 29 : 28
            case 4, 6, 9, 11: 30
            default: 31
            }
        }

        static func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
        static func floorMod(_ a: Int, _ b: Int) -> Int { a - floorDiv(a, b) * b }
    }

    /// Conversions between instants and wall seconds in one time zone, with cron's daylight-saving rules.
    ///
    /// `instant(forWall:)` is non-decreasing in its argument: a wall time that occurs twice maps to its first
    /// occurrence, and every wall time inside a spring-forward gap maps to the first instant after the gap (which
    /// is also where the first wall time after the gap maps). `next(after:)` relies on this monotonicity.
    struct Zone {
        let timeZone: TimeZone

        /// UTC offset in seconds at instant `t` (seconds since 1970).
        func offset(at t: Int) -> Int {
            timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(t)))
        }

        /// The wall seconds shown by the clock at instant `t`.
        func wall(at t: Int) -> Int { t + offset(at: t) }

        /// The instant at which the wall time `wall` fires: its only occurrence; its first occurrence when the clock
        /// shows it twice (fall-back); or, when the clock skips it (spring-forward gap), the first instant after the
        /// gap.
        func instant(forWall wall: Int) -> Int {
            // Every instant showing `wall` lies within a day of it, and real zones change their offset at most once
            // within two days, so the offsets a day before and a day after are the only candidates.
            let offsetBefore = offset(at: wall - Civil.secondsPerDay)
            let offsetAfter = offset(at: wall + Civil.secondsPerDay)
            let early = wall - max(offsetBefore, offsetAfter)
            let late = wall - min(offsetBefore, offsetAfter)
            if self.wall(at: early) == wall { return early }  // the only, or the first, occurrence
            if self.wall(at: late) == wall { return late }
            if offsetAfter > offsetBefore {
                // A gap: before the transition the clock is behind `wall`, from it on it is past `wall`.
                // The transition instant is the first instant whose wall time exceeds `wall`.
                return Self.firstInstant(after: early, upTo: late) { self.wall(at: $0) > wall }
            }
            // Unreachable for real zones (it would take two offset changes within two days); any answer keeps
            // `next(after:)` correct, which checks that what it returns is after its argument.
            return late
        }

        /// The smallest `t` in `(low, high]` for which `isPast(t)` holds, assuming it is false at `low`, true at
        /// `high`, and switches once (binary search; about 12 steps for an hour).
        static func firstInstant(after low: Int, upTo high: Int, where isPast: (Int) -> Bool) -> Int {
            var low = low, high = high
            while high - low > 1 {
                let middle = low + (high - low) / 2
                if isPast(middle) { high = middle } else { low = middle }
            }
            return high
        }
    }
}
