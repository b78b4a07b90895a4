"""Human gates, escalations and emergency stops: durable records people and orchestrators act on."""

from charter.approvals.digest import action_digest
from charter.approvals.errors import HumanError
from charter.approvals.escalations import Escalations
from charter.approvals.gates import Approvals
from charter.approvals.notify import Notifier, StdoutNotifier, WebhookNotifier
from charter.approvals.stops import Stops

__all__ = [
    "Approvals",
    "Escalations",
    "HumanError",
    "Notifier",
    "StdoutNotifier",
    "Stops",
    "WebhookNotifier",
    "action_digest",
]
