import Foundation

/// Where an S3-compatible bucket is and how to sign for it.
///
/// Usually parsed from one URL, which keeps a deployment's setting in one string:
/// ```swift
/// let config = try S3Configuration(url: "s3://ACCESS:SECRET@127.0.0.1:8333/checkpoints?region=us-east-1")
/// // endpoint http://127.0.0.1:8333 (http for loopback hosts, https otherwise; `?scheme=http` chooses)
/// ```
/// Requests use path-style URLs (`http://host:port/bucket/key`), which every S3-compatible server accepts.
public struct S3Configuration: Sendable, Equatable, CustomStringConvertible {
    /// `scheme://host[:port]`, without the bucket.
    public var endpoint: URL
    public var bucket: String
    public var region: String
    public var accessKey: String
    public var secretKey: String

    public init(endpoint: URL, bucket: String, region: String = "us-east-1", accessKey: String, secretKey: String) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        self.accessKey = accessKey
        self.secretKey = secretKey
    }

    /// Parses `s3://ACCESS:SECRET@host[:port]/bucket[?region=R][&scheme=http|https]`.
    ///
    /// The access key and secret are percent-decoded (a secret's `/` or `+` is written `%2F`, `%2B`). The scheme is
    /// `http` for `localhost`, `127.0.0.0/8` and `::1`, `https` for any other host, unless `scheme` says; an
    /// `http://` or `https://` URL of the same form chooses its scheme itself.
    public init(url text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            ["s3", "http", "https"].contains(scheme)
        else { throw BlobError(.invalidArgument, "not an s3:// URL: \(Self.redacted(text))") }
        guard let host = components.host, !host.isEmpty else {
            throw BlobError(.invalidArgument, "the S3 URL has no host: \(Self.redacted(text))")
        }
        guard let user = components.percentEncodedUser, let password = components.percentEncodedPassword,
            let accessKey = user.removingPercentEncoding, let secretKey = password.removingPercentEncoding,
            !accessKey.isEmpty, !secretKey.isEmpty
        else { throw BlobError(.invalidArgument, "the S3 URL has no ACCESS:SECRET@ credentials: \(Self.redacted(text))") }
        let bucket = components.path.split(separator: "/").map(String.init)
        guard bucket.count == 1, Self.isValidBucket(bucket[0]) else {
            throw BlobError(.invalidArgument, "the S3 URL's path must be one bucket name (3–63 of a–z 0–9 . -): \(components.path)")
        }
        var region = "us-east-1"
        var chosenScheme: String? = scheme == "s3" ? nil : scheme
        for item in components.queryItems ?? [] {
            switch item.name {
            case "region":
                guard let value = item.value, !value.isEmpty else { throw BlobError(.invalidArgument, "an empty region") }
                region = value
            case "scheme":
                guard let value = item.value?.lowercased(), value == "http" || value == "https" else {
                    throw BlobError(.invalidArgument, "scheme must be http or https")
                }
                chosenScheme = value
            default:
                throw BlobError(.invalidArgument, "unknown S3 URL parameter \(item.name) (known: region, scheme)")
            }
        }
        let finalScheme = chosenScheme ?? (Self.isLoopback(host) ? "http" : "https")
        var endpoint = URLComponents()
        endpoint.scheme = finalScheme
        endpoint.host = host
        endpoint.port = components.port
        guard let endpointURL = endpoint.url else { throw BlobError(.invalidArgument, "a bad S3 endpoint \(host)") }
        self.init(endpoint: endpointURL, bucket: bucket[0], region: region, accessKey: accessKey, secretKey: secretKey)
    }

    /// The value of the `Host` header (and of the signed `host`): the host, and the port unless it is the scheme's.
    public var hostHeader: String {
        let host = endpoint.host ?? "localhost"
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        guard let port = endpoint.port else { return bracketed }
        let isDefault = (endpoint.scheme == "http" && port == 80) || (endpoint.scheme == "https" && port == 443)
        return isDefault ? bracketed : "\(bracketed):\(port)"
    }

    /// The configuration without its secret, for logs.
    public var description: String {
        "s3://\(accessKey):***@\(hostHeader)/\(bucket)?region=\(region)&scheme=\(endpoint.scheme ?? "http")"
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// S3's rule for bucket names (lowercase letters, digits, dots and hyphens; 3–63 of them; a letter or digit at
    /// each end).
    static func isValidBucket(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...63).contains(bytes.count) else { return false }
        func alnum(_ b: UInt8) -> Bool { (97...122).contains(b) || (48...57).contains(b) }
        return bytes.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") } && alnum(bytes.first!)
            && alnum(bytes.last!)
    }

    private static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let colon = text[..<at].lastIndex(of: ":") else { return text }
        return String(text[...colon]) + "***" + String(text[at...])
    }
}
