extension CronSchedule {
    /// The values each field of a cron expression allows, as bit sets (bit n set = value n allowed), and the search
    /// for the next wall time they allow.
    struct Pattern: Sendable, Hashable {
        /// How day-of-month and day-of-week combine (Vixie cron's rule).
        enum DayRule: Sendable, Hashable {
            /// Either field starts with `*` (or `?`): a day must match both bit sets. A plain `*` allows every
            /// day, so in effect only the other field restricts; but `*/2` still restricts, and is ANDed.
            case both
            /// Neither field starts with `*`: a day matches when either field matches.
            case either
        }

        var seconds: UInt64  // bits 0-59
        var minutes: UInt64  // bits 0-59
        var hours: UInt64  // bits 0-23
        var daysOfMonth: UInt64  // bits 1-31
        var months: UInt64  // bits 1-12
        var daysOfWeek: UInt64  // bits 0-6, Sunday = 0 (a 7 in the expression is folded into 0)
        var dayRule: DayRule

        // MARK: Parsing

        /// Parses the 5 or 6 whitespace-separated fields of `expression` (macros already expanded).
        init(fields expression: String) throws(CronScheduleError) {
            let fields = expression.split(whereSeparator: { $0.isWhitespace })
            let units: [Unit]
            switch fields.count {
            case 5: units = [.minute, .hour, .dayOfMonth, .month, .dayOfWeek]
            case 6: units = [.second, .minute, .hour, .dayOfMonth, .month, .dayOfWeek]
            default:
                throw .schedule(
                    "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with a leading second), "
                        + "got \(fields.count) in '\(expression)'")
            }
            var bits: [Unit: UInt64] = [:]
            for (unit, text) in zip(units, fields) {
                bits[unit] = try Self.parseField(text, as: unit)
            }
            seconds = bits[.second] ?? 1  // 5 fields: second 0
            minutes = bits[.minute] ?? 0
            hours = bits[.hour] ?? 0
            daysOfMonth = bits[.dayOfMonth] ?? 0
            months = bits[.month] ?? 0
            daysOfWeek = bits[.dayOfWeek] ?? 0
            // Vixie sets DOM_STAR / DOW_STAR from the first character of the field, before any step or list.
            let dayFieldIsStar = { (text: Substring) in text.first == "*" || text.first == "?" }
            let dayOfMonthText = fields[fields.count - 3], dayOfWeekText = fields[fields.count - 1]
            dayRule = dayFieldIsStar(dayOfMonthText) || dayFieldIsStar(dayOfWeekText) ? .both : .either

            // Only day-of-month against month can make an expression impossible (e.g. 30 2, 31 4): with the
            // `.either` rule the weekdays always match somewhere, and with `.both` every existing month-day falls
            // on every weekday within the 400-year Gregorian cycle. The search below covers a whole cycle anyway.
            let epoch = Civil.days(year: 2000, month: 1, day: 1) * Civil.secondsPerDay
            if firstMatch(atOrAfterWall: epoch) == nil {
                let monthText = fields[fields.count - 2]
                let weekdays = dayRule == .both && daysOfWeek != 0x7F ? " on day-of-week '\(dayOfWeekText)'" : ""
                throw .schedule(
                    "expression never fires: day-of-month '\(dayOfMonthText)' does not occur in month '\(monthText)'"
                        + weekdays)
            }
        }

        /// A field of a cron expression.
        enum Unit: Sendable, Hashable {
            case second, minute, hour, dayOfMonth, month, dayOfWeek

            var name: String {
                switch self {
                case .second: "second"
                case .minute: "minute"
                case .hour: "hour"
                case .dayOfMonth: "day-of-month"
                case .month: "month"
                case .dayOfWeek: "day-of-week"
                }
            }

            /// The values the field accepts. Day-of-week accepts 0-7, both 0 and 7 meaning Sunday.
            var range: ClosedRange<Int> {
                switch self {
                case .second, .minute: 0...59
                case .hour: 0...23
                case .dayOfMonth: 1...31
                case .month: 1...12
                case .dayOfWeek: 0...7
                }
            }

