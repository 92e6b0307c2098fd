import AgentBox
import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox tokens create|list|revoke`: API tokens scoped to workspaces and a role.
struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens", abstract: "Make, list and revoke API tokens scoped to workspaces (admin only).",
        discussion: """
            Roles: admin (everything), user (use and create the workspaces its patterns match), reader (read them). \
            A pattern is a workspace key or a prefix ending in *.
            Examples:
              agentbox tokens create --workspace 'team-a-*' --role user --expires 7d --label 'team A'
              agentbox tokens list
              agentbox tokens revoke tok_0123456789abcdef
            """,
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a token and print its secret (shown only now).",
            discussion: """
                Examples:
                  agentbox tokens create --workspace demo --role reader
                  agentbox tokens create --workspace 'ci-*' --workspace shared --role user --expires 24h
                """)
        @OptionGroup var client: ClientOptions
        @Option(name: .customLong("workspace"), help: "A workspace key or a prefix ending in * (repeatable; * for all).") var workspaces: [String] = []
        @Option(help: "admin, user or reader.") var role: String = "user"
        @Option(help: "How long it works: 30m, 24h, 7d (default: until revoked).") var expires: String?
        @Option(help: "A name to know it by.") var label: String?
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if workspaces.isEmpty { throw ValidationError("name at least one --workspace (a key, a prefix ending in *, or *)") }
            if TokenRole(rawValue: role) == nil { throw ValidationError("--role must be admin, user or reader, not '\(role)'") }
            if let expires, Self.seconds(expires) == nil { throw ValidationError("--expires must be a duration such as 30m, 24h or 7d, not '\(expires)'") }
        }

        static func seconds(_ text: String) -> Int? {
            if text.hasSuffix("d"), let days = Int(text.dropLast()), days > 0 { return days * 86_400 }
            guard let duration = Duration.parse(text), duration >= .seconds(1) else { return nil }
            return Int(duration.components.seconds)
        }

        func run() async throws {
            let request = TokenCreateRequest(
                workspaces: workspaces, role: TokenRole(rawValue: role)!, expiresInSeconds: expires.flatMap(Self.seconds), label: label)
            try await runClientCall {
                let token = try await client.makeClient().createToken(request)
                if json { return try printJSON(token) }
                print(token.token ?? "")
                printError("made \(token.id) (\(token.role.rawValue) of \(token.workspaces.joined(separator: ", ")))\(token.expiresAt.map { ", until " + RFC3339.format($0) } ?? ""); the secret above is not shown again")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tokens (never their secrets).", discussion: "Example:\n  agentbox tokens list --json")
        @OptionGroup var client: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let list = try await client.makeClient().tokens()
                if json { return try printJSON(list) }
                printRows(
                    [["ID", "ROLE", "WORKSPACES", "EXPIRES", "LABEL"]]
                        + list.items.map { [$0.id, $0.role.rawValue, $0.workspaces.joined(separator: ","), $0.expiresAt.map(RFC3339.format) ?? "never", $0.label ?? ""] })
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a token: refused at once, its open streams end.", discussion: "Example:\n  agentbox tokens revoke tok_0123456789abcdef")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The token's id (tok_…).") var id: String

        func run() async throws {
            try await runClientCall {
                try await client.makeClient().revokeToken(id)
                print("revoked \(id)")
            }
        }
    }
}
