import Foundation
import NIOCore
import PostgresNIO

/// A `Date` as a `timestamptz`, rounded to the microsecond that Postgres keeps (postgres-nio's own encoding of `Date`
/// truncates, which can put a time read back a whole microsecond early). Whole seconds come back exactly.
struct PostgresTime: PostgresNonThrowingEncodable, PostgresArrayEncodable, PostgresDecodable, PostgresArrayDecodable, Sendable {
    var date: Date

    init(_ date: Date) {
        self.date = date
    }

    /// Microseconds from 1970 to 2000, where Postgres's timestamps count from.
    private static let epochOffset: Int64 = 946_684_800_000_000

    static var psqlType: PostgresDataType { .timestamptz }
    static var psqlFormat: PostgresFormat { .binary }
    static var psqlArrayType: PostgresDataType { .timestamptzArray }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        buffer.writeInteger(Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) - Self.epochOffset)
    }

    init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        guard type == .timestamptz || type == .timestamp, format == .binary, buffer.readableBytes == 8,
            let microseconds = buffer.readInteger(as: Int64.self)
        else { throw PostgresDecodingError.Code.typeMismatch }
        date = Date(timeIntervalSince1970: Double(microseconds + Self.epochOffset) / 1_000_000)
    }
}

extension Duration {
    /// Whole microseconds (rounded down), as Postgres intervals are kept.
    var microseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}
