import Foundation

extension PostgresStore {
    /// Where a Postgres store's database is: what a `postgres://user:password@host:port/database` URL names.
    ///
    /// `postgresql://` is the same. The only query parameter understood is `sslmode=disable` (the store speaks plain
    /// TCP); other `sslmode`s are refused rather than silently ignored.
    public struct Location: Sendable, Equatable {
        /// A host name or an IP address (IPv6 without brackets).
        public var host: String
        public var port: Int
        public var username: String
        /// `nil`: none (trust or peer authentication).
        public var password: String?
        /// `nil`: the server's default, a database named like the user.
        public var database: String?

        /// The database `database` (the user's own when `nil`) of the server at `host:port`, as `username`.
        public init(host: String, port: Int = 5432, username: String, password: String? = nil, database: String? = nil) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
        }

        /// Parses `url`; throws ``StoreError/Code-swift.struct/invalidArgument`` for anything else.
        public init(url: String) throws {
            func invalid(_ why: String) -> StoreError { StoreError(.invalidArgument, "'\(Self.redacted(url))' is not a Postgres URL: \(why)") }
            guard let components = URLComponents(string: url) else { throw invalid("it cannot be parsed") }
            guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
                throw invalid("the scheme must be postgres:// or postgresql://")
            }
            guard let host = components.host, !host.isEmpty else { throw invalid("it names no host") }
            guard let username = components.user, !username.isEmpty else { throw invalid("it names no user") }
            for item in components.queryItems ?? [] {
                switch (item.name, item.value) {
                case ("sslmode", "disable"): continue
                case ("sslmode", let mode): throw invalid("sslmode=\(mode ?? "") is not supported (only sslmode=disable)")
                default: throw invalid("the parameter '\(item.name)' is not supported")
                }
            }
            let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
            self.init(
                host: host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host, port: components.port ?? 5432,
                username: username, password: components.password, database: path.isEmpty ? nil : path.removingPercentEncoding ?? path)
        }

        /// The location as a URL (the password included).
        public var url: String {
            var components = URLComponents()
            components.scheme = "postgres"
            components.host = host.contains(":") ? "[\(host)]" : host
            components.port = port
            components.user = username
            components.password = password
            components.path = "/" + (database ?? "")
            return components.string ?? "postgres://\(username)@\(host):\(port)/\(database ?? "")"
        }

        /// `url` with its password replaced by `***`, for messages and logs.
        static func redacted(_ url: String) -> String {
            guard var components = URLComponents(string: url), components.password != nil else { return url }
            components.password = "***"
            return components.string ?? url
        }
    }
}
