/// The one error of AgentBoxBlobs: what an object store answered, or what went wrong on this side.
///
/// ```swift
/// do { _ = try await store.get("missing", maxBytes: 1 << 20) } catch let error as BlobError where error.code == .notFound { … }
/// ```
public struct BlobError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure, to branch on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        /// The key (or bucket) does not exist: S3's `NoSuchKey`/`NoSuchBucket`, any 404, or a missing file.
        public static let notFound = Code(name: "notFound")
        /// The store refused the credentials or the signature (403): `SignatureDoesNotMatch`, `AccessDenied`, ….
        public static let accessDenied = Code(name: "accessDenied")
        /// Any other error answer of an S3 server; ``BlobError/s3Code`` and ``BlobError/httpStatus`` say which.
        public static let server = Code(name: "server")
        /// The content is not what it claims to be: a digest or a size differs (a file changed while it was read,
        /// a blob is corrupt).
        public static let integrity = Code(name: "integrity")
        /// An object is larger than the caller's cap.
        public static let tooLarge = Code(name: "tooLarge")
        /// A bad argument: a malformed configuration URL, a key that cannot be a key, a restore into a non-empty
        /// directory.
        public static let invalidArgument = Code(name: "invalidArgument")
        /// A local file operation failed (``BlobError/errno`` says how).
        public static let io = Code(name: "io")
        /// The server's answer could not be understood (malformed XML, a missing field).
        public static let invalidResponse = Code(name: "invalidResponse")
        public var description: String { name }
    }

    public let code: Code
    public let message: String
    /// The HTTP status of an S3 answer.
    public let httpStatus: Int?
    /// The `Code` element of an S3 error document (`NoSuchKey`, `SignatureDoesNotMatch`, …).
    public let s3Code: String?
    /// The C `errno` of a failed local operation.
    public let errno: Int32?

    public init(_ code: Code, _ message: String, httpStatus: Int? = nil, s3Code: String? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
        self.s3Code = s3Code
        self.errno = errno
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let httpStatus { text += " (HTTP \(httpStatus)\(s3Code.map { ", \($0)" } ?? ""))" }
        return text
    }
}
