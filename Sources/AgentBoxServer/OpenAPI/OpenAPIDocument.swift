import AgentBoxAPI
import HTTPTypes

/// Builds the OpenAPI 3.1 document served at `/v1/openapi.json` from the operations the router serves.
enum OpenAPIDocument {
    static func build(operations: [APIOperation]) -> JSONValue {
        var paths: [String: JSONValue] = [:]
        for operation in operations {
            var entry: [String: JSONValue] = [
                "operationId": .string(operation.operationID),
                "summary": .string(operation.summary),
                "tags": [.string(operation.tag)],
            ]
            var parameters = operation.parameters
            if operation.access == .stream {
                parameters.append(
                    .init(name: "access_token", location: .query, schema: Schema.string, description: "The bearer token, for clients that cannot set headers (EventSource, WebSocket)", required: false))
            }
            if !parameters.isEmpty {
                entry["parameters"] = .array(
                    parameters.map { parameter in
                        [
                            "name": .string(parameter.name), "in": .string(parameter.location.rawValue),
                            "required": .bool(parameter.required), "description": .string(parameter.description),
                            "schema": parameter.schema,
                        ]
                    })
            }
            if let body = operation.requestBody {
                entry["requestBody"] = ["required": false, "content": [body.contentType: ["schema": body.schema]]]
            }
            var responses: [String: JSONValue] = [:]
            for reply in operation.replies {
                var response: [String: JSONValue] = ["description": .string(reply.description)]
                if let body = reply.body { response["content"] = [body.contentType: ["schema": body.schema]] }
                responses[String(reply.status)] = .object(response)
            }
            entry["responses"] = .object(responses)
            if operation.access != .bearer && operation.access != .stream { entry["security"] = [] }
            // The route's declaration, as the server enforces it.
            entry["x-agentbox-access"] = .string(operation.access.name)
            entry["x-agentbox-scope"] = .string(operation.scope.rawValue)
            if operation.scopedTokens || operation.everyRole { entry["x-agentbox-scoped-tokens"] = true }
            if operation.everyRole { entry["x-agentbox-every-role"] = true }
            var item: [String: JSONValue] = [:]
            if case .object(let existing) = paths[operation.path] { item = existing }
            item[operation.method.rawValue.lowercased()] = .object(entry)
            paths[operation.path] = .object(item)
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "AgentBox API", "version": .string(agentBoxVersion),
                "description": "Persistent, isolated Linux workspaces for AI agents.",
            ],
            "servers": [["url": "/"]],
            "security": [["bearerAuth": []]],
            "paths": .object(paths),
            "components": [
                "securitySchemes": ["bearerAuth": ["type": "http", "scheme": "bearer"]],
                "schemas": schemas.adding(DesktopController.schemas),
            ],
        ]
    }

    static let schemas: JSONValue = [
        "WorkspaceKey": [
            "type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$",
            "description": "1–128 characters of A–Z a–z 0–9 . _ - :",
        ],
        "Problem": [
            "type": "object", "required": ["type", "title", "status", "detail"],
            "properties": [
                "type": ["type": "string"], "title": ["type": "string"], "status": ["type": "integer"],
                "detail": ["type": "string"],
            ],
        ],
        "ClusterStatus": [
            "type": "object", "required": ["node", "nodes"],
            "properties": [
                "node": ["type": "string"],
                "nodes": [
                    "type": "array",
                    "items": [
                        "type": "object", "required": ["id", "advertise", "state", "lastSeenAt", "startedAt", "workspaces"],
                        "properties": [
                            "id": ["type": "string"], "advertise": ["type": "string"], "state": ["type": "string", "enum": ["up", "down"]],
                            "lastSeenAt": ["type": "string", "format": "date-time"], "startedAt": ["type": "string", "format": "date-time"],
                            "workspaces": ["type": "array", "items": ["type": "string"]],
                        ],
                    ],
                ],
            ],
        ],
        "Health": [
            "type": "object", "required": ["status", "version"],
            "properties": ["status": ["type": "string", "enum": ["ok"]], "version": ["type": "string"]],
        ],
        "WorkspaceMetrics": [
            "type": "object",
            "required": ["state", "cpuUsageMs", "memoryBytes", "memoryPeakBytes", "pids", "diskBytes", "netRxBytes", "netTxBytes", "sampledAt"],
            "properties": [
                "state": ["type": "string", "enum": ["sleeping", "booting", "running"]],
                "cpuUsageMs": ["type": "integer", "description": "CPU time since the workspace booted (user + system, all cores)"],
                "memoryBytes": ["type": "integer", "description": "Memory charged to its cgroup now"],
                "memoryPeakBytes": ["type": "integer", "description": "The most memory charged to it since it booted"],
                "pids": ["type": "integer", "description": "Tasks (processes and threads) now"],
                "diskBytes": ["type": "integer", "description": "Bytes its files take on disk"],
                "diskLimitBytes": ["type": "integer", "description": "The disk limit in force, when one is enforced"],
                "netRxBytes": ["type": "integer", "description": "Bytes into the workspace since it booted: egress answers, preview and fetch requests"],
                "netTxBytes": ["type": "integer", "description": "Bytes out of the workspace since it booted: egress requests, preview and fetch answers"],
                "sampledAt": ["type": "string", "format": "date-time"],
            ],
        ],
        "LLMUsageFigures": [
            "type": "object", "required": ["requests", "inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens"],
            "properties": [
                "requests": ["type": "integer"], "inputTokens": ["type": "integer"], "outputTokens": ["type": "integer"],
                "cacheReadTokens": ["type": "integer"], "cacheWriteTokens": ["type": "integer"],
            ],
        ],
        "LLMUsage": [
            "type": "object",
            "required": ["requests", "inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens", "byModel", "bySession"],
            "properties": [
                "requests": ["type": "integer"], "inputTokens": ["type": "integer"], "outputTokens": ["type": "integer"],
                "cacheReadTokens": ["type": "integer"], "cacheWriteTokens": ["type": "integer"],
                "byModel": ["type": "object", "additionalProperties": ["$ref": "#/components/schemas/LLMUsageFigures"]],
                "bySession": ["type": "object", "additionalProperties": ["$ref": "#/components/schemas/LLMUsageFigures"]],
            ],
        ],
        "TokenCreateRequest": [
            "type": "object", "required": ["workspaces", "role"],
            "properties": [
                "workspaces": ["type": "array", "minItems": 1, "maxItems": 100, "items": ["type": "string", "minLength": 1]],
                "role": ["type": "string", "enum": ["admin", "user", "reader"]],
                "expiresInSeconds": ["type": "integer", "minimum": 1, "maximum": 315_360_000], "label": ["type": "string"],
            ],
        ],
        "AccessToken": [
            "type": "object", "required": ["id", "workspaces", "role", "createdAt"],
            "properties": [
                "id": ["type": "string"], "token": ["type": "string", "description": "The secret: in the answer to POST only"],
                "workspaces": ["type": "array", "items": ["type": "string"]], "role": ["type": "string", "enum": ["admin", "user", "reader"]],
                "createdAt": ["type": "string", "format": "date-time"], "expiresAt": ["type": "string", "format": "date-time"],
                "label": ["type": "string"],
                "parentId": ["type": "string", "description": "The token whose login link made this one; revoking it revokes this"],
            ],
        ],
        "LoginLink": [
            "type": "object", "required": ["code", "url", "expiresAt"],
            "properties": [
                "code": ["type": "string"], "url": ["type": "string", "description": "/ui/#login=CODE"],
                "expiresAt": ["type": "string", "format": "date-time"],
            ],
        ],
        "LoginRequest": ["type": "object", "required": ["code"], "properties": ["code": ["type": "string", "maxLength": 200]]],
        "AccessTokenList": [
            "type": "object", "required": ["items"], "properties": ["items": ["type": "array", "items": ["$ref": "#/components/schemas/AccessToken"]]],
        ],
        "LLMBudget": [
            "type": "object",
            "properties": [
                "maxInputTokens": ["type": "integer", "minimum": 0], "maxOutputTokens": ["type": "integer", "minimum": 0],
                "maxRequests": ["type": "integer", "minimum": 0],
                "models": ["type": "array", "maxItems": 100, "items": ["type": "string", "minLength": 1]],
            ],
        ],
        "WorkspaceUsage": [
            "type": "object", "required": ["llm", "toolCalls"],
            "properties": [
                "llm": ["$ref": "#/components/schemas/LLMUsage"], "budget": ["$ref": "#/components/schemas/LLMBudget"],
                "toolCalls": ["type": "integer"],
            ],
        ],
        "WorkspaceLimits": [
            "type": "object",
            "properties": [
                "memoryMb": ["type": "integer", "minimum": 16], "cpuPercent": ["type": "integer", "minimum": 1],
                "pids": ["type": "integer", "minimum": 1], "diskMb": ["type": "integer", "minimum": 1],
            ],
        ],
        "EgressPolicy": [
            "oneOf": [
                ["type": "string", "enum": ["deny", "allow"]],
                [
                    "type": "object", "required": ["allow"],
                    "properties": ["allow": ["type": "array", "items": ["type": "string"]]],
                ],
            ]
        ],
        "NetworkPolicy": [
            "type": "object", "properties": ["egress": ["$ref": "#/components/schemas/EgressPolicy"]],
        ],
        "WorkspaceMount": [
            "type": "object", "required": ["type", "path"],
            "properties": [
                "type": ["type": "string", "enum": ["tmpfs", "host"]], "path": ["type": "string"],
                "sizeMb": ["type": "integer"], "hostPath": ["type": "string"], "readOnly": ["type": "boolean"],
            ],
        ],
        "WorkspaceConfig": [
            "type": "object",
            "properties": [
                "limits": ["$ref": "#/components/schemas/WorkspaceLimits"],
                "env": ["type": "object", "additionalProperties": ["type": "string"]],
                "network": ["$ref": "#/components/schemas/NetworkPolicy"],
                "mounts": ["type": "array", "items": ["$ref": "#/components/schemas/WorkspaceMount"]],
                "fromSnapshot": ["type": "string", "description": "Create the workspace from this snapshot's files (a fork)"],
                "image": ["type": "string", "description": "Start the workspace from this image (copy-on-write)"],
                "toolkits": [
                    "type": "array", "maxItems": 16, "items": ["type": "string", "pattern": "^[a-z][a-z0-9-]{0,31}$"],
                    "description": "Host toolkits it may call (on an existing workspace: replaces its own, from its next boot)",
                ],
                "llm": [
                    "$ref": "#/components/schemas/LLMBudget",
                    "description": "Its budget at the LLM gateway (on an existing workspace: replaces its own at once; {} removes it)",
                ],
            ],
        ],
        "Workspace": [
            "type": "object", "required": ["key", "state", "createdAt", "lastActiveAt", "limits", "network", "env"],
            "properties": [
                "key": ["$ref": "#/components/schemas/WorkspaceKey"],
                "state": ["type": "string", "enum": ["sleeping", "booting", "running"]],
                "createdAt": ["type": "string", "format": "date-time"],
                "lastActiveAt": ["type": "string", "format": "date-time"],
                "limits": ["$ref": "#/components/schemas/WorkspaceLimits"],
                "network": ["$ref": "#/components/schemas/NetworkPolicy"],
                "env": ["type": "object", "additionalProperties": ["type": "string"]],
                "image": ["type": "string", "description": "The image it started from"],
                "toolkits": ["type": "array", "items": ["type": "string"]],
                "llm": ["$ref": "#/components/schemas/LLMBudget"],
            ],
        ],
        "ExecRequest": [
            "type": "object", "required": ["command"],
            "properties": [
                "command": ["type": "string", "description": "Run by /bin/sh -c"], "cwd": ["type": "string"],
                "env": ["type": "object", "additionalProperties": ["type": "string"]], "stdin": ["type": "string"],
                "stdinEncoding": ["type": "string", "enum": ["utf8", "base64"], "description": "base64: stdin is any bytes, base64-encoded"],
                "timeoutMs": ["type": "integer", "minimum": 1], "maxOutputBytes": ["type": "integer", "minimum": 0],
                "user": ["type": "string", "enum": ["root", "agent"], "description": "agent: the unprivileged uid 1000; root (default): the workspace's root"],
            ],
        ],
        "ExecResult": [
            "type": "object",
            "required": ["exitCode", "stdout", "stderr", "timedOut", "truncated", "durationMs", "processId"],
            "properties": [
                "exitCode": ["type": "integer"], "signal": ["type": "string"], "stdout": ["type": "string"],
                "stderr": ["type": "string"], "stdoutEncoding": ["type": "string", "enum": ["utf8", "base64"]],
                "stderrEncoding": ["type": "string", "enum": ["utf8", "base64"]], "timedOut": ["type": "boolean"],
                "truncated": ["type": "boolean"], "durationMs": ["type": "number"], "processId": ["type": "string"],
            ],
        ],
        "SpawnRequest": [
            "type": "object", "required": ["command"],
            "properties": [
                "command": ["type": "string"], "args": ["type": "array", "items": ["type": "string"]],
                "cwd": ["type": "string"], "env": ["type": "object", "additionalProperties": ["type": "string"]],
                "user": ["type": "string", "enum": ["root", "agent"], "description": "agent: the unprivileged uid 1000; root (default): the workspace's root"],
            ],
        ],
        "Process": [
            "type": "object", "required": ["id", "pid", "command", "args", "cwd", "status", "startedAt"],
            "properties": [
                "id": ["type": "string"], "pid": ["type": "integer"], "command": ["type": "string"],
                "args": ["type": "array", "items": ["type": "string"]], "cwd": ["type": "string"],
                "status": ["type": "string", "enum": ["running", "exited"]], "exitCode": ["type": "integer"],
                "signal": ["type": "string"], "startedAt": ["type": "string", "format": "date-time"],
                "exitedAt": ["type": "string", "format": "date-time"],
            ],
        ],
        "ProcessList": [
            "type": "object", "required": ["items"],
            "properties": ["items": ["type": "array", "items": ["$ref": "#/components/schemas/Process"]]],
        ],
        "ProcessOutput": [
            "type": "object", "required": ["stdout", "stderr", "truncated"],
            "properties": [
                "stdout": ["type": "string"], "stderr": ["type": "string"],
                "stdoutEncoding": ["type": "string", "enum": ["utf8", "base64"]],
                "stderrEncoding": ["type": "string", "enum": ["utf8", "base64"]], "truncated": ["type": "boolean"],
            ],
        ],
        "SignalRequest": [
            "type": "object", "required": ["signal"],
            "properties": ["signal": ["type": "string", "enum": ["TERM", "KILL", "INT", "HUP", "QUIT", "USR1", "USR2", "STOP", "CONT", "WINCH"]]],
        ],
        "FileType": ["type": "string", "enum": ["file", "directory", "symlink", "other"]],
        "FileEntry": [
            "type": "object", "required": ["name", "path", "type", "size", "modifiedAt"],
            "properties": [
                "name": ["type": "string"], "path": ["type": "string"], "type": ["$ref": "#/components/schemas/FileType"],
                "size": ["type": "integer"], "modifiedAt": ["type": "string", "format": "date-time"], "target": ["type": "string"],
            ],
        ],
        "FileEntryList": [
            "type": "object", "required": ["items", "truncated"],
            "properties": ["items": ["type": "array", "items": ["$ref": "#/components/schemas/FileEntry"]], "truncated": ["type": "boolean"]],
        ],
        "FileStat": [
            "type": "object", "required": ["path", "type", "size", "mode", "modifiedAt"],
            "properties": [
                "path": ["type": "string"], "type": ["$ref": "#/components/schemas/FileType"], "size": ["type": "integer"],
                "mode": ["type": "integer"], "modifiedAt": ["type": "string", "format": "date-time"], "target": ["type": "string"],
            ],
        ],
        "FileExists": ["type": "object", "required": ["exists"], "properties": ["exists": ["type": "boolean"]]],
        "FileWriteResult": [
            "type": "object", "required": ["path", "bytesWritten"],
            "properties": ["path": ["type": "string"], "bytesWritten": ["type": "integer"]],
        ],
        "MkdirRequest": [
            "type": "object", "required": ["path"], "properties": ["path": ["type": "string"], "recursive": ["type": "boolean"]],
        ],
        "MoveRequest": [
            "type": "object", "required": ["from", "to"],
            "properties": ["from": ["type": "string"], "to": ["type": "string"], "overwrite": ["type": "boolean"]],
        ],
        "UploadResult": [
            "type": "object", "required": ["paths", "count"],
            "properties": ["paths": ["type": "array", "items": ["type": "string"]], "count": ["type": "integer"]],
        ],
        "FileWatchEvent": [
            "type": "object", "required": ["type", "path"],
            "properties": [
                "type": ["type": "string", "enum": ["created", "modified", "deleted", "moved", "overflow"]],
                "path": ["type": "string"], "from": ["type": "string"], "isDirectory": ["type": "boolean"],
            ],
        ],
        "Image": [
            "type": "object", "required": ["name", "createdAt", "sizeBytes", "fromWorkspace"],
            "properties": [
                "name": ["type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"], "createdAt": ["type": "string", "format": "date-time"],
                "sizeBytes": ["type": "integer"], "fromWorkspace": ["$ref": "#/components/schemas/WorkspaceKey"],
                "description": ["type": "string"],
            ],
        ],
        "ImageList": ["type": "object", "required": ["items"], "properties": ["items": ["type": "array", "items": ["$ref": "#/components/schemas/Image"]]]],
        "CreateImageRequest": [
            "type": "object", "required": ["name", "fromWorkspace"],
            "properties": [
                "name": ["type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"],
                "fromWorkspace": ["$ref": "#/components/schemas/WorkspaceKey"], "description": ["type": "string", "maxLength": 1024],
            ],
        ],
        "Snapshot": [
            "type": "object", "required": ["id", "workspace", "createdAt", "sizeBytes"],
            "properties": [
                "id": ["type": "string", "pattern": "^snap-[a-z0-9]{20}$"], "workspace": ["$ref": "#/components/schemas/WorkspaceKey"],
                "createdAt": ["type": "string", "format": "date-time"], "sizeBytes": ["type": "integer"],
            ],
        ],
        "FetchRequest": [
            "type": "object", "required": ["port", "path"],
            "properties": [
                "port": ["type": "integer", "minimum": 1, "maximum": 65535], "path": ["type": "string", "pattern": "^/"],
                "method": ["type": "string"], "headers": ["type": "object", "additionalProperties": ["type": "string"]],
                "body": ["type": "string", "format": "byte"],
            ],
        ],
        "PreviewRequest": [
            "type": "object", "required": ["port"],
            "properties": [
                "port": ["type": "integer", "minimum": 1, "maximum": 65535],
                "expiresInSeconds": ["type": "integer", "minimum": 1, "maximum": 86400],
            ],
        ],
        "Preview": [
            "type": "object", "required": ["token", "port", "path", "expiresAt"],
            "properties": [
                "token": ["type": "string", "pattern": "^[a-z0-9]{32}$"], "port": ["type": "integer"], "path": ["type": "string"],
                "url": ["type": "string"], "expiresAt": ["type": "string", "format": "date-time"],
            ],
        ],
        "PreviewList": [
            "type": "object", "required": ["items"],
            "properties": [
                "items": [
                    "type": "array",
                    "items": [
                        "type": "object", "required": ["token", "port", "expiresAt"],
                        "properties": [
                            "token": ["type": "string"], "port": ["type": "integer"], "expiresAt": ["type": "string", "format": "date-time"],
                        ],
                    ],
                ]
            ],
        ],
        "FetchResponse": [
            "type": "object", "required": ["status", "headers", "body"],
            "properties": [
                "status": ["type": "integer"], "headers": ["type": "object", "additionalProperties": ["type": "string"]],
                "body": ["type": "string", "format": "byte"],
            ],
        ],
        "SnapshotList": [
            "type": "object", "required": ["items"],
            "properties": ["items": ["type": "array", "items": ["$ref": "#/components/schemas/Snapshot"]]],
        ],
        "ShellCreateRequest": [
            "type": "object",
            "properties": [
                "command": ["type": "string"], "args": ["type": "array", "items": ["type": "string"]], "cwd": ["type": "string"],
                "env": ["type": "object", "additionalProperties": ["type": "string"]],
                "cols": ["type": "integer", "minimum": 1, "maximum": 4096], "rows": ["type": "integer", "minimum": 1, "maximum": 4096],
                "user": ["type": "string", "enum": ["root", "agent"], "description": "agent: the unprivileged uid 1000; root (default): the workspace's root"],
            ],
        ],
        "Shell": [
            "type": "object", "required": ["id", "command", "args", "cols", "rows", "status", "pid", "createdAt"],
            "properties": [
                "id": ["type": "string"], "command": ["type": "string"], "args": ["type": "array", "items": ["type": "string"]],
                "cols": ["type": "integer"], "rows": ["type": "integer"], "status": ["type": "string", "enum": ["running", "exited"]],
                "exitCode": ["type": "integer"], "pid": ["type": "integer"], "createdAt": ["type": "string", "format": "date-time"],
            ],
        ],
        "ShellList": [
            "type": "object", "required": ["items"],
            "properties": ["items": ["type": "array", "items": ["$ref": "#/components/schemas/Shell"]]],
        ],
        "ShellResize": [
            "type": "object", "required": ["cols", "rows"],
            "properties": ["cols": ["type": "integer", "minimum": 1, "maximum": 4096], "rows": ["type": "integer", "minimum": 1, "maximum": 4096]],
        ],
        "PermissionPolicy": [
            "type": "object",
            "description": "A decision per ACP tool kind, a default for the rest, and how long an ask waits before it rejects",
            "properties": [
                "rules": ["type": "object", "additionalProperties": ["type": "string", "enum": ["allow", "reject", "ask"]]],
                "default": ["type": "string", "enum": ["allow", "reject", "ask"]],
                "timeoutMs": ["type": "integer", "minimum": 1],
            ],
        ],
        "SessionCreateRequest": [
            "type": "object", "required": ["agent"],
            "properties": [
                "agent": ["type": "string"], "cwd": ["type": "string"],
                "env": ["type": "object", "additionalProperties": ["type": "string"], "description": "For the agent process only; never stored"],
                "mcpServers": [
                    "type": "array", "items": ["type": "object", "required": ["name"], "properties": ["name": ["type": "string", "minLength": 1]]],
                    "description": "ACP's McpServer objects (stdio, http, sse); agentbox-toolkits is reserved",
                ],
                "model": ["type": "string"], "mode": ["type": "string"],
                "instructions": ["type": "string"], "toolkitsInInstructions": ["type": "boolean"],
                "permissions": ["$ref": "#/components/schemas/PermissionPolicy"],
            ],
        ],
        "Session": [
            "type": "object", "required": ["id", "workspace", "agent", "status", "createdAt", "cwd", "agentRunning", "lastEventSeq"],
            "properties": [
                "id": ["type": "string"], "workspace": ["type": "string"], "agent": ["type": "string"],
                "status": ["type": "string", "enum": ["idle", "running", "closed"]], "createdAt": ["type": "string", "format": "date-time"],
                "agentSessionId": ["type": "string"], "stopReason": ["type": "string"], "cwd": ["type": "string"],
                "agentRunning": ["type": "boolean"], "permissions": ["$ref": "#/components/schemas/PermissionPolicy"],
                "lastEventSeq": ["type": "integer"],
                "usage": ["$ref": "#/components/schemas/LLMUsageFigures", "description": "Its model calls through the LLM gateway"],
                "model": ["type": "string"], "mode": ["type": "string"],
                "availableModels": ["type": "array", "items": ["$ref": "#/components/schemas/AgentOption"]],
                "availableModes": ["type": "array", "items": ["$ref": "#/components/schemas/AgentOption"]],
            ],
        ],
        "ACPEnvelope": [
            "type": "object", "description": "A JSON-RPC 2.0 message (ACP)",
            "properties": ["jsonrpc": ["type": "string"], "id": [:], "method": ["type": "string"], "params": [:], "result": [:], "error": [:]],
        ],
        "ACPServerList": [
            "type": "object", "required": ["servers"],
            "properties": [
                "servers": [
                    "type": "array",
                    "items": [
                        "type": "object", "required": ["serverId", "agent", "createdAtMs"],
                        "properties": [
                            "serverId": ["type": "string"], "agent": ["type": "string"], "createdAtMs": ["type": "integer"],
                            "workspace": ["type": "string"], "sessionId": ["type": "string"],
                        ],
                    ],
                ]
            ],
        ],
        "AgentOption": [
            "type": "object", "required": ["id", "name"],
            "properties": ["id": ["type": "string"], "name": ["type": "string"], "description": ["type": "string"]],
        ],
        "QuestionReplyRequest": [
            "type": "object",
            "properties": ["answer": ["description": "An object of the question's fields, or a bare value for a question of one field"],
                           "action": ["type": "string", "enum": ["accept", "decline", "cancel"]]],
        ],
        "SessionModelRequest": [
            "type": "object", "required": ["model"], "properties": ["model": ["type": "string", "minLength": 1, "maxLength": 256]],
        ],
        "SessionModeRequest": [
            "type": "object", "required": ["mode"], "properties": ["mode": ["type": "string", "minLength": 1, "maxLength": 256]],
        ],
        "SessionList": [
            "type": "object", "required": ["items"],
            "properties": ["items": ["type": "array", "items": ["$ref": "#/components/schemas/Session"]]],
        ],
        "PromptRequest": [
            "type": "object", "required": ["content"],
            "properties": [
                "content": [
                    "type": "array", "minItems": 1, "maxItems": 64,
                    "items": [
                        "type": "object", "required": ["type"],
                        "properties": [
                            "type": ["type": "string", "enum": ["text", "image", "file"]], "text": ["type": "string"],
                            "mimeType": ["type": "string", "enum": ["image/png", "image/jpeg", "image/gif", "image/webp"]],
                            "data": ["type": "string", "description": "An image's bytes, base64 (at most 10 MiB decoded)"],
                            "path": ["type": "string", "description": "A workspace file to attach (at most 1 MiB)"],
                        ],
                    ],
                ]
            ],
        ],
        "PromptResult": [
            "type": "object", "required": ["stopReason"],
            "properties": ["stopReason": ["type": "string"], "error": ["type": "string"]],
        ],
        "PermissionReplyRequest": [
            "type": "object", "required": ["reply"],
            "properties": ["reply": ["type": "string", "enum": ["once", "always", "reject"]]],
        ],
        "SessionResumeRequest": [
            "type": "object", "properties": ["env": ["type": "object", "additionalProperties": ["type": "string"]]],
        ],
        "SessionEvent": [
            "type": "object", "required": ["seq", "at", "sender", "type", "payload"],
            "properties": [
                "seq": ["type": "integer"], "at": ["type": "string", "format": "date-time"],
                "sender": ["type": "string", "enum": ["client", "agent", "server"]], "type": ["type": "string"], "payload": [:],
            ],
        ],
        "SessionEventPage": [
            "type": "object", "required": ["items"],
            "properties": ["items": ["type": "array", "items": ["$ref": "#/components/schemas/SessionEvent"]], "nextCursor": ["type": "string"]],
        ],
        "AgentList": [
            "type": "object", "required": ["items"],
            "properties": [
                "items": [
                    "type": "array",
                    "items": [
                        "type": "object", "required": ["id", "name", "installed", "protocol", "capabilities"],
                        "properties": [
                            "installable": ["type": "boolean"], "notInstallableReason": ["type": "string"], "limitation": ["type": "string"],
                            "id": ["type": "string"], "name": ["type": "string"], "installed": ["type": "boolean"], "version": ["type": "string"],
                            "protocol": ["type": "string"], "capabilities": ["type": "object"],
                        ],
                    ],
                ]
            ],
        ],
        "AgentInstallResult": [
            "type": "object", "required": ["id", "installed", "source", "log"],
            "properties": [
                "id": ["type": "string"], "installed": ["type": "boolean"], "source": ["type": "string"], "version": ["type": "string"],
                "packageVersion": ["type": "string"], "log": ["type": "array", "items": ["type": "string"]],
            ],
        ],
        "AgentInstallRequest": [
            "type": "object", "properties": ["version": ["type": "string", "maxLength": 64, "description": "A package version, e.g. 0.1.40"]],
        ],
        "AgentDetails": [
            "type": "object", "required": ["id", "name", "installed", "protocol", "capabilities", "installing", "installSources", "credentials"],
            "properties": [
                "id": ["type": "string"], "name": ["type": "string"], "installed": ["type": "boolean"], "version": ["type": "string"],
                "packageVersion": ["type": "string"], "protocol": ["type": "string"], "capabilities": ["type": "object"],
                "installing": ["type": "boolean"], "installSources": ["type": "array", "items": ["type": "string"]],
                "credentialsAvailable": ["type": "boolean"], "installable": ["type": "boolean"], "notInstallableReason": ["type": "string"],
                "limitation": ["type": "string"],
                "models": ["type": "array", "items": ["$ref": "#/components/schemas/AgentOption"]],
                "modes": ["type": "array", "items": ["$ref": "#/components/schemas/AgentOption"]],
                "credentials": [
                    "type": "object", "required": ["needed", "available", "sources"],
                    "properties": [
                        "needed": ["type": "boolean"], "available": ["type": "boolean"], "sources": ["type": "array", "items": ["type": "string"]],
                    ],
                ],
            ],
        ],
        "ToolHandler": [
            "oneOf": [
                [
                    "type": "object", "required": ["type", "url"],
                    "properties": [
                        "type": ["const": "http"], "url": ["type": "string", "maxLength": 2048],
                        "headers": ["type": "object", "additionalProperties": ["type": "string"]],
                        "timeoutMs": ["type": "integer", "minimum": 1, "maximum": 600_000],
                    ],
                ],
                [
                    "type": "object", "required": ["type"],
                    "properties": ["type": ["const": "client"], "timeoutMs": ["type": "integer", "minimum": 1, "maximum": 600_000]],
                ],
            ]
        ],
        "ToolDefinition": [
            "type": "object", "required": ["name", "description", "inputSchema", "handler"],
            "properties": [
                "name": ["type": "string", "pattern": "^[a-z][a-z0-9_-]{0,63}$"], "description": ["type": "string", "maxLength": 4096],
                "inputSchema": ["type": "object", "description": "A JSON Schema of type object (a subset AgentBox enforces: see docs/API.md)"],
                "handler": ["$ref": "#/components/schemas/ToolHandler"],
            ],
        ],
        "ToolkitRequest": [
            "type": "object", "required": ["description", "tools"],
            "properties": [
                "description": ["type": "string", "maxLength": 4096],
                "tools": ["type": "array", "minItems": 1, "maxItems": 64, "items": ["$ref": "#/components/schemas/ToolDefinition"]],
            ],
        ],
        "Toolkit": [
            "type": "object", "required": ["name", "description", "tools", "createdAt", "updatedAt"],
            "properties": [
                "name": ["type": "string"], "description": ["type": "string"],
                "tools": ["type": "array", "items": ["$ref": "#/components/schemas/ToolDefinition"]],
                "createdAt": ["type": "string", "format": "date-time"], "updatedAt": ["type": "string", "format": "date-time"],
            ],
        ],
        "ToolkitList": ["type": "object", "required": ["items"], "properties": ["items": ["type": "array", "items": ["$ref": "#/components/schemas/Toolkit"]]]],
        "ToolCallReply": [
            "type": "object",
            "properties": [
                "output": [:], "error": ["type": "object", "required": ["message"], "properties": ["message": ["type": "string"]]],
            ],
        ],
        "ToolCallPage": [
            "type": "object", "required": ["items"],
            "properties": [
                "items": [
                    "type": "array",
                    "items": [
                        "type": "object", "required": ["callId", "toolkit", "tool", "input", "status", "durationMs", "at"],
                        "properties": [
                            "callId": ["type": "string"], "toolkit": ["type": "string"], "tool": ["type": "string"], "input": [:],
                            "status": ["type": "string", "enum": ["ok", "error", "timeout"]], "durationMs": ["type": "integer"],
                            "at": ["type": "string", "format": "date-time"], "sessionId": ["type": "string"], "error": ["type": "string"],
                        ],
                    ],
                ],
                "nextCursor": ["type": "string"],
            ],
        ],
        "CronAction": [
            "oneOf": [
                [
                    "type": "object", "required": ["type", "command"],
                    "properties": [
                        "type": ["const": "exec"], "command": ["type": "string", "minLength": 1, "maxLength": 65536],
                        "cwd": ["type": "string", "minLength": 1, "maxLength": 4096], "env": ["type": "object", "additionalProperties": ["type": "string"]],
                        "timeoutMs": ["type": "integer", "minimum": 1, "maximum": 86_400_000],
                    ],
                ],
                [
                    "type": "object", "required": ["type", "agent", "prompt"],
                    "properties": [
                        "type": ["const": "session"], "agent": ["type": "string"], "prompt": ["type": "string", "minLength": 1],
                        "cwd": ["type": "string", "minLength": 1, "maxLength": 4096], "model": ["type": "string"], "mode": ["type": "string"],
                    ],
                ],
            ]
        ],
        "CronOverlap": ["type": "string", "enum": ["allow", "skip", "queue"]],
        "CronJobRequest": [
            "type": "object", "required": ["schedule", "action"],
            "properties": [
                "id": ["type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"],
                "schedule": ["type": "string", "description": "A cron expression (5 or 6 fields, or a macro such as @daily) or an RFC 3339 instant"],
                "timezone": ["type": "string", "description": "An IANA time zone (default UTC)"], "action": ["$ref": "#/components/schemas/CronAction"],
                "overlap": ["$ref": "#/components/schemas/CronOverlap"], "enabled": ["type": "boolean"],
            ],
        ],
        "CronJobPatch": [
            "type": "object",
            "properties": [
                "enabled": ["type": "boolean"], "schedule": ["type": "string"], "timezone": ["type": "string"],
                "overlap": ["$ref": "#/components/schemas/CronOverlap"],
            ],
        ],
        "CronJob": [
            "type": "object", "required": ["id", "schedule", "timezone", "action", "overlap", "enabled", "createdAt", "runCount", "running"],
            "properties": [
                "id": ["type": "string"], "schedule": ["type": "string"], "timezone": ["type": "string"],
                "action": ["$ref": "#/components/schemas/CronAction"], "overlap": ["$ref": "#/components/schemas/CronOverlap"],
                "enabled": ["type": "boolean"], "createdAt": ["type": "string", "format": "date-time"],
                "nextRunAt": ["type": "string", "format": "date-time"], "lastRunAt": ["type": "string", "format": "date-time"],
                "runCount": ["type": "integer"], "running": ["type": "boolean"], "sessionId": ["type": "string"],
            ],
        ],
        "CronJobList": ["type": "object", "required": ["items"], "properties": ["items": ["type": "array", "items": ["$ref": "#/components/schemas/CronJob"]]]],
        "CronRun": [
            "type": "object", "required": ["runId", "jobId", "scheduledAt", "trigger", "status"],
            "properties": [
                "runId": ["type": "string"], "jobId": ["type": "string"], "scheduledAt": ["type": "string", "format": "date-time"],
                "trigger": ["type": "string", "enum": ["schedule", "manual"]], "startedAt": ["type": "string", "format": "date-time"],
                "endedAt": ["type": "string", "format": "date-time"],
                "status": ["type": "string", "enum": ["queued", "running", "ok", "error", "skipped"]], "exitCode": ["type": "integer"],
                "stdout": ["type": "string"], "stderr": ["type": "string"], "stdoutEncoding": ["type": "string", "enum": ["utf8", "base64"]],
                "stderrEncoding": ["type": "string", "enum": ["utf8", "base64"]], "truncated": ["type": "boolean"], "sessionId": ["type": "string"],
                "stopReason": ["type": "string"], "error": ["type": "string"],
            ],
        ],
        "CronRunList": ["type": "object", "required": ["items"], "properties": ["items": ["type": "array", "items": ["$ref": "#/components/schemas/CronRun"]]]],
        "WorkspaceList": [
            "type": "object", "required": ["items"],
            "properties": [
                "items": ["type": "array", "items": ["$ref": "#/components/schemas/Workspace"]],
                "nextCursor": ["type": "string"],
            ],
        ],
    ]
}
