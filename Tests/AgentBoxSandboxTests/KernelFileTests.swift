import AgentBoxSandbox
import Foundation
import Testing

@Suite("Reading files the kernel makes up")
struct KernelFileTests {
    /// /proc/self/mountinfo past 4 KiB: Foundation's reader stopped after its first buffer, and the disk pool's mount,
    /// listed last, looked absent (restarted servers then failed with EBUSY).
    @Test func aLongProcFileIsReadToItsEnd() throws {
        // Make the process's own file long: /proc/self/environ is fixed, but /proc/self/maps grows with mappings.
        let regions = (0..<64).map { _ in mmap(nil, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) }
        defer { for region in regions { munmap(region, 4096) } }
        let text = try #require(KernelFile.read("/proc/self/maps"))
        #expect(text.utf8.count > 4096)
        #expect(text.hasSuffix("\n"))
        // Every line is whole and the last mapping the kernel lists ([vsyscall] on x86_64, or the stack) is there.
        #expect(text.split(separator: "\n").allSatisfy { $0.split(separator: " ", omittingEmptySubsequences: true).count >= 5 })
        #expect(text.contains("[stack]"))
    }

    @Test func aMissingFileIsNil() {
        #expect(KernelFile.read("/proc/self/no-such-file") == nil)
    }
}
