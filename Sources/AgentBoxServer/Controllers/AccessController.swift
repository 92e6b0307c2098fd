import AgentBox
import AgentBoxAPI
import Foundation
import Hummingbird

/// `POST/GET /v1/tokens`, `DELETE /v1/tokens/{id}`: API tokens with a role and workspace patterns (admin only).
struct AccessController {
    let manager: WorkspaceManager

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        registry.add(
            APIOperation(
                method: .post, path: "/v1/tokens", operationID: "createToken",
                summary: "Make an API token: role admin, user or reader, workspace patterns, expiry (its secret is shown only here)",
                tag: "access", requestBody: Schema.json("TokenCreateRequest"),
                replies: [.init(status: 201, description: "The token, with its secret", body: Schema.json("AccessToken"))] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: TokenCreateRequest.self, context: context)
            return EditedResponse(status: .created, response: try await manager.createAccessToken(body))
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/tokens", operationID: "listTokens", summary: "The API tokens (never their secrets)", tag: "access",
                replies: [.init(status: 200, description: "The tokens", body: Schema.json("AccessTokenList"))] + Schema.problemReplies)
        ) { _, _ in
            try await manager.accessTokens()
        }
        registry.add(
            APIOperation(
                method: .delete, path: "/v1/tokens/{id}", operationID: "revokeToken",
                summary: "Revoke a token: refused from then on, its open streams end", tag: "access",
                parameters: [.init(name: "id", location: .path, schema: Schema.string, description: "The token's id (tok_…)", required: true)],
                replies: [.init(status: 204, description: "Revoked"), .init(status: 404, description: "No such token", body: Schema.problem)]
                    + Schema.problemReplies)
        ) { _, context in
            try await manager.revokeAccessToken(id: context.pathParameter("id"))
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/login-links", operationID: "createLoginLink",
                summary: "A one-time Inspector login link for the caller (works once, within two minutes; `agentbox ui`)", tag: "access",
                replies: [.init(status: 201, description: "The link's code and path", body: Schema.json("LoginLink"))] + Schema.problemReplies,
                everyRole: true)
        ) { _, context in
            EditedResponse(status: .created, response: try await manager.createLoginLink(for: context.principal))
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/login", operationID: "login",
                summary: "Exchange a login link's code for a token of the link maker's role and workspaces (at most 12 h)", tag: "access",
                requestBody: Schema.json("LoginRequest"),
                replies: [
                    .init(status: 200, description: "The token, with its secret", body: Schema.json("AccessToken")),
                    .init(status: 401, description: "The code is unknown, used or expired", body: Schema.problem),
                ] + Schema.problemReplies,
                access: .open)
        ) { request, context in
            let body = try await request.decode(as: LoginRequest.self, context: context)
            return try await manager.login(code: body.code)
        }
    }
}

extension LoginLink: ResponseEncodable {}

extension AccessToken: ResponseEncodable {}
extension AccessTokenList: ResponseEncodable {}
