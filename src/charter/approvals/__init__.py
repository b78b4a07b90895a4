"""Human gates, escalations and emergency stops: durable records people and orchestrators act on."""

from charter.approvals.digest import action_digest
from charter.approvals.errors import HumanError
from charter.approvals.escalations import Escalations
from charter.approvals.gates import Approvals
from charter.approvals.identity import Channel
from charter.approvals.notify import Fanout, Notifier, StdoutNotifier
from charter.approvals.stops import Stops

__all__ = [
    "Approvals",
    "Channel",
    "Escalations",
    "Fanout",
    "HumanError",
    "Notifier",
    "StdoutNotifier",
    "Stops",
    "action_digest",
]
