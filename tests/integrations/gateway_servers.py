"""Two small MCP servers (mcp's MCPServer) for the gateway tests: `kb` and `pay`.

``python gateway_servers.py kb stdio`` serves over stdio; ``... kb http PORT`` over Streamable HTTP.
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

kb = MCPServer("kb")
pay = MCPServer("pay")
CALLS: list[str] = []


@kb.tool()
def read(doc: str) -> str:
    """Read a document."""
    return f"contents of {doc}"


@kb.tool()
def write(doc: str, text: str) -> str:
    """Write a document."""
    return f"wrote {len(text)} chars to {doc}"


@kb.tool()
def echo(value: str = "") -> str:
    """Echo a value (the benchmark's tool)."""
    return value


@pay.tool()
def transfer(amount: float, to: str) -> str:
    """Transfer money."""
    return f"sent {amount:g} to {to}"


@pay.tool()
def read_balance() -> str:
    """Read the balance (a name shared with nothing, to test namespacing)."""
    return "balance 100"


@pay.tool()
def fail() -> str:
    """A tool that fails."""
    raise RuntimeError("the payment rail is down")


SERVERS = {"kb": kb, "pay": pay}

if __name__ == "__main__":
    server = SERVERS[sys.argv[1]]
    if sys.argv[2] == "stdio":
        server.run("stdio")
    else:
        server.run(
            "streamable-http",
            host="127.0.0.1",
            port=int(sys.argv[3]),
            json_response=True,
            stateless_http=False,
        )
