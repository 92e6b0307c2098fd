import AgentBoxAPI
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// An error answer of the server: its status and problem document.
///
/// ```swift
/// do { _ = try await client.workspace("missing") } catch let error as AgentBoxClientError where error.status == 404 {
///     print(error.problem.detail)
/// }
/// ```
public struct AgentBoxClientError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status.
    public let status: Int
    /// The server's problem document (or one made from the status line when the body was not one).
    public let problem: Problem

    /// Reads the problem document of an error answer (at most 1 MiB of it).
    init(response: HTTPClientResponse) async throws {
        status = Int(response.status.code)
        let body = try await response.body.collect(upTo: 1 << 20)
        if let problem = try? AgentBoxJSON.makeDecoder().decode(Problem.self, from: Data(body.readableBytesView)) {
            self.problem = problem
        } else {
            problem = Problem(title: response.status.reasonPhrase, status: status, detail: String(buffer: body))
        }
    }

    /// The problem's title and detail, on one line.
    public var description: String { problem.detail.isEmpty ? problem.title : "\(problem.title): \(problem.detail)" }

    /// An error with this status and problem (for errors reported inside a stream, and for tests).
    public init(status: Int, problem: Problem) {
        self.status = status
        self.problem = problem
    }
}

/// An answer larger than the client reads for its call (64 MiB, or what an exec's `maxOutputBytes` can make).
public struct AgentBoxResponseTooLarge: Error, Sendable, CustomStringConvertible {
    public let limit: Int
    public let path: String

    public var description: String {
        "the server's answer to \(path) is larger than this client reads (\(limit >> 20) MiB); for large output, spawn the command and read its output, or write it to a file"
    }
}
