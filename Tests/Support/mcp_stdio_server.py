"""The tests' stdio MCP server (standard library only): newline-delimited JSON-RPC 2.0 on stdin and stdout.

It offers one tool, `stamp` ({"text": string}): it writes `{text} {FIXTURE_GREETING}` and a newline to the file
named by FIXTURE_MARKER (default /workspace/mcp-stamp.txt) and answers `stamped {text}, greeting
{FIXTURE_GREETING}`, so a test sees both that the tool ran and that the session's env reached the server.
Usage: python3 mcp_stdio_server.py"""
import json, os, sys

TOOL = {
    "name": "stamp",
    "description": "Writes a marker file with the given text. Use it when asked to stamp.",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}


def answer(request):
    method, params = request.get("method"), request.get("params") or {}
    if method == "initialize":
        return {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "fixture", "version": "1.0.0"},
        }
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": [TOOL]}
    if method == "tools/call" and params.get("name") == "stamp":
        text = str((params.get("arguments") or {}).get("text", ""))
        greeting = os.environ.get("FIXTURE_GREETING", "(none)")
        with open(os.environ.get("FIXTURE_MARKER", "/workspace/mcp-stamp.txt"), "w") as marker:
            marker.write(f"{text} {greeting}\n")
        return {"content": [{"type": "text", "text": f"stamped {text}, greeting {greeting}"}], "isError": False}
    raise LookupError(f"no method {method}" if method != "tools/call" else f"no tool {params.get('name')}")


for line in sys.stdin:
    if not line.strip():
        continue
    request = json.loads(line)
    if "id" not in request:
        continue  # a notification
    try:
        reply = {"jsonrpc": "2.0", "id": request["id"], "result": answer(request)}
    except LookupError as error:
        reply = {"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": str(error)}}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
