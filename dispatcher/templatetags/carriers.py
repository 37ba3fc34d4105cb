"""Filters of the Carriers page: rates and setup times, "—" where there is nothing to say."""

from django import template

register = template.Library()


@register.filter
def percent(fraction):
    return "—" if fraction is None else f"{fraction * 100:.1f} %"


@register.filter
def setup(seconds):
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
