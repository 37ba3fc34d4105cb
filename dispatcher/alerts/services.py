"""Saving the alert settings: validated, audited. The webhook URL is a secret (Slack's and
Mattermost's carry their key in the path), so the audit log, which viewers read, shows its host only."""

from urllib.parse import urlsplit

from django.db import transaction

from dispatcher.alerts import status
from dispatcher.alerts.models import EMAIL, WEBHOOK
from dispatcher.choices import Cause, EventKind
from dispatcher.models import StateEvent

AUDITED = (
    "webhook_url",
    "email_recipients",
    "rules_off",
    "rate_limit_per_minute",
    "proxy_silent_seconds",
    "shedding_quiet_seconds",
    "proxy_busy_pct",
    "carrier_answer_rate_min_pct",
    "carrier_failure_rate_max_pct",
    "carrier_min_calls",
)


def masked_url(url):
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"


def _snapshot(config):
    values = {name: getattr(config, name) for name in AUDITED}
    values["webhook_url"] = masked_url(values["webhook_url"])
    return values


@transaction.atomic
def save_alert_settings(config, *, actor, cause=Cause.USER, reason=""):
    """Raises ValidationError naming the field. Records a configuration event when anything changed."""
    config.full_clean()
    before = type(config).objects.filter(pk=1).first()
    config.save()
    retargeted = [
        channel
        for channel, field in ((WEBHOOK, "webhook_url"), (EMAIL, "recipients"))
        if before is None or getattr(before, field) != getattr(config, field)
    ]
    if retargeted:
        status.forget(retargeted)  # a new target was never tried: the old one's failures are not its own
    old, new = (_snapshot(before) if before else None), _snapshot(config)
    if old != new:
        changed = [k for k in AUDITED if old is None or old[k] != new[k]]
        StateEvent.objects.create(
            subject="updated alert settings",
            kind=EventKind.CONFIG,
            old=", ".join(f"{k}={old[k]}" for k in changed)[:255] if old else "",
            new=", ".join(f"{k}={new[k]}" for k in changed)[:255],
            before=old,
            after=new,
            cause=cause,
            actor=actor,
            reason=reason,
        )
    return config
