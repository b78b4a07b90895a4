"""Telling people: webhooks signed per Standard Webhooks, Slack-compatible messages and e-mail, sent
from background queues that never hold up a decision (configured in the serve config: docs/humans.md)."""

from charter.notify.config import HumansConfig, InboxSettings, NotifyConfigError, load_humans_config
from charter.notify.dispatch import Dispatcher, Target
from charter.notify.message import Notice, event_name
from charter.notify.webhook import sign

__all__ = [
    "Dispatcher",
    "HumansConfig",
    "InboxSettings",
    "Notice",
    "NotifyConfigError",
    "Target",
    "event_name",
    "load_humans_config",
    "sign",
]
