import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension Process {
    /// Starts the process with no signal blocked.
    ///
    /// Foundation's `run()` spawns from the calling thread and the child keeps that thread's signal mask. A Swift
    /// concurrency thread (a Dispatch worker) blocks TERM, INT, HUP and others, so a child started from one ignored
    /// `terminate()`: Codex's app server and a stdio MCP server outlived the session that ended them, and Python
    /// servers never unblock on their own. The calling thread's mask is cleared for the spawn and put back after.
    func runWithDefaultSignalMask() throws {
        var none = sigset_t()
        sigemptyset(&none)
        var previous = sigset_t()
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try run()
    }
}
