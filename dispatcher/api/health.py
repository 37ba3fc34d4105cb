"""GET /healthz: is every part the system needs alive? 200 when so, 503 naming what is not.

No authentication, so a load balancer or monitor can ask; it says nothing secret.

Alert delivery (the webhook or e-mail failing) is under `warnings`, not `checks`: it never makes the
answer 503. A load balancer or orchestrator acting on /healthz would take the panel out of service or
restart it, which mends no webhook and hides the banner that says what is wrong; the SIP proxies and the
prober work on. It is reported, without the error text (which can name recipients), for a monitor that
reads the body; /metrics has LbpanelAlertDeliveryFailing for paging, the panel the reason.
"""

import time

from django.db import DatabaseError, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_safe
from redis.exceptions import RedisError

from dispatcher import publication
from dispatcher.alerts.status import channel_states
from dispatcher.database_errors import database_problem
from dispatcher.live import snapshot
from dispatcher.models import ProbeSettings, WriteCheck
from dispatcher.redis_client import get_redis
from lbcore import contract, rules

# The worker is stale after missing this many probe rounds.
WORKER_ROUNDS_LATE = 3


def check_database():
    """A real write, committed: a read-only replica, a full disk or revoked privileges all fail here."""
    try:
        with transaction.atomic():
            WriteCheck.objects.update_or_create(pk=1, defaults={"checked": timezone.now()})
        return {"ok": True}
    except DatabaseError as exc:
        return {"ok": False, "error": f"the database does not take writes: {database_problem(exc)}"}


def check_redis():
    try:
        r = get_redis()
        r.ping()
        return {"ok": True}, r.get(contract.LAST_ROUND_KEY), r.get(contract.PING_ACTIVE_KEY)
    except RedisError as exc:
        return {"ok": False, "error": f"Redis: {exc}"}, None, None


def check_worker(last_round, paused, database_ok, now):
    interval = ProbeSettings.load().ping_interval if database_ok else ProbeSettings._meta.get_field("ping_interval").default
    limit = WORKER_ROUNDS_LATE * interval
    age = now - float(last_round) if last_round is not None else None
    result = {"last_round_age": round(age, 3) if age is not None else None, "stale_after": limit, "paused": paused}
    if paused:
        # Probing was paused by dispatcher.ping_active 0: no rounds are expected.
        return {"ok": True, **result}
    if age is None:
        return {"ok": False, "error": "no probe round has finished: is the Celery worker (and beat) running?", **result}
    if age > limit:
        return {"ok": False, "error": f"the last probe round finished {age:.0f}s ago (more than {limit}s)", **result}
    return {"ok": True, **result}


def check_publication(snap):
    """Is the table the database wants in Redis and applied by every live proxy?"""
    pub = publication.status(snap)
    result = {
        "ok": not pub.pending,
        "wanted_revision": pub.wanted,
        "published_revision": pub.published,
        "table_version": pub.version,
    }
    if pub.pending:
        result["error"] = "not applied to the proxies: " + pub.message
    return result


def check_proxies(snap):
    nodes = [
        {
            "name": n.get("name", ""),
            "age": round(n["age"], 3),
            "table_version": n.get("table_version"),
            "behind": bool(rules.versions_behind(snap.table_version, n.get("table_version"))),
            "ok": n["age"] <= contract.NODE_TTL_SECONDS,
        }
        for n in snap.nodes
    ]
    ok = any(n["ok"] for n in nodes)
    result = {"ok": ok, "nodes": nodes, "table_version": snap.table_version}
    if not ok:
        result["error"] = "no proxy has sent a heartbeat: is runproxy running?"
    return result


def check_alert_delivery():
    """Each configured alert channel: is its latest attempt a success? Never a reason for 503 (above)."""
    try:
        states = channel_states()
    except DatabaseError:
        return {"ok": False, "error": "unknown while the database is down", "channels": {}}
    channels = {
        s.channel: {
            "ok": not s.failing,
            "tried": s.status is not None,
            "consecutive_failures": s.status.consecutive_failures if s.status else 0,
            "last_success": s.status.last_success.isoformat() if s.status and s.status.last_success else None,
            "last_failure": s.status.last_failure.isoformat() if s.status and s.status.last_failure else None,
        }
        for s in states
    }
    failing = [s for s in states if s.failing]
    result = {"ok": not failing, "channels": channels}
    if failing:
        said = ", ".join(s.failed for s in failing)
        result["error"] = f"alerts are not being delivered: {said} (the reason is on /config/alerts/)"
    return result


@require_safe
def healthz(request):
    now = time.time()
    checks = {"database": check_database()}
    checks["redis"], last_round, ping_active = check_redis()
    if checks["redis"]["ok"]:
        paused = rules.probing_paused(ping_active)
        checks["worker"] = check_worker(last_round, paused, checks["database"]["ok"], now)
        snap = snapshot()
        checks["proxies"] = check_proxies(snap)
        checks["publication"] = check_publication(snap)
    else:
        checks["worker"] = {"ok": False, "error": "unknown while Redis is down"}
        checks["proxies"] = {"ok": False, "nodes": [], "error": "unknown while Redis is down"}
        checks["publication"] = {"ok": False, "error": "unknown while Redis is down"}
    down = [name for name, check in checks.items() if not check["ok"]]
    warnings = {"alert_delivery": check_alert_delivery()}
    body = {"status": "down" if down else "ok", "down": down, "checks": checks, "warnings": warnings}
    return JsonResponse(body, status=503 if down else 200)
