import AgentBox
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The one error type of the E2B module: an HTTP status and a message, rendered as E2B's `{"code","message"}` on the
/// control plane and `/files`, and as the matching Connect error on envd's RPCs.
struct E2BError: Error, Sendable {
    var status: HTTPResponse.Status
    var message: String

    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    /// The library's errors with the statuses AgentBox's own API gives them.
    init(_ error: any Error) {
        if let error = error as? E2BError {
            self = error
            return
        }
        if let error = error as? ConnectError {
            self.init(error.code.status, error.message)
            return
        }
        guard let error = error as? AgentBoxError else {
            self.init(.internalServerError, "internal error")
            return
        }
        let status: HTTPResponse.Status =
            switch error.code {
            case .invalidArgument: .badRequest
            case .notFound: .notFound
            case .conflict: .conflict
            case .forbidden: .forbidden
            case .unauthenticated: .unauthorized
            case .storageFull: .init(code: 507)
            case .tooLarge: .contentTooLarge
            case .limitReached: .tooManyRequests
            case .timeout: .requestTimeout
            case .unavailable: .serviceUnavailable
            case .badGateway: .badGateway
            case .gatewayTimeout: .gatewayTimeout
            case .unsupported: .notImplemented
            default: .internalServerError
            }
        self.init(status, status == .internalServerError ? "internal error" : E2BPaths.outsideText(error.message))
    }

    var connectCode: ConnectError.Code {
        switch status.code {
        case 400: .invalidArgument
        case 401: .unauthenticated
        case 403: .permissionDenied
        case 404: .notFound
        case 409: .alreadyExists
        case 413, 429, 507: .resourceExhausted
        case 501: .unimplemented
        case 502, 503: .unavailable
        case 504, 408: .deadlineExceeded
        default: .internal
        }
    }

    var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        // The SDK retries 429 and 5xx answers; these are final.
        headers[HTTPField.Name("Should-Retry")!] = "false"
        let body = (try? JSONSerialization.data(withJSONObject: ["code": status.code, "message": message] as [String: Any])) ?? Data()
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// JSON in and out, as E2B's services write it.
enum E2BJSON {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(E2BError) -> T {
        do {
            return try JSONDecoder().decode(type, from: data.isEmpty ? Data("{}".utf8) : data)
        } catch let error as DecodingError {
            throw E2BError(.badRequest, "the request body is not valid: \(describe(error))")
        } catch {
            throw E2BError(.badRequest, "the request body is not valid JSON")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        @unknown default:
            return "malformed"
        }
    }

    static func response<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func data<T: Encodable>(_ value: T) -> Data {
        (try? encoder.encode(value)) ?? Data("{}".utf8)
    }

    /// RFC 3339 with milliseconds and `Z`.
    static func time(_ date: Date) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
    }
}

/// An integer that proto3 JSON may write as a number or as a string (64-bit fields).
struct ProtoInt: Decodable, Sendable {
    var value: Int64

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            value = number
        } else if let text = try? container.decode(String.self), let number = Int64(text) {
            value = number
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected an integer")
        }
    }
}
