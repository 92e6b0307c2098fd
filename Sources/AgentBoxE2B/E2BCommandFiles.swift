import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes

/// E2B's file calls on paths outside the workspace's persistent files (`/tmp`, `/opt`, `/etc`…), which the host cannot
/// reach (they live in the sandbox's own mount namespace): each is a short command of coreutils run in the workspace
/// as E2B's user, through the library's `exec`, so it sees and may touch exactly what that user's commands may.
struct E2BCommandFiles {
    let runtime: WorkspaceRuntime

    /// The most bytes read or written this way at once (they travel base64 through an exec's output or stdin).
    static let maxBytes = 32 << 20

    private enum Exit {
        static let notFound: Int32 = 44
        static let wrongType: Int32 = 45
        static let exists: Int32 = 46
    }

    private func run(_ script: String, env: [String: String], stdin: String? = nil, maxOutput: Int = 4 << 20) async throws -> ExecResult {
        let result = try await runtime.exec(
            ExecRequest(
                command: script, cwd: "/", env: env.merging(E2BPaths.userEnvironment) { a, _ in a }, stdin: stdin, timeoutMs: 120_000,
                maxOutputBytes: maxOutput, user: WorkspaceRuntime.agentUser))
        let shown = E2BPaths.outside(env["P"] ?? env["S"] ?? "")
        switch result.exitCode {
        case 0: return result
        case Exit.notFound: throw E2BError(.notFound, "\(shown) not found")
        case Exit.wrongType: throw E2BError(.badRequest, "\(shown) is not of the right type (a directory where a file is expected, or the reverse)")
        case Exit.exists: throw E2BError(.conflict, "\(shown) already exists")
        default:
            let reason = result.stderr.split(separator: "\n").last.map(String.init) ?? "exit \(result.exitCode)"
            if reason.contains("Permission denied") { throw E2BError(.forbidden, "\(shown): permission denied") }
            if reason.contains("No space left") { throw E2BError(.init(code: 507), "\(shown): no space left") }
            throw E2BError(.badRequest, "\(shown): \(reason.prefix(300))")
        }
    }

    func stat(_ path: WorkspacePath) async throws -> FileStat {
        let result = try await run(
            #"[ -e "$P" ] || [ -L "$P" ] || exit 44; stat -c '%F|%s|%a|%Y' -- "$P"; readlink -- "$P" || true"#, env: ["P": path.description])
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let fields = (lines.first ?? "").split(separator: "|").map(String.init)
        guard fields.count == 4 else { throw E2BError(.internalServerError, "internal error") }
        let type: FileType =
            fields[0].hasPrefix("regular") ? .file : fields[0] == "directory" ? .directory : fields[0] == "symbolic link" ? .symlink : .other
        let target = lines.count > 1 && !lines[1].isEmpty ? String(lines[1]) : nil
        return FileStat(
            path: path.description, type: type, size: Int64(fields[1]) ?? 0, mode: Int(fields[2], radix: 8) ?? 0,
            modifiedAt: Date(timeIntervalSince1970: TimeInterval(fields[3]) ?? 0), target: type == .symlink ? target : nil)
    }

    /// The entries below a directory, `depth` levels down: (path, type, size, mode, modified, target).
    func list(_ path: WorkspacePath, depth: Int) async throws -> [(path: String, type: FileType, size: Int64, mode: Int, modifiedAt: Date, target: String?)] {
        let result = try await run(
            #"[ -d "$P" ] || { [ -e "$P" ] && exit 45; exit 44; }; find "$P" -mindepth 1 -maxdepth "$D" -printf '%y\001%s\001%m\001%T@\001%l\001%p\000' | head -c 16777216"#,
            env: ["P": path.description, "D": String(depth)], maxOutput: 16 << 20)
        return result.stdout.split(separator: "\0").compactMap { record in
            let fields = record.split(separator: "\u{1}", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 6 else { return nil }
            let type: FileType = fields[0] == "f" ? .file : fields[0] == "d" ? .directory : fields[0] == "l" ? .symlink : .other
            return (
                fields[5], type, Int64(fields[1]) ?? 0, Int(fields[2], radix: 8) ?? 0, Date(timeIntervalSince1970: TimeInterval(fields[3]) ?? 0),
                fields[4].isEmpty ? nil : fields[4]
            )
        }
    }

    func read(_ path: WorkspacePath) async throws -> Data {
        let result = try await run(
            #"[ -f "$P" ] || { [ -e "$P" ] && exit 45; exit 44; }; [ "$(stat -c %s -- "$P")" -le "$M" ] || { echo "larger than $M bytes" >&2; exit 1; }; base64 -w0 -- "$P""#,
            env: ["P": path.description, "M": String(Self.maxBytes)], maxOutput: Self.maxBytes / 3 * 4 + 8)
        guard let data = Data(base64Encoded: result.stdout) else { throw E2BError(.internalServerError, "internal error") }
        return data
    }

    func write(_ path: WorkspacePath, _ data: Data) async throws {
        guard data.count <= Self.maxBytes else {
            throw E2BError(.contentTooLarge, "files outside /home/user and /workspace are written \(Self.maxBytes >> 20) MiB at most at once")
        }
        _ = try await run(
            #"mkdir -p -- "$(dirname -- "$P")" && base64 -d > "$P""#, env: ["P": path.description], stdin: data.base64EncodedString())
    }

    func makeDirectory(_ path: WorkspacePath) async throws {
        _ = try await run(#"[ -e "$P" ] && exit 46; mkdir -p -- "$P""#, env: ["P": path.description])
    }

    func remove(_ path: WorkspacePath) async throws {
        _ = try await run(#"[ -e "$P" ] || [ -L "$P" ] || exit 44; rm -rf -- "$P""#, env: ["P": path.description])
    }

    func move(_ source: WorkspacePath, to destination: WorkspacePath) async throws {
        _ = try await run(
            #"[ -e "$S" ] || [ -L "$S" ] || exit 44; mkdir -p -- "$(dirname -- "$D")" && mv -fT -- "$S" "$D""#,
            env: ["S": source.description, "D": destination.description])
    }
}

extension E2BPaths {
    /// Whether the host reaches `path` through the library's `WorkspaceFiles` (the workspace's persistent files);
    /// anything else is reached from inside the sandbox (``E2BCommandFiles``).
    static func isPersistent(_ path: WorkspacePath) -> Bool {
        let components = path.components
        return components.first == "workspace" || (components.count >= 2 && components[0] == "home" && components[1] == "agent")
    }
}
