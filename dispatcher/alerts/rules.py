"""Alert rules: functions `rule(snap, config)` yielding a Finding per thing they judged.

A rule yields a Finding with firing=True for what is wrong now and firing=False for what it can
see is fine; what it cannot judge (Redis away, a server never probed) it leaves out, so an open
episode stays open rather than being called over on no evidence. `snap` is an AlertSnapshot (the
live snapshot plus what the engine remembers between evaluations), `config` the AlertSettings.
"""

import time
from dataclasses import dataclass, field

from django.urls import reverse

from dispatcher.live import LiveSnapshot, node_load
from dispatcher.models import DispatcherSet, ProbeSettings
from dispatcher.servers import server_figures
from lbcore import contract, rules

PROBE_ROUNDS_MISSED = 3  # no probe round for this many ping intervals: the prober has stopped
FORGET_NODE_SECONDS = 7 * 86400  # a proxy gone this long is no longer watched (its episode stays as it was)


@dataclass(frozen=True)
class Finding:
    """`key` names what it is about (one episode per key), `link` a panel path (made absolute with PANEL_URL)."""

    key: str
    firing: bool
    title: str
    text: str = ""
    link: str = ""


@dataclass
class AlertSnapshot(LiveSnapshot):
    """The live snapshot as one evaluation sees it, with the rules' memory (rules read and update
    their own part of it; the engine saves it after the evaluation) and the evaluation's time."""

    memory: dict = field(default_factory=dict)
    now: float = field(default_factory=time.time)

    @classmethod
    def of(cls, live, memory, now):
        return cls(**vars(live), memory=memory, now=now)


def _age(seconds):
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def redis_readable(snap, config):
    """Rule (1) of the panel, for the engine itself: blind is not 'all clear'."""
    if snap.redis_error:
        yield Finding(
            "engine:redis",
            True,
            "Alert engine cannot read Redis",
            f"{snap.redis_error}. Server, set, proxy and probe alerts are not judged until it can.",
            reverse("panel:servers"),
        )
    else:
        yield Finding(
            "engine:redis", False, "Alert engine reads Redis again", "Alerts are judged again.", reverse("panel:servers")
        )


def server_down(snap, config):
    """A server (one box, every set it is in) went down, and came back. Health is the worst of its rows'."""
    if snap.redis_error:
        return
    watched = snap.memory.setdefault("servers", {})  # id -> name, so a removed server's episode can end
    current = set()
    for figures in server_figures(snap):
        server = figures.server
        current.add(str(server.id))
        watched[str(server.id)] = server.name
        link = reverse("panel:servers") + f"#server-{server.id}"
        key = f"server:{server.id}:down"
        if figures.admin_state == contract.DISABLED:
            yield Finding(key, False, f"Server {server.name} is disabled", "Disabled servers are not probed or watched.", link)
        elif figures.health == contract.DOWN:
            why = _server_down_reason(snap, figures)
            yield Finding(key, True, f"Server {server.name} is down", f"{server.name} ({server.hostport}) is down{why}.", link)
        elif figures.health == contract.UP:
            rtt = f" (probe RTT {figures.rtt_ms:.1f} ms)" if figures.rtt_ms is not None else ""
            yield Finding(key, False, f"Server {server.name} is up", f"{server.name} ({server.hostport}) is up again{rtt}.", link)
    for server_id in set(watched) - current:
        name = watched.pop(server_id)
        text = f"{name} is no longer in any set."
        yield Finding(f"server:{server_id}:down", False, f"Server {name} was removed", text, reverse("panel:servers"))


def _server_down_reason(snap, figures):
    for s in figures.sets:
        health = snap.health.get(s.destination_id)
        if health is not None and health.state == contract.DOWN and health.reason:
            return f": {health.reason}"
    return ""


def set_unusable(snap, config):
    """A set with destinations none of which takes new calls (all down or out of service)."""
    if snap.redis_error:
        return
    watched = set(snap.memory.get("sets", []))
    current = set()
    for dset in DispatcherSet.objects.prefetch_related("destinations"):
        dests = list(dset.destinations.all())
        if not dests:
            continue
        current.add(dset.setid)
        usable = [d for d in dests if rules.usable(d, rules.effective_health(snap.health.get(d.id), d.health))]
        link = reverse("panel:dashboard") + f"#set-{dset.setid}"
        key = f"set:{dset.setid}:unusable"
        if usable:
            yield Finding(
                key, False, f"Set {dset.setid} has a usable server again", f"{len(usable)} of {len(dests)} usable.", link
            )
        else:
            yield Finding(
                key,
                True,
                f"Set {dset.setid} has no usable server",
                f"None of the {len(dests)} destinations of {dset} takes new calls (down, in maintenance or disabled).",
                link,
            )
    snap.memory["sets"] = sorted(current)
    for setid in watched - current:
        text = "The set was deleted or has no destinations left."
        yield Finding(f"set:{setid}:unusable", False, f"Set {setid} is gone", text, reverse("panel:dashboard"))


