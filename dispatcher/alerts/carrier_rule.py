"""The carrier rule: a carrier's answer or failure rate over the recent window crosses its threshold
(dispatcher.carriers.carrier_findings judges; this turns its answers into Findings).

A carrier with fewer than carrier_min_calls calls in the window is not judged. One whose alert was
firing and that has since gone that quiet gets a recovery notice saying why, rather than an episode
left open with nothing ever to close it."""

from dispatcher.alerts.rules import Finding
from dispatcher.carriers import carrier_findings


def carrier_rule(snap, config):
    judged = carrier_findings(
        snap,
        config.carrier_answer_rate_min_pct / 100,
        config.carrier_failure_rate_max_pct / 100,
        config.carrier_min_calls,
    )
    memory = snap.memory.setdefault("carrier", {})
    firing_before = set(memory.get("firing", ()))
    firing_now = set()
    for key, firing, title, text, link in judged:
        if firing:
            firing_now.add(key)
        yield Finding(key, firing, title, text, link)
    seen = {key for key, *_ in judged}
    for key in sorted(firing_before - seen):
        name = key.split(":", 1)[1]
        yield Finding(
            key,
            False,
            f"{name}: too few calls to judge",
            f"Fewer than {config.carrier_min_calls} calls in the window: the alert ends until there are enough to judge.",
            "",
        )
    memory["firing"] = sorted(firing_now)
