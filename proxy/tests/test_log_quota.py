"""One rate limit for the proxy's log lines: a few a second, then a count of the rest, written
with the next event or by the sweep once the flood stopped."""

import logging

from proxy.logquota import LogQuota

log = logging.getLogger("proxy.test")


def _lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "proxy.test"]


def test_it_logs_a_few_lines_a_second_then_counts(caplog):
    quota = LogQuota(3, log, "refusals")
    with caplog.at_level(logging.WARNING, logger="proxy.test"):
        for n in range(10):
            quota.warning(100.0 + n / 100, "refused %d", n)
        quota.warning(101.5, "refused %d", 10)
    assert _lines(caplog) == ["refused 0", "refused 1", "refused 2", "7 more refusals not logged", "refused 10"]


def test_the_sweep_writes_the_count_of_a_flood_that_stopped(caplog):
    quota = LogQuota(1, log, "malformed messages")
    with caplog.at_level(logging.WARNING, logger="proxy.test"):
        assert quota.allow(10.0)
        assert not quota.allow(10.1)
        assert not quota.allow(10.2)
        quota.flush(10.5)  # the second is not over: nothing yet
        assert _lines(caplog) == []
        quota.flush(11.0)
        quota.flush(12.0)  # once only
    assert _lines(caplog) == ["2 more malformed messages not logged"]
