"""The e-mail target: a plain-text message over SMTP (STARTTLS or implicit TLS, optional login)."""

from __future__ import annotations

import datetime as dt
import re
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from charter.notify.message import Notice

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def subject(title: str) -> str:
    """A header-safe subject: agent text may carry newlines (header injection), so control
    characters become spaces, and it is cut at 200 characters."""
    clean = _CONTROL.sub(" ", title).strip()
    return "[charter] " + (clean if len(clean) <= 200 else clean[:199] + "…")


class EmailTarget:
    """Sends each notice as one e-mail to a fixed list of recipients."""

    kind = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        to: Sequence[str],
        *,
        tls: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
    ):
        if tls not in ("starttls", "tls", "none"):
            raise ValueError("tls is starttls, tls or none")
        self.host, self.port, self.sender, self.to = host, port, sender, list(to)
        self.tls, self.username, self.password, self.timeout_s = tls, username, password, timeout_s

    def message(self, notice: Notice, msg_id: str) -> EmailMessage:
        """The e-mail for a notice (``Message-ID`` from the notification id: retries are one message)."""
        m = EmailMessage()
        m["Subject"] = subject(notice.title)
        m["From"] = self.sender
        m["To"] = ", ".join(self.to)
        m["Date"] = format_datetime(dt.datetime.fromtimestamp(notice.at, dt.UTC))
        m["Message-ID"] = make_msgid(msg_id.replace("_", "-"), domain="charter.invalid")
        m["X-Charter-Event"] = notice.type
        m.set_content(notice.text + "\n")
        return m

    def body(self, notice: Notice) -> bytes:
        """Nothing to prebuild (the message is made per attempt, with its Message-ID)."""
        return b""

    def send(self, notice: Notice, msg_id: str, body: bytes) -> None:
        """One attempt (raises OSError / smtplib.SMTPException on failure)."""
        msg = self.message(notice, msg_id)
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.tls == "tls":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        with smtp:
            if self.tls == "starttls":
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(msg)
