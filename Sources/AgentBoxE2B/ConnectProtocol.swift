import AgentBox
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An error in the Connect protocol's terms: a code (`not_found`) and a message, sent as `{"code","message"}` with
/// the code's HTTP status on a unary call, or in the end-of-stream envelope of a streaming one.
struct ConnectError: Error, Sendable {
    enum Code: String, Sendable {
        case invalidArgument = "invalid_argument"
        case unauthenticated
        case permissionDenied = "permission_denied"
        case notFound = "not_found"
        case alreadyExists = "already_exists"
        case failedPrecondition = "failed_precondition"
        case resourceExhausted = "resource_exhausted"
        case `internal`
        case unimplemented
        case unavailable
        case deadlineExceeded = "deadline_exceeded"
        case canceled
        case dataLoss = "data_loss"

        /// The HTTP status Connect pairs with the code.
        var status: HTTPResponse.Status {
            switch self {
            case .invalidArgument, .failedPrecondition: .badRequest
            case .unauthenticated: .unauthorized
            case .permissionDenied: .forbidden
            case .notFound: .notFound
            case .alreadyExists: .conflict
            case .resourceExhausted: .tooManyRequests
            case .internal, .dataLoss: .internalServerError
            case .unimplemented: .notImplemented
            case .unavailable: .serviceUnavailable
            case .deadlineExceeded: .gatewayTimeout
            case .canceled: .init(code: 499)
            }
        }
    }

    var code: Code
    var message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The library's error in Connect's terms (`conflict` is `already_exists`: what envd answers for a directory
    /// that is there).
    init(_ error: any Error) {
        if let error = error as? ConnectError {
            self = error
            return
        }
        if let error = error as? E2BError {
            self.init(error.connectCode, error.message)
            return
        }
        guard let error = error as? AgentBoxError else {
            self.init(.internal, "internal error")
            return
        }
        let code: Code =
            switch error.code {
            case .invalidArgument: .invalidArgument
            case .notFound: .notFound
            case .conflict: .alreadyExists
            case .forbidden: .permissionDenied
            case .unauthenticated: .unauthenticated
            case .storageFull, .tooLarge, .limitReached: .resourceExhausted
            case .timeout, .gatewayTimeout: .deadlineExceeded
            case .unavailable, .badGateway: .unavailable
            case .unsupported: .unimplemented
            default: .internal
            }
        self.init(code, code == .internal ? "internal error" : E2BPaths.outsideText(error.message))
    }

    var json: [String: String] { ["code": code.rawValue, "message": message] }

    /// The unary error response.
    var response: Response {
        let body = (try? JSONSerialization.data(withJSONObject: json)) ?? Data()
        return Response(
            status: code.status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Connect's enveloped messages: one flag byte, a 4-byte big-endian length, the message (here JSON).
enum ConnectEnvelope {
    /// The flag of the end-of-stream message.
    static let endOfStream: UInt8 = 0x02
    /// The largest request message read (what envd's RPCs carry is small; file contents go through /files).
    static let maxMessageBytes = 4 << 20

    static func frame(_ json: Data, flags: UInt8 = 0) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(json.count + 5)
        buffer.writeInteger(flags)
        buffer.writeInteger(UInt32(json.count))
        buffer.writeBytes(json)
        return buffer
    }

    /// The end of a stream: `{}`, or the error.
    static func end(_ error: ConnectError?) -> ByteBuffer {
        let object: [String: Any] = error.map { ["error": $0.json] } ?? [:]
        return frame((try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8), flags: endOfStream)
    }

    /// Splits complete envelopes off the front of `buffer`; throws on a malformed or oversized one.
    static func next(from buffer: inout ByteBuffer) throws(ConnectError) -> (flags: UInt8, message: Data)? {
        guard buffer.readableBytes >= 5,
            let flags = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self)
        else { return nil }
        guard Int(length) <= maxMessageBytes else {
            throw ConnectError(.resourceExhausted, "a message of \(length) bytes is larger than \(maxMessageBytes)")
        }
        guard flags & ~UInt8(0x03) == 0 else { throw ConnectError(.invalidArgument, "unknown envelope flags \(flags)") }
        guard flags & 0x01 == 0 else { throw ConnectError(.unimplemented, "compressed messages are not supported") }
        guard buffer.readableBytes >= 5 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 5)
        let bytes = buffer.readBytes(length: Int(length)) ?? []
        return (flags, Data(bytes))
    }

    /// The one message of a server-streaming request's body.
    static func single(_ body: ByteBuffer) throws(ConnectError) -> Data {
        var body = body
        guard let (flags, message) = try next(from: &body), flags == 0 else {
            throw ConnectError(.invalidArgument, "the request body is not one Connect envelope")
        }
        return message
    }
}

/// A message of a client stream, read with a bounded buffer as its bytes arrive.
struct ConnectEnvelopeReader: AsyncSequence {
    typealias Element = Data
    let body: RequestBody

    struct AsyncIterator: AsyncIteratorProtocol {
        var source: RequestBody.AsyncIterator
        var buffer = ByteBuffer()
        var finished = false

        mutating func next() async throws -> Data? {
            while true {
                if let (flags, message) = try ConnectEnvelope.next(from: &buffer) {
                    if flags & ConnectEnvelope.endOfStream != 0 { return nil }
                    return message
                }
                if finished {
                    guard buffer.readableBytes == 0 else { throw ConnectError(.invalidArgument, "the request ends inside a message") }
                    return nil
                }
                guard var chunk = try await source.next() else {
                    finished = true
                    continue
                }
                if buffer.readableBytes + chunk.readableBytes > ConnectEnvelope.maxMessageBytes + 5 {
                    throw ConnectError(.resourceExhausted, "a message is larger than \(ConnectEnvelope.maxMessageBytes) bytes")
                }
                buffer.writeBuffer(&chunk)
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: body.makeAsyncIterator()) }
}
