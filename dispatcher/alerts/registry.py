"""The rules the engine runs, in order. A rule is `fn(snap, config) -> iterable of Finding`
(dispatcher.alerts.rules); add one here with a name (stable: AlertSettings.rules_off stores it)
and the line the settings page shows beside its checkbox.
"""

from dataclasses import dataclass

from dispatcher.alerts import rules


@dataclass(frozen=True)
class Rule:
    name: str
    label: str
    fn: object


RULES = [
    Rule("server_down", "A server goes down / comes back", rules.server_down),
    Rule("set_unusable", "A set has no usable server", rules.set_unusable),
    Rule("proxy_silent", "A proxy stops reporting", rules.proxy_silent),
    Rule("proxy_shedding", "A proxy starts shedding load", rules.proxy_shedding),
    Rule("probes_stopped", "No probe round for 3 × ping interval", rules.probes_stopped),
]

# Always on: an engine that cannot see must say so (not a rule anyone may turn off).
ENGINE_RULES = [Rule("engine", "The alert engine cannot read Redis", rules.redis_readable)]


def rule_names():
    return [r.name for r in RULES]
