import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox fs …`: a workspace's files. None of these boot the workspace.
struct FsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fs", abstract: "Read and change a workspace's files (without booting it).",
        discussion: """
            Examples:
              agentbox fs ls demo /workspace
              agentbox fs put demo /workspace/notes.txt ./notes.txt
            """,
        subcommands: [Ls.self, Cat.self, Put.self, Get.self, Rm.self, Mv.self, Mkdir.self, Stat.self, Watch.self])

    struct Ls: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a directory.",
            discussion: """
                Examples:
                  agentbox fs ls demo
                  agentbox fs ls demo /workspace/src --recursive --json
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The directory (default /workspace).") var path = "/workspace"
        @Flag(name: [.short, .long], help: "Descend into subdirectories.") var recursive = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let list = try await client.makeClient().listFiles(key, path: path, recursive: recursive)
                if json { return try printJSON(list) }
                printRows(
                    list.items.map { entry in
                        [
                            entry.type == .directory ? "d" : entry.type == .symlink ? "l" : "-", String(entry.size),
                            RFC3339.format(entry.modifiedAt),
                            (recursive ? entry.path : entry.name) + (entry.target.map { " -> \($0)" } ?? ""),
                        ]
                    })
                if list.truncated { printError("agentbox: listing truncated at \(list.items.count) entries") }
            }
        }
    }

    struct Cat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a file.",
            discussion: """
                Example:
                  agentbox fs cat demo /workspace/README.md
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The file.") var path: String

        func run() async throws {
            try await runClientCall {
                try await client.makeClient().readFile(key, path: path, to: .standardOutput)
            }
        }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a file from a local file, or standard input with -.",
            discussion: """
                Examples:
                  agentbox fs put demo /workspace/data.csv ./data.csv
                  echo hello | agentbox fs put demo /workspace/hello.txt -
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The path in the workspace.") var path: String
        @Argument(help: "The local file, or - for standard input.") var source = "-"

        func run() async throws {
            try await runClientCall {
                let result = try await client.makeClient().writeFile(key, path: path, from: try LocalFile.reading(source))
                print("wrote \(result.bytesWritten) bytes to \(result.path)")
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a file to a local file, or standard output with -.",
            discussion: """
                Examples:
                  agentbox fs get demo /workspace/report.pdf
                  agentbox fs get demo /workspace/log.txt - | tail
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The path in the workspace.") var path: String
        @Argument(help: "The local file (default: the file's name), or -.") var destination: String?

        func run() async throws {
            try await runClientCall {
                let api = try client.makeClient()
                let target = destination ?? URL(fileURLWithPath: path).lastPathComponent
                try await LocalFile.download(to: target) { open in try await api.readFile(key, path: path, to: open) }
            }
        }
    }

    struct Rm: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a file, symlink or (with -r) directory.",
            discussion: """
                Examples:
                  agentbox fs rm demo /workspace/tmp.txt
                  agentbox fs rm demo /workspace/build -r
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The path.") var path: String
        @Flag(name: [.short, .long], help: "Delete a directory and its contents.") var recursive = false

        func run() async throws {
            try await runClientCall { try await client.makeClient().delete(key, path: path, recursive: recursive) }
        }
    }

    struct Mv: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move or rename.",
            discussion: """
                Example:
                  agentbox fs mv demo /workspace/a.txt /workspace/b.txt --force
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "From.") var from: String
        @Argument(help: "To.") var to: String
        @Flag(name: [.short, .long], help: "Replace an existing destination.") var force = false

        func run() async throws {
            try await runClientCall { try await client.makeClient().move(key, from: from, to: to, overwrite: force) }
        }
    }

    struct Mkdir: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a directory.",
            discussion: """
                Example:
                  agentbox fs mkdir demo /workspace/src/lib --parents
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The path.") var path: String
        @Flag(name: [.short, .customLong("parents")], help: "Create parents too; no error if it exists.") var parents = false

        func run() async throws {
            try await runClientCall { try await client.makeClient().makeDirectory(key, path: path, recursive: parents) }
        }
    }

    struct Stat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an entry's metadata (path, type, size, mode, modified; --json for the API's JSON).",
            discussion: """
                Example:
                  agentbox fs stat demo /workspace/README.md
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The path.") var path: String
        @Flag(help: "Print the API's JSON (mode as a decimal number) instead of lines.") var json = false

        func run() async throws {
            try await runClientCall {
                let stat = try await client.makeClient().stat(key, path: path)
                if json { return try printJSON(stat) }
                print(Self.lines(stat))
            }
        }

        /// `path`, `type`, `size`, `mode` in octal with its `ls -l` letters, `modified`, and a link's `target`.
        static func lines(_ stat: FileStat) -> String {
            var lines = [
                "path:     \(stat.path)", "type:     \(stat.type.rawValue)", "size:     \(stat.size)",
                "mode:     0\(String(stat.mode & 0o7777, radix: 8)) (\(permissionLetters(stat.mode)))",
                "modified: \(stat.modifiedAt.formatted(.iso8601))",
            ]
            if let target = stat.target { lines.append("target:   \(target)") }
            return lines.joined(separator: "\n")
        }

        static func permissionLetters(_ mode: Int) -> String {
            let letters = Array("rwxrwxrwx")
            return String((0..<9).map { mode & (0o400 >> $0) != 0 ? letters[$0] : "-" })
        }
    }
}

extension FsCommand {
    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print changes below a directory as they happen, one line each: TYPE PATH (or TYPE FROM -> TO).",
            discussion: """
                Example:
                  agentbox fs watch demo /workspace --recursive
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The directory (default /workspace).") var path = "/workspace"
        @Flag(name: [.short, .long], help: "Watch subdirectories too.") var recursive = false
        @Flag(help: "Print each change as JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                for try await event in try await client.makeClient().watch(key, path: path, recursive: recursive) {
                    if json {
                        printFlushed(String(decoding: try AgentBoxJSON.makeEncoder().encode(event), as: UTF8.self))
                    } else if let from = event.from {
                        printFlushed("\(event.type.rawValue) \(from) -> \(event.path)")
                    } else {
                        printFlushed("\(event.type.rawValue) \(event.path)\(event.isDirectory == true ? "/" : "")")
                    }
                }
            }
        }
    }
}

/// `agentbox cp`: copies directories (and files) between the local machine and a workspace, through tar.
struct CpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp", abstract: "Copy a local directory into a workspace, or a workspace directory out.",
        discussion: """
            Name the workspace side KEY:PATH. A key with colons is split from its path at the last colon before the path's first slash.
            Examples:
              agentbox cp ./src demo:/workspace/src
              agentbox cp demo:/workspace/out ./out
              agentbox cp ./notes.md team:alice:/workspace/notes.md
            """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "Source: a local path, or KEY:PATH.") var source: String
    @Argument(help: "Destination: a local path, or KEY:PATH.") var destination: String

    func run() async throws {
        let from = Self.remote(source), to = Self.remote(destination)
        try await runClientCall {
            let api = try client.makeClient()
            switch (from, to) {
            case (nil, let (key, path)?):
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory) else {
                    throw ValidationError("no local file '\(source)'")
                }
                if !isDirectory.boolValue {
                    let result = try await api.writeFile(key, path: path, from: try LocalFile.reading(source))
                    return print("copied \(result.bytesWritten) bytes to \(key):\(result.path)")
                }
                // tar of the local directory, streamed to the workspace's tar upload.
                let tar = try LocalTar.create(directory: source)
                let result = try await api.uploadTar(key, path: path, from: tar.output)
                try tar.finish()
                print("copied \(result.count) \(result.count == 1 ? "entry" : "entries") to \(key):\(path)")
            case (let (key, path)?, nil):
                if try await api.stat(key, path: path).type != .directory {
                    return try await LocalFile.download(to: destination) { open in try await api.readFile(key, path: path, to: open) }
                }
                try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
                var extraction: LocalTar.Extraction?
                try await api.archive(key, path: path) {
                    let started = try LocalTar.extract(into: destination)
                    extraction = started
                    return started.input
                }
                try extraction?.finish()
                print("copied \(key):\(path) to \(destination)")
            default:
                throw ValidationError("exactly one side must be KEY:PATH")
            }
        }
    }

    /// `KEY:PATH` → (key, path); a local path (no colon before the first slash) → nil. Keys may hold colons
    /// (`team:alice:/workspace`): the last colon before the first slash ends the key.
    static func remote(_ text: String) -> (String, String)? {
        let head = text[..<(text.firstIndex(of: "/") ?? text.endIndex)]
        guard let colon = head.lastIndex(of: ":"), colon != text.startIndex else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}

/// The local ends of `agentbox fs put|get` and `agentbox cp`: a named file, or `-` for standard input or output.
enum LocalFile {
    /// The file to read, or standard input for `-`.
    static func reading(_ source: String) throws -> FileHandle {
        if source == "-" { return .standardInput }
        guard let file = FileHandle(forReadingAtPath: source) else { throw ValidationError("cannot read '\(source)'") }
        return file
    }

    /// Runs `body` with an opener of the file to write (created or emptied when called), or of standard output
    /// for `-`; closes the file after.
    static func download(to target: String, _ body: (() throws -> FileHandle) async throws -> Void) async throws {
        var opened: FileHandle?
        try await body {
            if target == "-" { return .standardOutput }
            guard FileManager.default.createFile(atPath: target, contents: nil), let file = FileHandle(forWritingAtPath: target) else {
                throw ValidationError("cannot write '\(target)'")
            }
            opened = file
            return file
        }
        try opened?.close()
    }
}

/// The local side of `agentbox cp`: the system's tar, streaming.
enum LocalTar {
    struct Creation {
        /// The archive as tar writes it.
        let output: FileHandle
        let process: Process

        func finish() throws {
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw ValidationError("local tar failed (exit \(process.terminationStatus))") }
        }
    }

    static func create(directory: String) throws -> Creation {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["tar", "-c", "-f", "-", "-C", directory, "."]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        return Creation(output: pipe.fileHandleForReading, process: process)
    }

    /// A running `tar -x`.
    struct Extraction {
        /// Where the archive goes.
        let input: FileHandle
        let process: Process

        /// Ends the archive and waits for tar to finish unpacking it.
        func finish() throws {
            try input.close()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw ValidationError("local tar failed (exit \(process.terminationStatus))") }
        }
    }

    /// Starts `tar -x` unpacking into `directory` what its input receives.
    static func extract(into directory: String) throws -> Extraction {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // The files are the user's, as cp makes them: never the workspace's uids (tar run as root keeps an archive's).
        process.arguments = ["tar", "-x", "-f", "-", "--no-same-owner", "-C", directory]
        let pipe = Pipe()
        process.standardInput = pipe
        try process.run()
        return Extraction(input: pipe.fileHandleForWriting, process: process)
    }
}
