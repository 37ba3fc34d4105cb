"""The rules the engine runs, in order. A rule is `fn(snap, config) -> iterable of Finding`
(dispatcher.alerts.rules); add one here with a name (stable: AlertSettings.rules_off stores it),
the line the settings page shows beside its checkbox, and the function or its dotted path, e.g.
    Rule("carrier", "A carrier's answer or failure rate crosses its threshold", "dispatcher.carriers.carrier_findings"),
(a path is imported when the rule runs, so a module that imports Finding from here makes no cycle).
"""

from dataclasses import dataclass

from django.utils.module_loading import import_string

from dispatcher.alerts import rules


@dataclass(frozen=True)
class Rule:
    name: str
    label: str
    fn: object  # a function, or its dotted path

    def __call__(self, snap, config):
        fn = import_string(self.fn) if isinstance(self.fn, str) else self.fn
        return fn(snap, config)


RULES = [
    Rule("server_down", "A server goes down / comes back", rules.server_down),
    Rule("set_unusable", "A set has no usable server", rules.set_unusable),
    Rule("proxy_silent", "A proxy stops reporting", rules.proxy_silent),
    Rule("proxy_shedding", "A proxy starts shedding load", rules.proxy_shedding),
    Rule("proxy_busy", "A proxy process nears its CPU limit", rules.proxy_busy),
    Rule("probes_stopped", "No probe round for 3 × ping interval", rules.probes_stopped),
    Rule("carrier", "A carrier's answer or failure rate crosses its threshold", "dispatcher.alerts.carrier_rule.carrier_rule"),
]

# Always on: an engine that cannot see must say so (not a rule anyone may turn off).
ENGINE_RULES = [Rule("engine", "The alert engine cannot read Redis", rules.redis_readable)]


def rule_names():
    return [r.name for r in RULES]
