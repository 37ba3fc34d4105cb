"""Small display helpers for the panel's templates: roles, durations, numbers."""

from datetime import UTC, datetime

from django import template
from django.utils import timezone

from dispatcher import live, publication
from dispatcher.alerts import status as alert_status
from dispatcher.choices import CAUSE_COLOUR
from dispatcher.roles import has_role as _has_role
from dispatcher.roles import role_of

register = template.Library()


@register.filter
def has_role(user, role):
    return _has_role(user, role)


@register.filter
def role(user):
    return role_of(user) or "no role"


@register.filter
def duration(seconds):
    """Seconds as an operator reads them at a glance: 45s, 3m 12s, 2h 05m, 4d 3h."""
    if seconds is None or seconds == "":
        return "—"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


@register.filter
def core_share(fraction):
    """A share of one CPU core, 0.42 -> "42 %"."""
    return "—" if fraction is None else f"{fraction * 100:.0f} %"


@register.filter
def ms(value):
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


@register.filter
def clock(epoch):
    """Epoch seconds as the local time of day, 14:02:07."""
    if not epoch:
        return "—"
    return timezone.localtime(datetime.fromtimestamp(float(epoch), tz=UTC)).strftime("%H:%M:%S")


@register.filter
def cps(value):
    return f"{value:.1f}" if value else "0"


@register.filter
def cause_colour(cause):
    return CAUSE_COLOUR.get(cause, "grey")


@register.filter
def config_diff(event):
    """A configuration event as the fields that changed: 'weight 50 → 30, duid ast1 → ast9'."""
    before, after = event.before, event.after
    if before is None and after is None:  # an old row whose text could not be read into fields
        return f"{event.old or '—'} → {event.new}"
    if before is None:
        return "created"
    if after is None:
        return "deleted"
    changes = [f"{k} {_shown(before.get(k))} → {_shown(v)}" for k, v in after.items() if before.get(k) != v]
    if changes:
        return ", ".join(changes)
    # Rows recorded before the snapshots were kept only 255 characters of text; say so rather than "nothing".
    cut = max(len(event.old), len(event.new)) >= 255
    return "no change in the 255 characters kept of this row" if cut else "no field changed"


def _shown(value):
    return "—" if value is None else str(value)


@register.inclusion_tag("partials/_publication_banner.html", takes_context=True)
def publication_banner(context):
    """The "not applied to the proxies" banner, on every page (the dashboard has it in its live fragment).
    A view that read the live snapshot for this request passes it as `snap`: one Redis read, not two."""
    snap = context.get("snap")
    if not isinstance(snap, live.LiveSnapshot):
        snap = live.snapshot()
    return {"publication": publication.status(snap)}


@register.inclusion_tag("partials/_alert_delivery_banner.html", takes_context=True)
def alert_delivery_banner(context):
    """ "Alerts are not being delivered", on every page (and in the Servers and Sets live fragments,
    refreshed every 2 s) while a configured channel's latest attempt failed. One small query when
    none is failing."""
    user = context.get("user")
    return {"failing": alert_status.failing_channels(), "can_configure": bool(user) and _has_role(user, "admin")}
