import AgentBoxAPI
import CAgentBoxSandbox
import Foundation
import Synchronization

/// Watches a directory of a workspace from the host with inotify, and reports what changes below it as
/// ``FileWatchEvent``s. Works on a sleeping workspace (its files are on the host) and sees the changes that the
/// workspace's processes make once it runs (the sandbox mounts the same directories).
///
/// Directories are resolved beneath the workspace's root like every fs request, and watched through the descriptor
/// that resolution returned, so a planted symlink cannot point a watch at a host path. One thread per watcher waits
/// in `poll` on the inotify descriptor and a stop pipe; events go to an `AsyncStream` of bounded size: when a client
/// does not keep up, the events it would have got are dropped and it gets an `overflow` event instead.
final class FileWatcher: @unchecked Sendable {
    // The descriptors are closed in deinit, after both the thread and the stream's termination handler let go, so
    // neither can ever touch a reused descriptor number.
    private let inotifyFD: Int32
    private let stopRead: Int32
    private let stopWrite: Int32
    private let rootFD: Int32
    private let stopped = Atomic<Bool>(false)

    /// The most directories one recursive watch follows.
    static let maxWatchedDirectories = 8192
    /// Events a client may have outstanding before it gets `overflow`.
    static let bufferCapacity = 4096

    private static let directoryMask: UInt32 = 0x100 | 0x200 | 0x400 | 0x800 | 0x8 | 0x40 | 0x80 | 0x0100_0000 | 0x0400_0000
    private static let isDirectoryBit: UInt32 = 0x4000_0000

    private init(inotifyFD: Int32, stopRead: Int32, stopWrite: Int32, rootFD: Int32) {
        self.inotifyFD = inotifyFD
        self.stopRead = stopRead
        self.stopWrite = stopWrite
        self.rootFD = rootFD
    }

    deinit {
        close(inotifyFD)
        close(stopRead)
        close(stopWrite)
        close(rootFD)
    }

    /// Starts watching the directory `path` (with `recursive`, its subdirectories too, as they come and go).
    /// `onEnd` runs once the stream has ended, whoever ended it.
    static func start(
        files: WorkspaceFiles, path: WorkspacePath, recursive: Bool, onEnd: @escaping @Sendable () -> Void
    ) throws -> (events: AsyncStream<FileWatchEvent>, stop: @Sendable () -> Void) {
        let (rootFD, location) = try files.openRoot(for: path)
        let inotifyFD = ab_inotify_init()
        guard inotifyFD >= 0 else {
            let code = errno
            close(rootFD)
            throw AgentBoxError(.unavailable, "cannot watch files: \(String(cString: strerror(code)))")
        }
        var pipeFDs: [Int32] = [-1, -1]
        guard ab_pipe_cloexec(&pipeFDs) == 0 else {
            close(rootFD)
            close(inotifyFD)
            throw AgentBoxError(.internalError, "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        let watcher = FileWatcher(inotifyFD: inotifyFD, stopRead: pipeFDs[0], stopWrite: pipeFDs[1], rootFD: rootFD)
        let (events, continuation) = AsyncStream<FileWatchEvent>.makeStream(bufferingPolicy: .bufferingOldest(bufferCapacity))
        let loop = WatchLoop(watcher: watcher, continuation: continuation, recursive: recursive)
        // The watched directory itself must be there and a directory: that is an error for the request, not an event.
        let relative = location.relativePath
        let fd = ab_open_beneath(rootFD, relative, O_RDONLY | O_DIRECTORY, 0, 0)
        guard fd >= 0 else { throw WorkspaceFiles.error(errno, path) }
        defer { close(fd) }
        guard loop.addWatch(fd: fd, relative: location.relative, path: path, announce: false) else {
            throw AgentBoxError(.unavailable, "cannot watch '\(path)': \(String(cString: strerror(errno)))")
        }
        let stop: @Sendable () -> Void = { watcher.stop() }
        continuation.onTermination = { _ in
            watcher.stop()
            onEnd()
        }
        let thread = Thread { loop.run() }
        thread.name = "agentbox-watch"
        thread.start()
        return (events, stop)
    }

    /// Ends the watch: the thread leaves `poll` and finishes the stream.
    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        var byte: UInt8 = 1
        _ = write(stopWrite, &byte, 1)
    }

    /// The state of one watch, owned by its thread.
    private final class WatchLoop: @unchecked Sendable {
        let watcher: FileWatcher
        let continuation: AsyncStream<FileWatchEvent>.Continuation
        let recursive: Bool
        /// Each watch descriptor's directory: below the root, and in the workspace's view.
        var directories: [Int32: (relative: [String], path: WorkspacePath)] = [:]
        var lostEvents = false
        var limitReported = false

        init(watcher: FileWatcher, continuation: AsyncStream<FileWatchEvent>.Continuation, recursive: Bool) {
            self.watcher = watcher
            self.continuation = continuation
            self.recursive = recursive
        }

        func run() {
            defer { continuation.finish() }
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                var fds = [
                    pollfd(fd: watcher.inotifyFD, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: watcher.stopRead, events: Int16(POLLIN), revents: 0),
                ]
                let ready = poll(&fds, 2, -1)
                if ready < 0 {
                    if errno == EINTR { continue }
                    return
                }
                if fds[1].revents != 0 { return }
                let count = buffer.withUnsafeMutableBytes { read(watcher.inotifyFD, $0.baseAddress, $0.count) }
                if count < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return
                }
                if !handle(buffer[..<count]) { return }
            }
        }

