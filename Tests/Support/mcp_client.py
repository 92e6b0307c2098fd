"""Drives AgentBox's MCP server with the official Python SDK (`mcp` on PyPI), as an agent would.

    mcp_client.py http URL TOKEN WORKSPACE        streamable HTTP: POST /v1/mcp with the bearer token
    mcp_client.py stdio AGENTBOX ENDPOINT TOKEN WORKSPACE    `agentbox mcp --workspace WORKSPACE` as a child

Lists the tools, execs `echo hi`, writes then reads a file, and calls a tool on another workspace. Prints one JSON
object of what it saw on stdout (the Swift test checks it) and, with AGENTBOX_MCP_TIMINGS=N, the median latency of N
exec and N read_file calls. Exits 1 on a failure of the client itself.
"""
import asyncio
import json
import os
import statistics
import sys
import time

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def structured(result):
    return result.structured_content if result.structured_content is not None else json.loads(result.content[0].text)


async def drive(target, workspace_argument):
    async with Client(target) as client:
        seen = {"protocolVersion": client.protocol_version, "server": client.server_info.name if client.server_info else None}
        tools = await client.list_tools()
        seen["tools"] = sorted(tool.name for tool in tools.tools)
        hi = await client.call_tool("exec", {**workspace_argument, "command": "echo hi"})
        seen["exec"] = {"isError": bool(hi.is_error), **structured(hi)}
        content = "hello from the python mcp client\ndata: [1,2]\n"
        written = await client.call_tool("write_file", {**workspace_argument, "path": "mcp/hello.txt", "content": content})
        seen["write"] = {"isError": bool(written.is_error), **structured(written)}
        read = await client.call_tool("read_file", {**workspace_argument, "path": "/workspace/mcp/hello.txt"})
        seen["read"] = {"isError": bool(read.is_error), **structured(read)}
        seen["roundTrip"] = seen["read"].get("content") == content
        elsewhere = await client.call_tool("exec", {"workspace": "elsewhere", "command": "echo no"})
        seen["elsewhere"] = {"isError": bool(elsewhere.is_error), "text": elsewhere.content[0].text}
        rounds = int(os.environ.get("AGENTBOX_MCP_TIMINGS", "0"))
        if rounds:
            timings = {}
            for name, arguments in [("exec", {"command": "true"}), ("read_file", {"path": "/workspace/mcp/hello.txt"})]:
                samples = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    await client.call_tool(name, {**workspace_argument, **arguments})
                    samples.append((time.perf_counter() - started) * 1000)
                timings[name] = {"p50Ms": round(statistics.median(samples), 2), "maxMs": round(max(samples), 2)}
            seen["timings"] = timings
        return seen


async def main():
    mode = sys.argv[1]
    if mode == "http":
        url, token, workspace = sys.argv[2:5]
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=300))
        async with http:
            seen = await drive(streamable_http_client(url, http_client=http), {"workspace": workspace})
    elif mode == "stdio":
        agentbox, endpoint, token, workspace = sys.argv[2:6]
        parameters = StdioServerParameters(
            command=agentbox, args=["mcp", "--workspace", workspace], env={"AGENTBOX_ENDPOINT": endpoint, "AGENTBOX_TOKEN": token})
        # The workspace argument is left out: `agentbox mcp` defaults it.
        seen = await drive(parameters, {})
    else:
        sys.exit(f"unknown mode {mode}")
    print(json.dumps(seen))


asyncio.run(main())
