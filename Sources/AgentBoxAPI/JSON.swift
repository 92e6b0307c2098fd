import Foundation

/// The JSON coders every AgentBox component uses, so that dates are RFC 3339 everywhere.
///
/// Dates are written with fractional seconds (`2026-11-25T05:44:54.123Z`) and read with or without them.
public enum AgentBoxJSON {
    /// A new encoder with AgentBox's date format and sorted keys (stable output for tests and diffs).
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.format(date))
        }
        return encoder
    }

    /// A new decoder with AgentBox's date format.
    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = RFC3339.parse(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "'\(text)' is not an RFC 3339 date-time")
            }
            return date
        }
        return decoder
    }
}

/// RFC 3339 date-time formatting and parsing.
public enum RFC3339 {
    private static let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let withoutFraction = Date.ISO8601FormatStyle()

    /// Formats `date` in UTC with millisecond precision.
    public static func format(_ date: Date) -> String {
        withFraction.format(date)
    }

    /// Parses an RFC 3339 date-time with or without fractional seconds; `nil` when it is not one.
    public static func parse(_ text: String) -> Date? {
        (try? withFraction.parse(text)) ?? (try? withoutFraction.parse(text))
    }
}
