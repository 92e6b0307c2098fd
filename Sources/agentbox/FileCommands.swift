import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix

/// `agentbox fs …`: a workspace's files. None of these boot the workspace.
struct FsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fs", abstract: "Read and change a workspace's files (without booting it).",
        subcommands: [Ls.self, Cat.self, Put.self, Get.self, Rm.self, Mv.self, Mkdir.self, Stat.self, Watch.self])

    struct Ls: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a directory.")
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
        static let configuration = CommandConfiguration(abstract: "Print a file.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The file.") var path: String

        func run() async throws {
            try await runClientCall {
                for try await chunk in try await client.makeClient().readFile(key, path: path) {
                    FileHandle.standardOutput.write(Data(chunk.readableBytesView))
                }
            }
        }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a file from a local file, or standard input with -.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The path in the workspace.") var path: String
        @Argument(help: "The local file, or - for standard input.") var source = "-"

        func run() async throws {
            try await runClientCall {
                let result = try await client.makeClient().writeFile(key, path: path, body: try localBody(source))
                print("wrote \(result.bytesWritten) bytes to \(result.path)")
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Copy a file to a local file, or standard output with -.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The path in the workspace.") var path: String
        @Argument(help: "The local file (default: the file's name), or -.") var destination: String?

        func run() async throws {
            try await runClientCall {
                let body = try await client.makeClient().readFile(key, path: path)
                let target = destination ?? URL(fileURLWithPath: path).lastPathComponent
                try await writeLocal(body, to: target)
            }
        }
    }

    struct Rm: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a file, symlink or (with -r) directory.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The path.") var path: String
        @Flag(name: [.short, .long], help: "Delete a directory and its contents.") var recursive = false

        func run() async throws {
            try await runClientCall { try await client.makeClient().delete(key, path: path, recursive: recursive) }
        }
    }

    struct Mv: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move or rename.")
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
        static let configuration = CommandConfiguration(abstract: "Create a directory.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The path.") var path: String
        @Flag(name: [.short, .customLong("parents")], help: "Create parents too; no error if it exists.") var parents = false

        func run() async throws {
            try await runClientCall { try await client.makeClient().makeDirectory(key, path: path, recursive: parents) }
        }
    }

    struct Stat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an entry's metadata as JSON.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The path.") var path: String

        func run() async throws {
            try await runClientCall { try printJSON(try await client.makeClient().stat(key, path: path)) }
        }
    }
}

extension FsCommand {
    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print changes below a directory as they happen, one line each: TYPE PATH (or TYPE FROM -> TO).")
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
        discussion: "Name the workspace side KEY:PATH. agentbox cp ./src demo:/workspace/src  |  agentbox cp demo:/workspace/out ./out")
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
                    let result = try await api.writeFile(key, path: path, body: try localBody(source))
                    return print("copied \(result.bytesWritten) bytes to \(key):\(result.path)")
                }
                // tar of the local directory, streamed to the workspace's tar upload.
                let tar = try LocalTar.create(directory: source)
                let result = try await api.uploadTar(key, path: path, body: .stream(tar.bytes, length: .unknown))
                try tar.finish()
                print("copied \(result.count) entries to \(key):\(path)")
            case (let (key, path)?, nil):
                if try await api.stat(key, path: path).type != .directory {
                    return try await writeLocal(try await api.readFile(key, path: path), to: destination)
                }
                try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
                let body = try await api.archive(key, path: path)
                try await LocalTar.extract(body, into: destination)
                print("copied \(key):\(path) to \(destination)")
            default:
                throw ValidationError("exactly one side must be KEY:PATH")
            }
        }
    }

    /// `KEY:PATH` → (key, path); a local path (no colon before the first slash) → nil.
    static func remote(_ text: String) -> (String, String)? {
        guard let colon = text.firstIndex(of: ":"), !text[..<colon].contains("/"), colon != text.startIndex else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}

/// A request body streamed from a local file or standard input, in 256 KiB chunks.
func localBody(_ source: String) throws -> HTTPClientRequest.Body {
    let handle: FileHandle
    if source == "-" {
        handle = .standardInput
    } else {
        guard let file = FileHandle(forReadingAtPath: source) else { throw ValidationError("cannot read '\(source)'") }
        handle = file
    }
    let chunks = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
        Thread.detachNewThread {
            while true {
                let data = handle.readData(ofLength: 256 << 10)
                if data.isEmpty { break }
                continuation.yield(ByteBuffer(bytes: data))
            }
            continuation.finish()
        }
    }
    return .stream(chunks, length: .unknown)
}

/// Writes a streamed body to a local file, or standard output for `-`.
func writeLocal(_ body: HTTPClientResponse.Body, to target: String) async throws {
    let handle: FileHandle
    if target == "-" {
        handle = .standardOutput
    } else {
        guard FileManager.default.createFile(atPath: target, contents: nil), let file = FileHandle(forWritingAtPath: target) else {
            throw ValidationError("cannot write '\(target)'")
        }
        handle = file
    }
    for try await chunk in body { handle.write(Data(chunk.readableBytesView)) }
    if target != "-" { try handle.close() }
}

/// The local side of `agentbox cp`: the system's tar, streaming.
enum LocalTar {
    struct Creation {
        let bytes: AsyncThrowingStream<ByteBuffer, any Error>
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
        let bytes = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            Thread.detachNewThread {
                while true {
                    let data = pipe.fileHandleForReading.readData(ofLength: 256 << 10)
                    if data.isEmpty { break }
                    continuation.yield(ByteBuffer(bytes: data))
                }
                continuation.finish()
            }
        }
        return Creation(bytes: bytes, process: process)
    }

    static func extract(_ body: HTTPClientResponse.Body, into directory: String) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["tar", "-x", "-f", "-", "-C", directory]
        let pipe = Pipe()
        process.standardInput = pipe
        try process.run()
        for try await chunk in body { try pipe.fileHandleForWriting.write(contentsOf: Data(chunk.readableBytesView)) }
        try pipe.fileHandleForWriting.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("local tar failed (exit \(process.terminationStatus))") }
    }
}