            /// Three-letter names, case-insensitive, for the values starting at `range.lowerBound`.
            var names: [String] {
                switch self {
                case .month: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
                case .dayOfWeek: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
                default: []
                }
            }
        }

        /// Parses one field: a comma-separated list of `*`, `?` (day fields), `n`, `a-b`, `*/s`, `a-b/s` and `a/s`
        /// (= `a-max/s`, as Vixie cron). Returns the allowed values as a bit set (day-of-week 7 folded into 0).
        static func parseField(_ text: Substring, as unit: Unit) throws(CronScheduleError) -> UInt64 {
            let field = "field '\(unit.name)'"
            var bits: UInt64 = 0
            for element in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard !element.isEmpty else { throw .schedule("\(field) has an empty list element in '\(text)'") }
                let parts = element.split(separator: "/", omittingEmptySubsequences: false)
                guard parts.count <= 2 else { throw .schedule("\(field) element '\(element)' has more than one '/'") }
                let base = parts[0]
                guard !base.isEmpty else { throw .schedule("\(field) element '\(element)' has nothing before '/'") }

                var step = 1
                if parts.count == 2 {
                    let stepText = parts[1]
                    guard !stepText.isEmpty, stepText.allSatisfy(isDigit), let number = Int(stepText) else {
                        throw .schedule("\(field) step '\(stepText)' in '\(element)' is not a number")
                    }
                    guard number > 0 else {
                        throw .schedule("\(field) step 0 in '\(element)' is not allowed (use 1 or more)")
                    }
                    step = number
                }

                let low: Int, high: Int
                if base == "*" || base == "?" {
                    if base == "?" {
                        guard unit == .dayOfMonth || unit == .dayOfWeek else {
                            throw .schedule("\(field) '?' is only allowed in day-of-month and day-of-week")
                        }
                        guard parts.count == 1 else {
                            throw .schedule("\(field) '?' cannot take a step in '\(element)'")
                        }
                    }
                    (low, high) = (unit.range.lowerBound, unit.range.upperBound)
                } else if let dash = base.firstIndex(of: "-") {
                    let lowText = base[..<dash], highText = base[base.index(after: dash)...]
                    guard !lowText.isEmpty, !highText.isEmpty, !highText.contains("-") else {
                        throw .schedule("\(field) range '\(base)' is not of the form a-b")
                    }
                    low = try value(lowText, unit: unit)
                    var upper = try value(highText, unit: unit)
                    // `FRI-SUN` reads as Friday to Sunday: SUN closing a range that starts later in the week is 7.
                    if unit == .dayOfWeek, upper == 0, low > 0, highText.lowercased() == "sun" { upper = 7 }
                    high = upper
                    guard low <= high else {
                        throw .schedule(
                            "\(field) range '\(base)' is descending (\(low) > \(high)); ranges must be ascending")
                    }
                } else {
                    low = try value(base, unit: unit)
                    high = parts.count == 2 ? unit.range.upperBound : low  // `a/s` means `a-max/s`
                }

                for allowed in stride(from: low, through: high, by: step) {
                    bits |= 1 << UInt64(allowed)
                }
            }
            if unit == .dayOfWeek, bits & (1 << 7) != 0 {
                bits = (bits | 1) & ~(1 << 7)  // 7 is Sunday, like 0
            }
            return bits
        }

        /// A number or (month, day-of-week) a three-letter name, checked against the field's range.
        private static func value(_ text: Substring, unit: Unit) throws(CronScheduleError) -> Int {
            let field = "field '\(unit.name)'"
            if text.allSatisfy(isDigit) {
                // Too many digits for an Int is out of range too.
                guard let number = Int(text), unit.range.contains(number) else {
                    throw .schedule(
                        "\(field) value \(text) is out of range \(unit.range.lowerBound)-\(unit.range.upperBound)")
                }
                return number
            }
            if let index = unit.names.firstIndex(of: text.lowercased()) {
                return unit.range.lowerBound + index
            }
            switch unit {
            case .month:
                throw .schedule("\(field) value '\(text)' is neither a number 1-12 nor a month name JAN-DEC")
            case .dayOfWeek:
                throw .schedule("\(field) value '\(text)' is neither a number 0-7 nor a day name SUN-SAT")
            default:
                throw .schedule("\(field) value '\(text)' is not a number")
            }
        }

