import ServiceLifecycle

/// Runs a ``WorkspaceManager`` as a service: while it runs, the manager's background work (letting go of sleeping
/// workspaces' runtimes after ``AgentBoxConfiguration/sleepingRetention``) runs as its child tasks; on graceful
/// shutdown it stops that work, puts every workspace to sleep and closes the store. List it before the HTTP server in
/// the `ServiceGroup`, so that it stops after the server.
public struct WorkspaceManagerService: Service {
    public let manager: WorkspaceManager

    public init(manager: WorkspaceManager) {
        self.manager = manager
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await manager.runBackgroundWork() }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await manager.shutdown()
    }
}

/// Ends every open event stream at the start of a graceful shutdown, so that the HTTP server, which waits for
/// its requests to finish, is not held open by endless SSE responses. List it after the HTTP server.
public struct EventStreamCloser: Service {
    public let manager: WorkspaceManager

    public init(manager: WorkspaceManager) {
        self.manager = manager
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await manager.finishEventStreams()
    }
}
