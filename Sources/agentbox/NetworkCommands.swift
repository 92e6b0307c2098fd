import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox fetch KEY PORT PATH`: one HTTP request to a server inside a workspace; prints the body.
struct FetchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Send an HTTP request to a server listening inside a workspace and print the answer's body.",
        discussion: "Exits 0 for a 2xx or 3xx answer, 1 otherwise. The workspace boots if it sleeps.")
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
            FileHandle.standardOutput.write(response.bodyData)
        }
        if !(200..<400).contains(status) { throw ExitCode(1) }
    }
}
