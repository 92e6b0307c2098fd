import AgentBoxModelServer
import ArgumentParser
import Foundation
import Hummingbird
import Logging

/// `agentbox dev …`: tools for development and offline demos.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev", abstract: "Development tools: a scripted model server.",
        discussion: """
            Example:
              agentbox dev model-server --script turns.json --port 18700
            """,
        subcommands: [ModelServerCommand.self])

    struct ModelServerCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "model-server",
            abstract: "Serve the Anthropic Messages and OpenAI Chat Completions / Responses APIs from a script (offline, any key).",
            discussion: """
                The script is JSON: {"turns":[{"text":"…","toolCalls":[{"name":"Write","input":{…}}]}, …], "finalText"?, "sideText"?}. \
                Each request that offers tools takes the next turn; others (titles, quota checks) get sideText. \
                Point agents at it with ANTHROPIC_BASE_URL=http://HOST:PORT or OPENAI_BASE_URL=http://HOST:PORT/v1. \
                See docs/AGENTS.md.
                Example:
                  echo '{"turns":[{"text":"hello"}]}' > turns.json
                  agentbox dev model-server --script turns.json --port 18700 &
                  ANTHROPIC_BASE_URL=http://127.0.0.1:18700 claude -p hi
                """)
        @Option(help: "The script file.") var script: String
        @Option(help: "The address to listen on.") var host = "127.0.0.1"
        @Option(help: "The port (0 picks a free one).") var port = 0
        @Option(help: "Log level.") var logLevel = "warning"

        func run() async throws {
            let script: ModelScript
            do { script = try ModelScript.load(path: self.script) } catch {
                printError("error: \(error)")
                throw ExitCode(2)
            }
            var logger = Logger(label: "model-server")
            logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
            let player = ModelScriptPlayer(script: script)
            let app = Application(
                router: ModelServer.router(player: player, logger: logger), configuration: .init(address: .hostname(host, port: port)),
                onServerRunning: { channel in
                    printFlushed("model server listening on http://\(host):\(channel.localAddress?.port ?? port)")
                }, logger: logger)
            try await app.runService()
        }
    }
}
