import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox ui`: the Inspector's address with a one-time login link.
struct UICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ui", abstract: "Print (or open) the Inspector's URL with a login link that works once, within two minutes.",
        discussion: """
            The link carries a one-time code, not your token: the browser exchanges it for a token of its own, with your \
            role and workspaces, for 12 hours at most (revoking your token revokes it).
            Examples:
              agentbox ui
              agentbox ui --open
              AGENTBOX_ENDPOINT=https://agentbox.example.com agentbox ui
            """)
    @OptionGroup var client: ClientOptions
    @Flag(help: "Open the link in the desktop's browser (xdg-open, or open on macOS) too.") var open = false

    func run() async throws {
        try await runClientCall {
            let client = try client.makeClient()
            let link = try await client.createLoginLink()
            var base = client.endpoint.absoluteString
            while base.hasSuffix("/") { base.removeLast() }
            let url = base + link.url
            print(url)
            printError("the link works once, until \(RFC3339.format(link.expiresAt))")
            if open { try await Self.openInBrowser(url) }
        }
    }

    /// Starts the desktop's opener on `url`; says so, and goes on, when there is none.
    static func openInBrowser(_ url: String) async throws {
        #if os(macOS)
            let opener = "open"
        #else
            let opener = "xdg-open"
        #endif
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [opener, url]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            if process.terminationStatus != 0 { printError("\(opener) failed (exit \(process.terminationStatus)); open the URL above yourself") }
        } catch {
            printError("could not start \(opener) (\(error)); open the URL above yourself")
        }
    }
}
