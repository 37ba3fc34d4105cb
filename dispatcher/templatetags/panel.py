"""Small display helpers for the panel's templates: roles, durations, numbers."""

from django import template

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
def ms(value):
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


@register.filter
def cps(value):
    return f"{value:.1f}" if value else "0"




@register.filter
def cause_colour(cause):
    return CAUSE_COLOUR.get(cause, "grey")


def _fields(summary):
    """'a=1, b=x' → {'a': '1', 'b': 'x'}; values containing ', ' stay whole as far as can be told."""
    out, key = {}, None
    for part in summary.split(", "):
        name, eq, value = part.partition("=")
        if eq and name.isidentifier():
            key = name
            out[key] = value
        elif key is not None:
            out[key] += ", " + part
    return out


@register.filter
def config_diff(event):
    """A configuration event as the fields that changed: 'weight 50 → 30, duid ast1 → ast9'."""
    if not event.old:
        return "created"
    if not event.new:
        return "deleted"
    old, new = _fields(event.old), _fields(event.new)
    changes = [f"{k} {old.get(k, '')!s} → {v}" for k, v in new.items() if old.get(k) != v]
    return ", ".join(changes) or "no field changed"


@register.inclusion_tag("partials/_publication_banner.html")
def publication_banner():
    """The "not applied to the proxies" banner, on every page (the dashboard has it in its live fragment)."""
    from dispatcher import live, publication

    return {"publication": publication.status(live.snapshot())}
