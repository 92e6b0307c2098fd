import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1

/// The LLM gateway's routes: each provider's own API under `/llm/{provider}/`, authenticated by a workspace's gateway
/// key (not the server's token). The library does the rest (``WorkspaceManager/forwardLLM(_:)``): this carries the
/// request in and the answer out, chunk by chunk.
struct LLMGatewayController {
    let manager: WorkspaceManager

    static let routes: [(LLMProvider, String, String)] = [
        (.anthropic, "/v1/messages", "Anthropic Messages (streaming or not)"),
        (.anthropic, "/v1/messages/count_tokens", "Anthropic token counting"),
        (.openai, "/v1/responses", "OpenAI Responses (streaming or not)"),
        (.openai, "/v1/chat/completions", "OpenAI Chat Completions (streaming or not)"),
    ]

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        for (provider, path, summary) in Self.routes {
            let operationID = "llm" + provider.rawValue.capitalized + path.split(separator: "/").dropFirst().map { $0.replacingOccurrences(of: "_", with: " ").capitalized.replacingOccurrences(of: " ", with: "") }.joined()
            registry.add(
                APIOperation(
                    method: .post, path: "/llm/\(provider.rawValue)\(path)", operationID: operationID,
                    summary: "\(summary) through the LLM gateway, with the workspace's gateway key", tag: "llm",
                    requestBody: .init(contentType: "application/json", schema: ["type": "object"]),
                    replies: [
                        .init(status: 200, description: "The provider's answer, passed through (JSON, or text/event-stream)"),
                        .init(status: 401, description: "Not a gateway key of this server's workspaces (the provider's error format)"),
                        .init(status: 403, description: "A model the workspace's budget does not allow"),
                        .init(status: 404, description: "This server's gateway does not serve the provider"),
                        .init(status: 413, description: "A request body over 32 MiB"),
                        .init(status: 429, description: "The workspace's budget is used up (x-should-retry: false)"),
                        .init(status: 502, description: "The upstream could not be reached"),
                        .init(status: 504, description: "The upstream did not answer in time"),
                    ],
                    access: .gatewayKey)
            ) { request, context in
                let body: ByteBuffer
                do {
                    body = try await request.body.collect(upTo: LLMGateway.maxRequestBytes)
                } catch is NIOTooManyBytesError {
                    return Self.response(WorkspaceManager.llmTooLarge(provider))
                }
                var headers = HTTPHeaders()
                for field in request.headers { headers.add(name: field.name.rawName, value: field.value) }
                let answer = await manager.forwardLLM(
                    LLMGatewayRequest(provider: provider, path: path, query: request.uri.query, headers: headers, body: body))
                return Self.response(answer)
            }
        }
    }

    static func response(_ answer: LLMGatewayAnswer) -> Response {
        var fields = HTTPFields()
        for (name, value) in answer.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        let status = HTTPResponse.Status(code: answer.status)
        switch answer.body {
        case .bytes(let bytes):
            return Response(status: status, headers: fields, body: .init(byteBuffer: bytes))
        case .upstream(let stream):
            return Response(
                status: status, headers: fields,
                body: ResponseBody { writer in
                    try await stream.stream { chunk in try await writer.write(chunk) }
                    try await writer.finish(nil)
                })
        }
    }
}