        /// Handles one read's worth of inotify events; `false` when the watched directory itself is gone.
        private func handle(_ bytes: ArraySlice<UInt8>) -> Bool {
            var offset = bytes.startIndex
            var movedFrom: [UInt32: (path: WorkspacePath, isDirectory: Bool, temporary: Bool)] = [:]
            while offset + 16 <= bytes.endIndex {
                let wd = Int32(bitPattern: Self.word(bytes, offset))
                let mask = Self.word(bytes, offset + 4)
                let cookie = Self.word(bytes, offset + 8)
                let length = Int(Self.word(bytes, offset + 12))
                let nameBytes = bytes[(offset + 16)..<min(offset + 16 + length, bytes.endIndex)].prefix { $0 != 0 }
                offset += 16 + length
                let name = String(decoding: nameBytes, as: UTF8.self)
                if mask & 0x4000 != 0 {  // IN_Q_OVERFLOW
                    emit(FileWatchEvent(type: .overflow, path: rootPath.description))
                    continue
                }
                guard let directory = directories[wd] else { continue }
                if mask & 0x8000 != 0 {  // IN_IGNORED: the watch is gone (its directory was deleted or unwatched)
                    directories[wd] = nil
                    if directories.isEmpty { return false }
                    continue
                }
                if mask & (0x400 | 0x800) != 0 {  // IN_DELETE_SELF, IN_MOVE_SELF
                    if directory.relative == rootRelative { return false }
                    continue
                }
                guard !name.isEmpty else { continue }
                let isDirectory = mask & FileWatcher.isDirectoryBit != 0
                let path = directory.path.appending(name)
                let relative = directory.relative + [name]
                let temporary = WorkspaceFiles.isTemporaryName(name)
                switch mask & (0x100 | 0x200 | 0x8 | 0x40 | 0x80) {
                case 0x100:  // IN_CREATE
                    if temporary { continue }
                    emit(FileWatchEvent(type: .created, path: path.description, isDirectory: isDirectory))
                    if isDirectory, recursive { watchNew(relative: relative, path: path) }
                case 0x200:  // IN_DELETE
                    if temporary { continue }
                    emit(FileWatchEvent(type: .deleted, path: path.description, isDirectory: isDirectory))
                case 0x8:  // IN_CLOSE_WRITE
                    if temporary { continue }
                    emit(FileWatchEvent(type: .modified, path: path.description, isDirectory: false))
                case 0x40:  // IN_MOVED_FROM
                    movedFrom[cookie] = (path, isDirectory, temporary)
                case 0x80:  // IN_MOVED_TO
                    if let source = movedFrom.removeValue(forKey: cookie) {
                        if source.temporary {
                            // The fs API writes beside the file and renames it over: to a watcher, a modification.
                            emit(FileWatchEvent(type: .modified, path: path.description, isDirectory: false))
                        } else {
                            emit(FileWatchEvent(type: .moved, path: path.description, from: source.path.description, isDirectory: isDirectory))
                            // Its watches moved with it (inotify follows the inode): only their names change. A directory
                            // that moved before its watch was in place is watched now, its contents announced.
                            if isDirectory, recursive, !rename(below: source.path, to: path, relative: relative) {
                                watchNew(relative: relative, path: path)
                            }
                        }
                    } else if !temporary {
                        emit(FileWatchEvent(type: .created, path: path.description, isDirectory: isDirectory))
                        if isDirectory, recursive { watchNew(relative: relative, path: path) }
                    }
                default:
                    continue
                }
            }
            // A rename whose other half is not in this read moved the entry out of the watched tree.
            for source in movedFrom.values where !source.temporary {
                emit(FileWatchEvent(type: .deleted, path: source.path.description, isDirectory: source.isDirectory))
                if source.isDirectory { forget(below: source.path) }
            }
            return true
        }

