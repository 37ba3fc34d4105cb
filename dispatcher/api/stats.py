"""Live numbers joined with configuration, for /api/v1/stats/, /api/v1/nodes/ and /metrics."""

from dispatcher import live
from dispatcher.models import Destination, DispatcherSet
from lbcore import contract, rules


def destination_rows(snap):
    rows = []
    for dest in Destination.objects.select_related("dset").order_by("dset__setid", "-priority", "id"):
        health = rules.known_health(dest.admin_state, rules.effective_health(snap.health.get(dest.id), dest.health))
        live = snap.for_destination(dest.id)
        rows.append(
            {
                "id": dest.id,
                "set": dest.dset.setid,
                "uri": dest.uri,
                "duid": dest.duid,
                "admin_state": dest.admin_state,
                "health": health.state,
                "health_unknown": (health.reason or None) if health.state == contract.UNKNOWN else None,
                "kamailio_flags": rules.flag_letters(dest.admin_state, health.state, dest.probing),
                "usable": rules.usable(dest, health),
                "rtt_ms": health.rtt_ms,
                "active": live.active_known,
                "active_unknown": live.unknown_reason or None,
                "cps": live.cps_known,
                "cps_1m": live.cps_1m_known,
                "invites": live.invites,
                "answered": live.answered,
                "failovers": live.failovers,
            }
        )
    return rows


def _sum_known(values, digits=None):
    """The sum, or None when any part is unknown: a total with a hole in it is not a total."""
    values = list(values)
    if any(v is None for v in values):
        return None
    total = sum(values)
    return round(total, digits) if digits is not None else total


def stats_document(snap):
    rows = destination_rows(snap)
    sets = []
    for dset in DispatcherSet.objects.order_by("setid"):
        mine = [r for r in rows if r["set"] == dset.setid]
        sets.append(
            {
                "setid": dset.setid,
                "name": dset.name,
                "destinations": len(mine),
                "usable": sum(r["usable"] for r in mine),
                **{key: sum(r[key] for r in mine) for key in ("invites", "answered", "failovers")},
                "active": _sum_known(r["active"] for r in mine),
                "cps": _sum_known((r["cps"] for r in mine), 3),
                "cps_1m": _sum_known((r["cps_1m"] for r in mine), 3),
            }
        )
    return {
        "taken_at": snap.taken_at,
        "table_version": snap.table_version,
        "redis_error": snap.redis_error,
        "nodes": len(snap.nodes),
        "sets": sets,
        "destinations": rows,
    }


def node_rows(snap, busy_pct):
    return [
        _with_load(
            node,
            busy_pct,
            {
                "name": node.get("name", ""),
                "heartbeat": float(node.get("heartbeat", 0)),
                "age": round(node["age"], 3),
                "table_version": node.get("table_version"),
                "behind": bool(rules.versions_behind(snap.table_version, node.get("table_version"))),
                "started": node.get("started"),
                "pid": node.get("pid"),
                "listen": list(node.get("listen", [])),
                "totals": {k: float(v) for k, v in (node.get("totals") or {}).items() if isinstance(v, (int, float))},
                "table_applied_at": node.get("table_applied_at"),
                "propagation_ms": rules.propagation_ms(node),
                "advertise": node.get("advertise"),
                "holds_address": node.get("holds_address"),
            },
        )
        for node in snap.nodes
    ]


def _with_load(node, busy_pct, row):
    load = live.node_load(node, busy_pct)
    row["load"] = load.figures
    row["load_level"] = load.level
    row["load_unknown_why"] = load.why or None
    return row
