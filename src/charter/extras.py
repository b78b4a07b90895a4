"""Optional dependencies: the error raised when a feature's extra is not installed (imports nothing internal).

The core install (``pip install charter``) carries what ``import charter`` and ``charter
check/eval/test/fmt/diff/graph`` need. Everything else is an extra (``charter[server]``,
``charter[redis]`` ...); a module that needs one imports it through :func:`missing_extra`'s
pattern so that the error names the extra to install instead of a bare ``ModuleNotFoundError``::

    try:
        import redis
    except ImportError as exc:
        raise missing_extra("redis", "the Redis state store", exc) from exc
"""

from __future__ import annotations

from charter.errors import Error

__all__ = ["EXTRAS", "MissingExtra", "missing_extra"]

#: The extras of pyproject.toml and what each brings (a closed set: the message names one of these).
EXTRAS: dict[str, str] = {
    "server": "the sidecar (charter serve): starlette, uvicorn, greenlet, httpx",
    "redis": "the Redis state store: redis, hiredis",
    "postgres": "the PostgreSQL state store and trace: psycopg",
    "otel": "OpenTelemetry spans and the OTLP decision-log export",
    "lsp": "the language server (charter lsp): pygls, lsprotocol",
    "docs": "the documentation site: mkdocs",
    "demo": "the terminal demo (python -m charter.demo): rich",
    "langgraph": "the LangGraph adapter",
    "openai-agents": "the OpenAI Agents SDK adapter",
    "ag2": "the AG2 (AutoGen) adapter",
    "crewai": "the CrewAI adapter",
    "mcp": "the MCP proxy and gateway",
}


class MissingExtra(Error, ImportError):
    """A feature was used whose optional dependencies are not installed; the message names the extra.

    Also an ``ImportError``, so code that probes for an optional feature with ``except ImportError``
    keeps working.
    """

    def __init__(self, extra: str, feature: str, missing: str | None = None):
        if extra not in EXTRAS:
            raise ValueError(f"unknown extra {extra!r}")
        what = f" (no module named {missing!r})" if missing else ""
        super().__init__(
            f"{feature} needs the optional '{extra}' dependencies{what}: pip install 'charter[{extra}]'",
            name=missing,
        )
        self.extra = extra
        self.feature = feature


def missing_extra(extra: str, feature: str, exc: ImportError | None = None) -> MissingExtra:
    """The error to raise when importing ``feature``'s dependencies failed with ``exc``."""
    return MissingExtra(extra, feature, getattr(exc, "name", None) if exc is not None else None)
