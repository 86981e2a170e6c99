"""The official MCP Python SDK's server (MCPServer over Streamable HTTP), for stampede's tests.

    python server.py MODE

MODE "session" keeps sessions (Mcp-Session-Id); "stateless" runs the SDK's stateless HTTP mode;
"json" and "stateless-json" are the same answering JSON instead of SSE-framed replies. Each way the SDK
serves 2026-07-28 requests too (told apart by MCP-Protocol-Version). "sse" serves the
HTTP+SSE transport (GET /sse, POST /messages/). Tools: `echo` answers its text; `logged` sends a log
notification first; `pinging` pings the client three times first (the SDK numbers its requests from 1
up, as clients do). Each counts its calls; `GET /calls` answers the count. Prints the URLs as JSON
once it listens, and serves until killed.
"""

import json
import socket
import sys

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from starlette.responses import JSONResponse
from starlette.routing import Route

calls = 0


def main(mode: str) -> None:
    server = MCPServer("stampede-test-sdk-server")

    @server.tool()
    def echo(text: str) -> str:
        """Answers its text."""
        global calls
        calls += 1
        return text

    @server.tool()
    async def logged(text: str, ctx: Context) -> str:
        """Logs, then answers its text."""
        global calls
        await ctx.info(f"answering {text}")
        calls += 1
        return text

    @server.tool()
    async def pinging(text: str, ctx: Context) -> str:
        """Pings the client three times, then answers its text."""
        global calls
        for _ in range(3):
            await ctx.session.send_ping()
        calls += 1
        return text

    if mode == "sse":
        app = server.sse_app()
        path = "/sse"
    else:
        app = server.streamable_http_app(
            stateless_http=mode.startswith("stateless"), json_response=mode.endswith("json")
        )
        path = "/mcp"

    async def count(_request):
        return JSONResponse({"calls": calls})

    app.router.routes.append(Route("/calls", count))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until uvicorn serves them
    port = sock.getsockname()[1]
    print(json.dumps({"url": f"http://127.0.0.1:{port}{path}", "calls": f"http://127.0.0.1:{port}/calls"}), flush=True)
    config = uvicorn.Config(app, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1])
