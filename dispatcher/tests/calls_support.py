"""Call records written to a real Redis the way proxy.calllog writes them (lbcore.calls fields)."""

import time

from lbcore import calls


def add_setup(redis, call_id, tried, code, *, carrier="other", from_user="1000", to_user="2000", started=None, ftag="ft"):
    """`tried`: [(destination, server id, code or None, ms)] in order."""
    attempts = [calls.attempt(d.pk, sid, d.uri, c, ms, "" if c else "no reply") for d, sid, c, ms in tried]
    doc = {
        "call_id": call_id,
        "started": started or time.time(),
        "node": "n1",
        "source": "127.0.0.2:5060",
        "carrier": carrier,
        "set": 1,
        "why": "default",
        "from_user": from_user,
        "to_user": to_user,
        "ftag": ftag,
        "attempts": attempts,
        "final_code": code,
        "setup_ms": 42,
        "canceled": False,
    }
    return redis.xadd(calls.CALL_LOG_KEY, {"t": calls.SETUP, "d": calls.encode(doc)})


def add_end(redis, call_id, *, btag="ft", ended=None, by=""):
    doc = {"call_id": call_id, "ended": ended or time.time(), "btag": btag, "by": by}
    return redis.xadd(calls.CALL_LOG_KEY, {"t": calls.END, "d": calls.encode(doc)})
