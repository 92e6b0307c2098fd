import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// AWS Signature Version 4: signs a request with a secret key, as S3 and S3-compatible servers verify it.
///
/// Each step is a function of its own, because a server answers every mistake with the same
/// `SignatureDoesNotMatch`; the tests check each step against AWS's published examples.
/// ```swift
/// let signer = SigV4Signer(accessKey: "AKID…", secretKey: "…", region: "us-east-1", service: "s3")
/// let authorization = signer.authorization(
///     method: "GET", path: "/bucket/key", query: [], headers: [("host", "127.0.0.1:8333"), ("x-amz-date", amzDate)],
///     payloadHash: SigV4Signer.emptyPayloadHash, date: now)
/// ```
public struct SigV4Signer: Sendable {
    public let accessKey: String
    public let secretKey: String
    public let region: String
    public let service: String

    public init(accessKey: String, secretKey: String, region: String, service: String = "s3") {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.region = region
        self.service = service
    }

    /// The SHA-256 of an empty body.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    /// The payload hash of a request whose body is not signed (its bytes are then protected by TLS only).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    /// `x-amz-date`'s form of a time: `20150830T123600Z` (UTC).
    public static func amzDate(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// SigV4's URI encoding: every byte of the UTF-8 form except the unreserved characters (`A–Z a–z 0–9 - _ . ~`)
    /// becomes `%XX` (uppercase hex); `/` stays when `keepSlash` (an object key in a path), and is encoded otherwise
    /// (a query name or value). A space is `%20`, never `+`.
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where keepSlash:
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0f)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The canonical URI of a path given unencoded (`/bucket/a b.txt` → `/bucket/a%20b.txt`). S3 encodes the path
    /// once and does not normalize it (`//` and `.` stay, as they are part of keys).
    public static func canonicalURI(_ path: String) -> String {
        path.isEmpty ? "/" : uriEncode(path, keepSlash: true)
    }

    /// The canonical query string of unencoded name–value pairs: each encoded, sorted by name then value (bytewise,
    /// on the encoded forms), joined with `&`. It is also the query string the request is sent with.
    public static func canonicalQuery(_ items: [(String, String)]) -> String {
        items.map { (uriEncode($0.0, keepSlash: false), uriEncode($0.1, keepSlash: false)) }
            .sorted { $0.0 == $1.0 ? Array($0.1.utf8).lexicographicallyPrecedes(Array($1.1.utf8)) : Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// The canonical headers block (`name:value\n` each, names lowercase and sorted, values trimmed with inner runs of
    /// spaces made one, repeated names joined with `,` in their order) and the signed-headers list (`host;x-amz-date`).
    public static func canonicalHeaders(_ headers: [(String, String)]) -> (block: String, signed: String) {
        var values: [String: [String]] = [:]
        for (name, value) in headers {
            let trimmed = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            values[name.lowercased(), default: []].append(trimmed)
        }
        let names = values.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let block = names.map { "\($0):\(values[$0]!.joined(separator: ","))\n" }.joined()
        return (block, names.joined(separator: ";"))
    }

    /// Step 1: the canonical request.
    public func canonicalRequest(
        method: String, path: String, query: [(String, String)], headers: [(String, String)],
        payloadHash: String
    ) -> String {
        let canonical = Self.canonicalHeaders(headers)
        return [
            method, Self.canonicalURI(path), Self.canonicalQuery(query), canonical.block, canonical.signed, payloadHash,
        ].joined(separator: "\n")
    }

    /// The credential scope: `20150830/us-east-1/s3/aws4_request`.
    public func scope(_ date: Date) -> String {
        "\(Self.amzDate(date).prefix(8))/\(region)/\(service)/aws4_request"
    }

    /// Step 2: the string to sign.
    public func stringToSign(canonicalRequest: String, date: Date) -> String {
        let hash = Hex.encode(SHA256.hash(data: Data(canonicalRequest.utf8)))
        return ["AWS4-HMAC-SHA256", Self.amzDate(date), scope(date), hash].joined(separator: "\n")
    }

    /// Step 3: the signing key, derived from the secret by HMAC-SHA256 over the day, the region, the service and
    /// `aws4_request`.
    public func signingKey(_ date: Date) -> SymmetricKey {
        var key = SymmetricKey(data: Data("AWS4\(secretKey)".utf8))
        for part in [String(Self.amzDate(date).prefix(8)), region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }

    /// Step 4: the signature (lowercase hex) of a string to sign.
    public func signature(stringToSign: String, date: Date) -> String {
        Hex.encode(Data(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: signingKey(date))))
    }

    /// The `Authorization` header of a request whose headers (`host` and `x-amz-date` among them) are all signed.
    public func authorization(
        method: String, path: String, query: [(String, String)], headers: [(String, String)],
        payloadHash: String, date: Date
    ) -> String {
        let canonical = canonicalRequest(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash)
        let signed = Self.canonicalHeaders(headers).signed
        let signature = signature(stringToSign: stringToSign(canonicalRequest: canonical, date: date), date: date)
        return "AWS4-HMAC-SHA256 Credential=\(accessKey)/\(scope(date)), SignedHeaders=\(signed), Signature=\(signature)"
    }
}
