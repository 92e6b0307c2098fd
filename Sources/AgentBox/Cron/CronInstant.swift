import Foundation

extension CronSchedule {
    /// Whether `text` starts like an RFC 3339 date (`YYYY-MM-DD`), which no cron expression does.
    static func looksLikeInstant(_ text: String) -> Bool {
        let bytes = Array(text.utf8.prefix(10))
        guard bytes.count == 10 else { return false }
        return bytes.enumerated().allSatisfy { index, byte in
            index == 4 || index == 7 ? byte == UInt8(ascii: "-") : digit(byte) != nil
        }
    }

    /// Parses an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`. `T` and `Z` may be lower
    /// case and the `T` may be a space (RFC 3339 §5.6). Leap seconds (`:60`) are rejected.
    static func parseInstant(_ text: String) throws(CronScheduleError) -> Date {
        func failure(_ reason: String) -> CronScheduleError {
            .schedule(
                "invalid RFC 3339 instant '\(text)': \(reason) "
                    + "(expected e.g. 2027-01-01T09:00:00Z or 2027-01-01T10:00:00+01:00)")
        }
        let bytes = Array(text.utf8)
        var position = 0

        func digits(_ count: Int, _ what: String) throws(CronScheduleError) -> Int {
            var number = 0
            for _ in 0..<count {
                guard position < bytes.count, let digit = Self.digit(bytes[position]) else {
                    throw failure("\(what) needs \(count) digits")
                }
                number = number * 10 + digit
                position += 1
            }
            return number
        }
        func expect(_ characters: String, _ what: String) throws(CronScheduleError) {
            guard position < bytes.count, characters.utf8.contains(bytes[position]) else {
                throw failure("expected \(what) at offset \(position)")
            }
            position += 1
        }
        func check(_ value: Int, _ range: ClosedRange<Int>, _ what: String) throws(CronScheduleError) {
            guard range.contains(value) else {
                throw failure("\(what) \(value) is out of range \(range.lowerBound)-\(range.upperBound)")
            }
        }

        let year = try digits(4, "year")
        try expect("-", "'-'")
        let month = try digits(2, "month")
        try expect("-", "'-'")
        let day = try digits(2, "day")
        try expect("Tt ", "'T'")
        let hour = try digits(2, "hour")
        try expect(":", "':'")
        let minute = try digits(2, "minute")
        try expect(":", "':'")
        let second = try digits(2, "second")

        var fraction = 0.0
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            let start = position
            while position < bytes.count, Self.digit(bytes[position]) != nil { position += 1 }
            guard position > start else { throw failure("fractional seconds need at least one digit") }
            fraction = Double("0." + String(decoding: bytes[start..<position], as: UTF8.self)) ?? 0
        }

        var offset = 0
        guard position < bytes.count else { throw failure("missing time zone offset ('Z' or +HH:MM)") }
        switch bytes[position] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            position += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = bytes[position] == UInt8(ascii: "-") ? -1 : 1
            position += 1
            let offsetHour = try digits(2, "offset hour")
            try expect(":", "':' in the offset")
            let offsetMinute = try digits(2, "offset minute")
            try check(offsetHour, 0...23, "offset hour")
            try check(offsetMinute, 0...59, "offset minute")
            offset = sign * (offsetHour * 3600 + offsetMinute * 60)
        default:
            throw failure("expected 'Z' or an offset +HH:MM at offset \(position)")
        }
        guard position == bytes.count else { throw failure("unexpected text after the offset") }

        try check(month, 1...12, "month")
        try check(day, 1...Civil.daysInMonth(year: year, month: month), "day")
        try check(hour, 0...23, "hour")
        try check(minute, 0...59, "minute")
        if second == 60 { throw failure("leap second 60 is not supported") }
        try check(second, 0...59, "second")

        let days = Civil.days(year: year, month: month, day: day)
        let wall = days * Civil.secondsPerDay + hour * 3600 + minute * 60 + second
        return Date(timeIntervalSince1970: TimeInterval(wall - offset) + fraction)
    }

    private static func digit(_ byte: UInt8) -> Int? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? Int(byte - UInt8(ascii: "0")) : nil
    }
}
