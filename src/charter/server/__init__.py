"""The charter sidecar: decisions, settlements, approvals and stops over HTTP (see docs/sidecar.md)."""

from charter.server.app import Sidecar, create_app
from charter.server.auth import Principal, TokenSet, load_tokens
from charter.server.runtime import Runtime, ServeConfig

__all__ = ["Principal", "Runtime", "ServeConfig", "Sidecar", "TokenSet", "create_app", "load_tokens"]
