"""The web inbox for approvers and operators, served by `charter serve` at /ui (docs/humans.md)."""

from charter.server.inbox.routes import Inbox

__all__ = ["Inbox"]
