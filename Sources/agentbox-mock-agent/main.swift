import AgentBoxACP

// The mock ACP agent as a binary of its own, linked with a static Swift runtime and Foundation, so that it runs
// inside a workspace's sandbox, which sees only the host's /usr (the server's own runtime is not there).
let connection = StandardIO.connection()
let agent = MockAgent(
    connection: connection, canLoad: !CommandLine.arguments.contains("--no-load"), attachments: !CommandLine.arguments.contains("--text-only"))  // its handlers hold it weakly: it lives as long as this scope
await agent.start()
await StandardIO.serve(connection)
withExtendedLifetime(agent) {}
