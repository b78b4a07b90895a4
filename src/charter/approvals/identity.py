"""Who acted on a gate, escalation or stop, and through which channel: the identity every record keeps."""

from __future__ import annotations

import enum


class Channel(enum.Enum):
    """How a person's answer, stop or resume reached charter (recorded next to their name).

    INBOX, HTTP and CLI go through the sidecar, which names the person from their token or session;
    ADMIN and PYTHON write the store directly and the name is whatever the caller said.
    """

    #: the web inbox served by ``charter serve`` at /ui (a signed session from a token)
    INBOX = "inbox"
    #: the sidecar's HTTP API with a bearer token
    HTTP = "http"
    #: the ``charter`` command line through the sidecar, with a token
    CLI = "cli"
    #: the ``charter`` command line writing the state store directly (``--store URL --admin``)
    ADMIN = "store-admin"
    #: the in-process Python API (``engine.approvals.approve`` …) of a program holding the store
    PYTHON = "python"

    @property
    def token_backed(self) -> bool:
        """True when the sidecar named the person from a token (not a self-asserted name)."""
        return self in (Channel.INBOX, Channel.HTTP, Channel.CLI)

    @property
    def label(self) -> str:
        """Words for explanations: 'through the inbox', 'with direct store access (admin)'."""
        return _LABELS[self]


_LABELS = {
    Channel.INBOX: "through the inbox",
    Channel.HTTP: "through the HTTP API",
    Channel.CLI: "through the command line (with a token)",
    Channel.ADMIN: "with direct store access (admin mode)",
    Channel.PYTHON: "through the Python API",
}


def channel_label(value: object) -> str:
    """The words for a recorded channel value ('' when it is missing or unknown: old records)."""
    try:
        return Channel(value).label
    except ValueError:
        return ""
