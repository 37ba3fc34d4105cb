"""Call records written to a real Redis the way proxy.calllog writes them (lbcore.calls fields)."""

import time

from lbcore import calls


def add_setup(redis, call_id, tried, code, *, carrier="other", from_user="1000", to_user="2000", started=None, ftag="ft"):
    """`tried`: [(destination, server id, code or None, ms)] in order."""
    attempts = [calls.attempt(d.pk, sid, d.uri, c, ms, "" if c else "no reply") for d, sid, c, ms in tried]
    fields = {
        "t": calls.SETUP,
        "call_id": call_id,
        "started": f"{started or time.time():.3f}",
        "node": "n1",
        "source": "127.0.0.2:5060",
        "carrier": carrier,
        "set": "1",
        "why": "default",
        "from_user": from_user,
        "to_user": to_user,
        "ftag": ftag,
        "attempts": calls.encode_attempts(attempts),
        "final_code": str(code),
        "setup_ms": "42",
    }
    return redis.xadd(calls.CALL_LOG_KEY, fields)


def add_end(redis, call_id, *, btag="ft", ended=None, by=""):
    fields = {"t": calls.END, "call_id": call_id, "ended": f"{ended or time.time():.3f}", "btag": btag, "by": by}
    return redis.xadd(calls.CALL_LOG_KEY, fields)
