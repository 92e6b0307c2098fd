"""An ACP client over sandbox-agent's ACP-over-HTTP transport, written from sandbox-agent's published API (POST a
JSON-RPC envelope to /v1/acp/{serverId}, the first with ?agent=; GET it for the agent's envelopes as SSE `message`
events; DELETE it), standard library only. It initializes, opens a session, prompts the mock agent with a permission
question (answered from the stream), and prints a JSON summary. Usage: python3 acp_http_client.py BASE TOKEN SERVER_ID"""
import json, sys, threading, urllib.request

base, token, server = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
url = f"{base}/v1/acp/{server}"
summary = {"updates": [], "answered": [], "text": ""}


def post(envelope, query=""):
    request = urllib.request.Request(url + query, data=json.dumps(envelope).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
        return response.status, (json.loads(body) if body else None)


def follow():
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"})
    with urllib.request.urlopen(request, timeout=60) as stream:
        event, data = None, []
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                message = json.loads("\n".join(data))
                data = []
                if event != "message":
                    continue
                if message.get("method") == "session/update":
                    update = message["params"]["update"]
                    summary["updates"].append(update.get("sessionUpdate"))
                    if update.get("sessionUpdate") == "agent_message_chunk":
                        summary["text"] += update["content"].get("text", "")
                elif message.get("method") == "session/request_permission" and "id" in message:
                    options = message["params"]["options"]
                    allow = next(o for o in options if o["kind"] == "allow_once")
                    status, _ = post({"jsonrpc": "2.0", "id": message["id"],
                                      "result": {"outcome": {"outcome": "selected", "optionId": allow["optionId"]}}})
                    summary["answered"].append(status)


status, initialized = post({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                            "params": {"protocolVersion": 1, "clientCapabilities": {"fs": {"readTextFile": False, "writeTextFile": False}, "terminal": False}}},
                           "?agent=mock")
summary["initialize"] = [status, initialized.get("result", {}).get("protocolVersion")]
threading.Thread(target=follow, daemon=True).start()
status, created = post({"jsonrpc": "2.0", "id": "two", "method": "session/new", "params": {"cwd": "/workspace", "mcpServers": []}})
session = created["result"]["sessionId"]
summary["newSession"] = [status, created["id"]]
status, prompted = post({"jsonrpc": "2.0", "id": 3, "method": "session/prompt",
                         "params": {"sessionId": session, "prompt": [{"type": "text", "text": "hello permission"}]}})
summary["prompt"] = [status, prompted["result"]["stopReason"]]
status, _ = post({"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session}})
summary["notification"] = status
status, wrong = post({"jsonrpc": "2.0", "id": 4, "method": "no/such_method", "params": {}})
summary["unknownMethod"] = [status, wrong.get("error", {}).get("code")]
print(json.dumps(summary), flush=True)
