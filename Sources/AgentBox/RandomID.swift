/// Identifiers that cannot be guessed: a prefix and characters of `[a-z0-9]` from the system's cryptographic
/// generator.
public enum RandomID {
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")

    public static func make(prefix: String, length: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return prefix + String((0..<length).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }

    /// Whether `id` is `prefix` followed by exactly `length` characters of `[a-z0-9]`.
    public static func isValid(_ id: String, prefix: String, length: Int) -> Bool {
        id.hasPrefix(prefix) && id.utf8.count == prefix.utf8.count + length
            && id.utf8.dropFirst(prefix.utf8.count).allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }
}