        private var rootRelative: [String] = []
        private var rootPath = WorkspacePath(components: [])

        /// Watches the directory open as `fd`; with `announce`, reports what is already in it as created (it may
        /// have filled before the watch was in place). With ``recursive``, descends into its subdirectories.
        @discardableResult
        func addWatch(fd: Int32, relative: [String], path: WorkspacePath, announce: Bool) -> Bool {
            if directories.isEmpty {
                rootRelative = relative
                rootPath = path
            }
            guard directories.count < FileWatcher.maxWatchedDirectories else {
                if !limitReported {
                    limitReported = true
                    emit(FileWatchEvent(type: .overflow, path: path.description, isDirectory: true))
                }
                return true
            }
            let wd = ab_inotify_watch_fd(watcher.inotifyFD, fd, FileWatcher.directoryMask)
            guard wd >= 0 else { return false }
            directories[wd] = (relative, path)
            guard recursive || announce else { return true }
            for name in (try? FileTreeCopy.names(fd))?.sorted() ?? [] where !WorkspaceFiles.isTemporaryName(name) {
                var info = Glibc.stat()
                guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                let isDirectory = info.st_mode & S_IFMT == S_IFDIR
                if announce { emit(FileWatchEvent(type: .created, path: path.appending(name).description, isDirectory: isDirectory)) }
                if isDirectory, recursive {
                    let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    guard child >= 0 else { continue }
                    defer { close(child) }
                    addWatch(fd: child, relative: relative + [name], path: path.appending(name), announce: announce)
                }
            }
            return true
        }

        /// Watches a directory that appeared below the root, resolved beneath it again (never through a symlink).
        private func watchNew(relative: [String], path: WorkspacePath, announce: Bool = true) {
            let fd = ab_open_beneath(watcher.rootFD, relative.joined(separator: "/"), O_RDONLY | O_DIRECTORY, 0, 1)
            guard fd >= 0 else { return }
            defer { close(fd) }
            addWatch(fd: fd, relative: relative, path: path, announce: announce)
        }

        /// Renames the watched directories at and below `from`, which moved to `to` inside the watched tree.
        /// Returns whether there were any.
        private func rename(below from: WorkspacePath, to: WorkspacePath, relative: [String]) -> Bool {
            var renamed = false
            for (wd, directory) in directories where directory.path.isWithin(from) {
                let rest = directory.path.components.dropFirst(from.components.count)
                directories[wd] = (relative + rest, WorkspacePath(components: to.components + rest))
                renamed = true
            }
            return renamed
        }

        /// Drops the watches of a directory that moved out of the watched tree.
        private func forget(below path: WorkspacePath) {
            for (wd, directory) in directories where directory.path.isWithin(path) {
                inotify_rm_watch(watcher.inotifyFD, wd)
                directories[wd] = nil
            }
        }

        private func emit(_ event: FileWatchEvent) {
            if lostEvents {
                guard case .enqueued = continuation.yield(FileWatchEvent(type: .overflow, path: rootPath.description)) else { return }
                lostEvents = false
            }
            if case .dropped = continuation.yield(event) { lostEvents = true }
        }

        private static func word(_ bytes: ArraySlice<UInt8>, _ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
    }
}
