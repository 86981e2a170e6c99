"""The official MCP Python SDK's server (MCPServer over Streamable HTTP), for stampede's tests.

    python server.py MODE

MODE "session" keeps sessions (Mcp-Session-Id); "stateless" runs the SDK's stateless HTTP mode. Either
way the SDK serves 2026-07-28 requests too (told apart by MCP-Protocol-Version). One tool, `echo`,
counts its calls; `GET /calls` answers the count. Prints `url=http://127.0.0.1:PORT/mcp` once it
listens, and serves until killed.
"""

import json
import socket
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer
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

    app = server.streamable_http_app(stateless_http=(mode == "stateless"), json_response=False)

    async def count(_request):
        return JSONResponse({"calls": calls})

    app.router.routes.append(Route("/calls", count))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until uvicorn serves them
    port = sock.getsockname()[1]
    print(json.dumps({"url": f"http://127.0.0.1:{port}/mcp", "calls": f"http://127.0.0.1:{port}/calls"}), flush=True)
    config = uvicorn.Config(app, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1])