        private static func isDigit(_ character: Character) -> Bool { character.isASCII && character.isNumber }

        // MARK: Matching

        /// The days (bits 1-31) of a month that the day-of-month and day-of-week fields allow.
        func days(year: Int, month: Int) -> UInt64 {
            let length = Civil.daysInMonth(year: year, month: month)
            let existing: UInt64 = ((1 << UInt64(length)) - 1) << 1
            // Day d falls on weekday (first + d - 1) % 7. Rotate the 7-bit weekday set so that bit k is the
            // weekday of day k + 1, then repeat it for 5 weeks and shift it onto the day bits.
            let first = UInt64(Civil.weekday(days: Civil.days(year: year, month: month, day: 1)))
            let week = ((daysOfWeek >> first) | (daysOfWeek << (7 - first))) & 0x7F
            let byWeekday = ((week | week << 7 | week << 14 | week << 21 | week << 28) << 1) & existing
            let byDay = daysOfMonth & existing
            return dayRule == .both ? byDay & byWeekday : byDay | byWeekday
        }

        /// The first wall time (wall seconds, see `Civil`) at or after `start` that matches, searching field by
        /// field (month, day, hour, minute, second) from the largest down, and resetting the smaller fields whenever
        /// a larger one moves. Nil when nothing matches within 400 years, a whole Gregorian cycle, hence never.
        func firstMatch(atOrAfterWall start: Int) -> Int? {
            let startDays = Civil.floorDiv(start, Civil.secondsPerDay)
            let startSecond = start - startDays * Civil.secondsPerDay
            var (year, month, day) = Civil.date(fromDays: startDays)
            var hour = startSecond / 3600, minute = startSecond / 60 % 60, second = startSecond % 60
            let lastYear = year + 400

            func startOfDay() { (hour, minute, second) = (0, 0, 0) }
            while year <= lastYear {
                guard let nextMonth = Self.first(in: months, atOrAfter: month) else {
                    (year, month, day) = (year + 1, 1, 1)
                    startOfDay()
                    continue
                }
                if nextMonth != month {
                    (month, day) = (nextMonth, 1)
                    startOfDay()
                }
                guard let nextDay = Self.first(in: days(year: year, month: month), atOrAfter: day) else {
                    (month, day) = (month + 1, 1)  // 13 finds no month, and moves to the next year
                    startOfDay()
                    continue
                }
                if nextDay != day {
                    day = nextDay
                    startOfDay()
                }
                guard let nextHour = Self.first(in: hours, atOrAfter: hour) else {
                    day += 1  // past the month's end finds no day, and moves to the next month
                    startOfDay()
                    continue
                }
                if nextHour != hour { (hour, minute, second) = (nextHour, 0, 0) }
                guard let nextMinute = Self.first(in: minutes, atOrAfter: minute) else {
                    (hour, minute, second) = (hour + 1, 0, 0)
                    continue
                }
                if nextMinute != minute { (minute, second) = (nextMinute, 0) }
                guard let nextSecond = Self.first(in: seconds, atOrAfter: second) else {
                    (minute, second) = (minute + 1, 0)
                    continue
                }
                let days = Civil.days(year: year, month: month, day: day)
                return days * Civil.secondsPerDay + hour * 3600 + minute * 60 + nextSecond
            }
            return nil
        }

        /// The smallest value in `bits` that is at least `value`.
        static func first(in bits: UInt64, atOrAfter value: Int) -> Int? {
            guard value < 64 else { return nil }
            let candidates = bits & (UInt64.max << UInt64(max(value, 0)))
            return candidates == 0 ? nil : candidates.trailingZeroBitCount
        }
    }
}
