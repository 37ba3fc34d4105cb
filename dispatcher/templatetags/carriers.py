"""Filters of the Carriers page: rates and setup times, "—" where there is nothing to say."""

from django import template

register = template.Library()


@register.filter
def percent(fraction):
    return "—" if fraction is None else f"{fraction * 100:.1f} %"


def _duration(seconds, *, unit=True):
    text = f"{seconds * 1000:.0f}" if seconds < 1 else f"{seconds:g}"
    return f"{text} {'ms' if seconds < 1 else 's'}" if unit else text


@register.filter
def setup(bucket):
    """A setup-time quantile as what its histogram bucket knows (lbcore.carriers.SetupBucket):
    "≤ 50 ms", "200–300 ms", "750 ms–1 s", "> 120 s"; never a point inside the bucket."""
    if bucket is None:
        return "—"
    low, high = bucket
    if high is None:
        return f"> {_duration(low)}"
    if not low:
        return f"≤ {_duration(high)}"
    same_unit = (low < 1) == (high < 1)
    return f"{_duration(low, unit=not same_unit)}–{_duration(high)}"
