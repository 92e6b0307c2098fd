import AgentBoxSandbox
import Logging
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
        let backgroundEnded = Alarm()
        let background = Task { [manager] in
            await manager.runBackgroundWork()
            backgroundEnded.raise("ended")
        }
        try? await gracefulShutdown()
        background.cancel()
        // The background work ends first (the cluster's leases stop being renewed before they are released), but the
        // stop waits for it at most 2 s: a part of it may be inside a blocking call that a cancellation does not cut
        // short (a pre-started sandbox waited for on the thread pool, up to 10 s), and waiting for that spent the
        // stop's grace (a clean-clone CI's graceful-stop test ended in the group's fatal error with nothing logged).
        // The stop itself ends the pool and the blanks under way.
        _ = await backgroundEnded.wait(atMost: .seconds(2))

        // The stop puts every workspace to sleep, which with thousands awake can outlast the service group's grace. When
        // the group cancels this task then, the stop is left where it is and the service returns, so that the process
        // exits as after a kill: every sandbox ends with the server's end of its control socket, and the store and the
        // disk pool are as a crash leaves them, which the next start handles. Without this the group's own deadline
        // ends the process with a fatal error (a trap, status 4).
        let stopped = Alarm()
        Task { [manager] in
            await manager.shutdown()
            await background.value
            stopped.raise("stopped")
        }
        if await stopped.wait() == nil {
            manager.logger.error("the stop outlasted its grace: exiting without putting every workspace to sleep")
        }
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
