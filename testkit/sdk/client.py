"""The official MCP Python SDK's client against a server, for stampede's tests.

    python client.py URL TOKEN MODE TOOL

MODE is the SDK's connect mode ("auto" probes server/discover and falls back to initialize,
"legacy" forces initialize, or a stateless version). A URL ending in /sse is the HTTP+SSE transport
(the session era only: "legacy"); any other, Streamable HTTP. Lists the tools, calls TOOL with
{"text": "sdk"}, and prints what it saw as one JSON object.
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client


async def main(url: str, token: str, mode: str, tool: str) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        if url.endswith("/sse"):
            transport = sse_client(url, headers=headers, timeout=30)
        else:
            transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, raise_exceptions=True) as client:
            tools = await client.list_tools()
            called = await client.call_tool(tool, {"text": "sdk"})
            info = client.server_info
            print(json.dumps({
                "protocol_version": client.protocol_version,
                "server_name": info.name if info else None,
                "tools": [t.name for t in tools.tools],
                "call_text": called.content[0].text if called.content else None,
            }))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
