import AgentBox
import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox fetch KEY PORT PATH`: one HTTP request to a server inside a workspace; prints the body.
struct FetchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Send an HTTP request to a server listening inside a workspace and print the answer's body.",
        discussion: """
            Exits 0 for a 2xx or 3xx answer, 1 otherwise. The workspace boots if it sleeps.
            Examples:
              agentbox fetch demo 8000 /
              agentbox fetch demo 8000 /api/items -m POST -d @item.json --include
            """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The workspace key.") var key: String
    @Argument(help: "The port inside the workspace.") var port: Int
    @Argument(help: "The request target, for example / or /api?x=1.") var path: String = "/"
    @Option(name: [.short, .customLong("method")], help: "The HTTP method.") var method = "GET"
    @Option(name: [.customShort("H"), .customLong("header")], help: "A header, 'Name: value' (repeatable).") var headers: [String] = []
    @Option(name: [.short, .customLong("data")], help: "The request body; @FILE reads it from a file.") var data: String?
    @Flag(name: [.short, .customLong("include")], help: "Print the status line and headers before the body.") var include = false
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        var parsed: [String: String] = [:]
        for header in headers {
            guard let colon = header.firstIndex(of: ":") else { throw ValidationError("a header is 'Name: value', not '\(header)'") }
            parsed[String(header[..<colon]).trimmingCharacters(in: .whitespaces)] =
                String(header[header.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
        var body: Data?
        if let data {
            body = data.hasPrefix("@") ? try Data(contentsOf: URL(fileURLWithPath: String(data.dropFirst()))) : Data(data.utf8)
        }
        let request = FetchRequest(
            port: port, path: path.hasPrefix("/") ? path : "/" + path, method: method, headers: parsed.isEmpty ? nil : parsed,
            body: body?.base64EncodedString())
        var status = 0
        try await runClientCall {
            let response = try await client.makeClient().fetch(key, request)
            status = response.status
            if json { return try printJSON(response) }
            if include {
                print("HTTP \(response.status)")
                for (name, value) in response.headers.sorted(by: { $0.key < $1.key }) { print("\(name): \(value)") }
                print("")
            }
            writeStandardOutput(response.bodyData)
        }
        if !(200..<400).contains(status) { throw ExitCode(1) }
    }
}

/// `agentbox preview KEY PORT [--expires 1h]`: prints a URL that reaches the port; `list` and `revoke` manage them.
struct PreviewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preview", abstract: "Make, list and revoke preview URLs of a workspace's ports.",
        discussion: """
            Examples:
              agentbox preview demo 8000 --expires 30m
              agentbox preview list demo
            """,
        subcommands: [Create.self, List.self, Revoke.self], defaultSubcommand: Create.self)

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Print a URL that reaches PORT inside the workspace (no token needed to open it).",
            discussion: """
                Examples:
                  agentbox preview create demo 8000
                  agentbox preview demo 3000 --expires 2h --json
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The port inside the workspace.") var port: Int
        @Option(help: "How long the URL works: 90s, 30m, 1h (at most 24h; default 1h).") var expires: String?
        @Flag(help: "Print JSON.") var json = false

        /// `--expires` in seconds, or a usage error that says what it takes.
        func expiresInSeconds() throws -> Int? {
            guard let expires else { return nil }
            guard let duration = Duration.parse(expires), duration >= .seconds(1) else {
                throw ValidationError("--expires takes a duration such as 90s, 30m or 1h, not '\(expires)'")
            }
            guard duration <= .seconds(86_400) else {
                throw ValidationError("--expires is at most 24h, not '\(expires)': make a new preview when it ends")
            }
            return Int(duration.components.seconds)
        }

        func validate() throws { _ = try expiresInSeconds() }

        func run() async throws {
            let seconds = try expiresInSeconds()
            try await runClientCall {
                let api = try client.makeClient()
                var preview = try await api.createPreview(key, port: port, expiresInSeconds: seconds)
                if preview.url == nil { preview.url = api.endpoint.absoluteString.trimmingSuffix("/") + preview.path }
                if json { return try printJSON(preview) }
                print(preview.url ?? preview.path)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a workspace's unexpired previews.",
            discussion: """
                Example:
                  agentbox preview list demo
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let list = try await client.makeClient().previews(key)
                if json { return try printJSON(list) }
                printRows([["ID", "PORT", "EXPIRES"]] + list.items.map { [$0.id, String($0.port), RFC3339.format($0.expiresAt)] })
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a preview: its URL answers 404 from now on.",
            discussion: """
                Example:
                  agentbox preview revoke demo PREVIEW_TOKEN
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The preview token, or its id from `agentbox previews list`.") var token: String

        func run() async throws {
            try await runClientCall {
                try await client.makeClient().revokePreview(key, token: token)
                print("revoked \(token.prefix(8))… (its URL answers 404 from now on)")
            }
        }
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
