"""The error raised when a person's action on a gate, escalation or stop is refused."""

from __future__ import annotations

from charter.errors import Error


class HumanError(Error):
    """An approval, answer, stop or resume that is not accepted; the message says why."""

    def __init__(self, message: str, code: str = "refused"):
        super().__init__(message)
        self.code = code
