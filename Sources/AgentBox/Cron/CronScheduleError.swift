/// Why a schedule or its time zone was rejected by `CronSchedule.init`.
public struct CronScheduleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The request field that is wrong.
    public enum Field: String, Sendable {
        case schedule, timezone
    }

    /// Which request field is wrong.
    public let field: Field
    /// A human message naming the part that is wrong, prefixed with the field, e.g.
    /// "schedule: field 'hour' value 25 is out of range 0-23" or
    /// "timezone: unknown IANA time zone 'Mars/Olympus'".
    public let detail: String

    public var description: String { detail }

    init(_ field: Field, _ message: String) {
        self.field = field
        self.detail = "\(field.rawValue): \(message)"
    }

    static func schedule(_ message: String) -> CronScheduleError { CronScheduleError(.schedule, message) }
    static func timezone(_ message: String) -> CronScheduleError { CronScheduleError(.timezone, message) }
}
