"""Call records written to a real Redis the way proxy.calllog writes them (lbcore.calls fields)."""

import time

from lbcore import calls


def add_setup(redis, call_id, tried, code, *, carrier="other", from_user="1000", to_user="2000", started=None, ftag="ft"):
    """`tried`: [(destination, server id, code or None, ms)] in order."""
    attempts = calls.RS.join(calls.attempt(d.pk, sid, c, ms, "" if c else "no reply", d.uri) for d, sid, c, ms in tried)
    data = calls.encode_setup(
        call_id,
        started or time.time(),
        "n1",
        "127.0.0.2:5060",
        carrier,
        1,
        "default",
        from_user,
        to_user,
        ftag,
        code,
        42,
        "",
        attempts,
    )
    return redis.xadd(calls.CALL_LOG_KEY, {"t": calls.SETUP, "d": data})


def add_end(redis, call_id, *, btag="ft", ended=None, by=""):
    data = calls.encode_end(call_id, ended or time.time(), btag, by)
    return redis.xadd(calls.CALL_LOG_KEY, {"t": calls.END, "d": data})
