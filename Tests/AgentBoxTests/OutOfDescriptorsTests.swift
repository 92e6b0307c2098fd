import AgentBoxSandbox
import Foundation
import NIOCore
import Testing

@testable import AgentBox

/// A boot that failed for want of descriptors is answered 503 ("try again once workspaces sleep"), not 500: which
/// errors count as that.
@Suite("Out of descriptors")
struct OutOfDescriptorsTests {
    @Test func byErrnoWhereThereIsOneElseByText() {
        #expect(WorkspaceRuntime.isOutOfDescriptors(IOError(errnoCode: EMFILE, reason: "accept")))
        #expect(WorkspaceRuntime.isOutOfDescriptors(IOError(errnoCode: ENFILE, reason: "socket")))
        #expect(!WorkspaceRuntime.isOutOfDescriptors(IOError(errnoCode: ECONNREFUSED, reason: "connect")))
        #expect(WorkspaceRuntime.isOutOfDescriptors(SandboxError(.system, "pipe: whatever the text", errnoCode: EMFILE)))
        // The errno decides, whatever the message holds.
        #expect(!WorkspaceRuntime.isOutOfDescriptors(SandboxError(.system, "open Too many open files", errnoCode: ENOENT)))
        // Wrapped, and another program's words (bwrap's diagnostics carry no errno).
        let wrapped = AgentBoxError(.internalError, "boot", underlyingError: SandboxError(.system, "epoll", errnoCode: ENFILE))
        #expect(WorkspaceRuntime.isOutOfDescriptors(wrapped))
        #expect(WorkspaceRuntime.isOutOfDescriptors(SandboxError(.startFailed, "bwrap: Can't open /proc: \(String(cString: strerror(EMFILE)))")))
        #expect(!WorkspaceRuntime.isOutOfDescriptors(SandboxError(.startFailed, "bwrap: Can't mount proc: Operation not permitted")))
    }
}
