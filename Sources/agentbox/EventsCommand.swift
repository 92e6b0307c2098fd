import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox events KEY`: tails a workspace's event stream.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Print a workspace's events as they happen (one line each: seq, name, JSON).",
        discussion: """
            Examples:
              agentbox events demo
              agentbox events demo --after 0 --count 10
            """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The workspace key.") var key: String
    @Option(help: "Replay the remembered events after this sequence number first.") var after: Int64?
    @Option(help: "Stop after this many events.") var count: Int?

    func run() async throws {
        try await runClientCall {
            let stream = try await client.makeClient().events(key, after: after)
            var seen = 0
            for try await envelope in stream {
                let data = String(decoding: try envelope.event.encodedData(), as: UTF8.self)
                printFlushed("\(envelope.seq) \(envelope.event.name) \(data)")
                seen += 1
                if let count, seen >= count { return }
            }
        }
    }
}