def proxy_silent(snap, config):
    """A proxy that reported before and whose heartbeat is now older than proxy_silent_seconds, or gone."""
    if snap.redis_error:
        return
    seen = snap.memory.setdefault("nodes", {})  # name -> epoch of its last heartbeat we saw
    link = reverse("panel:dashboard") + "#proxies"
    live = {}
    for node in snap.nodes:
        name = node.get("name", "")
        live[name] = node["age"]
        seen[name] = float(node.get("heartbeat") or snap.now - node["age"])
    for name, last in sorted(seen.items()):
        age = snap.now - last
        key = f"proxy:{name}:silent"
        if age <= config.proxy_silent_seconds:
            yield Finding(key, False, f"Proxy {name} reports again", f"Proxy {name} sends heartbeats again.", link)
        elif age > FORGET_NODE_SECONDS and name not in live:
            del seen[name]
        else:
            calls = sum(snap.node_calls.get(name, {}).values())
            carried = f"; its dialog records hold {calls} call{'s' if calls != 1 else ''}" if calls else ""
            yield Finding(
                key,
                True,
                f"Proxy {name} stopped reporting",
                f"Proxy {name}'s last heartbeat was {_age(age)} ago{carried}.",
                link,
            )


def proxy_shedding(snap, config):
    """A proxy whose shed counter grew since the last evaluation; over after shedding_quiet_seconds without growth."""
    if snap.redis_error:
        return
    memory = snap.memory.setdefault("shed", {})  # name -> {"count": last counter, "grew": epoch it last grew}
    link = reverse("panel:dashboard") + "#proxies"
    for node in snap.nodes:
        name = node.get("name", "")
        count = int((node.get("totals") or {}).get("shed") or 0)
        before = memory.get(name)
        if before is None:
            memory[name] = {"count": count, "grew": None}  # first sight: a baseline, not a rise
            continue
        grew = count - before["count"] if count >= before["count"] else count  # lower: the proxy restarted
        memory[name] = {"count": count, "grew": snap.now if grew > 0 else before["grew"]}
        key = f"proxy:{name}:shedding"
        if grew > 0:
            sent_503 = int((node.get("totals") or {}).get("sent_503") or 0)
            yield Finding(
                key,
                True,
                f"Proxy {name} is shedding load",
                f"Proxy {name} answered {grew} new INVITE{'s' if grew != 1 else ''} 503 since the last check "
                f"(it is overloaded; {sent_503} 503s sent since it started).",
                link,
            )
        elif before["grew"] is None or snap.now - before["grew"] >= config.shedding_quiet_seconds:
            yield Finding(
                key, False, f"Proxy {name} stopped shedding", f"No INVITE shed for {config.shedding_quiet_seconds} s.", link
            )


BUSY_CLEAR_PCT = 10  # over once this far under the threshold: a proxy hovering at it does not flap


def proxy_busy(snap, config):
    """A proxy process that used proxy_busy_pct of its one core over its last 10 s, or whose reader
    did (--steering reader): its next step is shedding new calls with 503. Over once both are
    BUSY_CLEAR_PCT points under. A proxy with no figure (from before them, just started) or a stale
    heartbeat is not judged."""
    if snap.redis_error:
        return
    link = reverse("panel:dashboard") + "#proxies"
    for node in snap.nodes:
        judged = node_load(node, config.proxy_busy_pct)
        if judged.figures is None:
            continue
        load = judged.figures
        name = node.get("name", "")
        pct = max(load["cpu"], load.get("reader_cpu") or 0.0) * 100
        key = f"proxy:{name}:busy"
        if judged.level == "limit" and judged.cpu_level != "limit":
            yield Finding(
                key,
                True,
                f"Proxy {name}'s reader is at its CPU limit",
                f"The reader process that hands proxy {name} its datagrams from callers (--steering reader) used "
                f"{load['reader_cpu'] * 100:.0f} % of its CPU core over the last {load['window_s']:.0f} s (threshold "
                f"{config.proxy_busy_pct} %; the worker itself {load['cpu'] * 100:.0f} %). Every worker's calls wait "
                "for it: let the kernel steer them instead (CAP_BPF, --steering bpf) or add a node.",
                link,
            )
        elif judged.level == "limit":
            yield Finding(
                key,
                True,
                f"Proxy {name} is at its CPU limit",
                f"Proxy {name} used {load['cpu'] * 100:.0f} % of its CPU core over the last {load['window_s']:.0f} s "
                f"(threshold {config.proxy_busy_pct} %; worst delay {load['delay_ms']:.0f} ms). One proxy "
                "process uses one core: past it, new calls are shed with 503. Add a process "
                "(LBPANEL_PROXY_PROCESSES) or a node.",
                link,
            )
        elif pct < config.proxy_busy_pct - BUSY_CLEAR_PCT:
            yield Finding(key, False, f"Proxy {name} has CPU headroom again", f"{pct:.0f} % of its core.", link)


def probes_stopped(snap, config):
    """No probe round finished for PROBE_ROUNDS_MISSED ping intervals: health is frozen."""
    if snap.redis_error:
        return
    link = reverse("panel:config-probes")
    key = "probes:rounds"
    if snap.probing_paused:
        yield Finding(key, False, "Probing is paused", "Probing was paused (dispatcher.ping_active 0).", link)
        return
    interval = ProbeSettings.load().ping_interval
    limit = PROBE_ROUNDS_MISSED * interval
    if snap.last_round is None:
        # A fresh install has had no round yet: count from when the engine first looked.
        first = snap.memory.setdefault("first_evaluation", snap.now)
        if snap.now - first > limit:
            yield Finding(
                key,
                True,
                "No probe round",
                f"No probe round has finished in {_age(snap.now - first)}: is the Celery worker running?",
                link,
            )
        return
    age = snap.now - snap.last_round
    if age > limit:
        yield Finding(
            key,
            True,
            "Probe rounds stopped",
            f"The last probe round finished {_age(age)} ago (one is due every {interval} s): health shown is frozen. "
            "Restart the Celery worker and beat.",
            link,
        )
    else:
        yield Finding(key, False, "Probe rounds run again", f"The last probe round finished {_age(age)} ago.", link)
