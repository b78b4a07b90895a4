"""A tiny MCP server (mcp's MCPServer over stdio) for the proxy tests."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("charter-test-tools")


@server.tool()
def search(query: str) -> str:
    """Search the knowledge base."""
    return f"results for {query}"


@server.tool()
def pay(amount: float) -> str:
    """Pay an amount."""
    return f"paid {amount:g}"


@server.tool()
def big(note: str) -> str:
    """A big action that needs approval."""
    return f"big done: {note}"


if __name__ == "__main__":
    server.run("stdio")
