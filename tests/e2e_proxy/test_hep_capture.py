"""SIP capture against a real receiver: a `manage.py runproxy` with hep_destination set copies
every SIP message of SIPp's calls (UDP and TCP callers) as HEPv3 to Debian's sngrep, which
decodes the same Call-IDs and methods SIPp logged; after the setting is cleared in the panel,
the running proxy sends no more copies."""

import pytest

from tests.e2e_proxy.hepctl import Sngrep, caller_leg, sipp_messages

pytestmark = [pytest.mark.sipp, pytest.mark.slow]

CALLS = 20
TRACE = ("-trace_shortmsg",)


def test_sngrep_decodes_what_sipp_sent_and_got_and_nothing_after_capture_is_off(cluster_factory, ports, tmp_path):
    sngrep = Sngrep(ports.uac(), tmp_path / "sngrep")
    try:
        cluster = cluster_factory(hep_destination=f"127.0.0.1:{sngrep.port}", hep_capture_id=2001)
        runs = [
            cluster.run_uac(calls=CALLS, rate=50, hold_ms=100, extra=TRACE),
            cluster.run_uac(calls=CALLS, rate=50, hold_ms=100, transport="tcp", extra=TRACE),
        ]
        for uac in runs:
            assert int(uac.stats()["SuccessfulCall(C)"]) == CALLS, cluster.report(uac)
        sngrep.mark()
        captured = sngrep.messages()
        expected = set().union(*(sipp_messages(uac) for uac in runs))
        assert len({call_id for call_id, _, _ in expected}) == 2 * CALLS
        assert caller_leg(captured, ports) == expected
        assert {kind for _, _, kind in expected} >= {"INVITE", "ACK", "BYE", "SIP/2.0 200"}
        servers = set(ports.ast.values())
        calls = {call_id for call_id, _, _ in expected}
        to_servers = {(m.call_id, m.kind) for m in captured if m.dport in servers}
        from_servers = {(m.call_id, m.kind) for m in captured if m.sport in servers}
        assert {call_id for call_id, _ in to_servers} == calls == {call_id for call_id, _ in from_servers}
        assert {kind for _, kind in to_servers} == {"INVITE", "ACK", "BYE"}
        assert "SIP/2.0 200" in {kind for _, kind in from_servers}

        from dispatcher.models import ProxySettings
        from dispatcher.services import save_config

        settings = ProxySettings.load()
        settings.hep_destination = ""
        save_config(settings)
        cluster.wait_table(int(cluster.redis.get("lb:table:version")))
        before = len(sngrep.messages())
        off = cluster.run_uac(calls=CALLS, rate=50, hold_ms=100, extra=TRACE)
        assert int(off.stats()["SuccessfulCall(C)"]) == CALLS, cluster.report(off)
        marker = sngrep.mark()
        after = sngrep.messages()[before:]
        assert [m.call_id for m in after] == [marker], "copies after hep_destination was cleared"
        # sngrep's own SIP decoder: one dialog per call of the two runs, and the two markers
        assert sngrep.stop() == 2 * CALLS + 2, sngrep.screen()
        assert "SIP capture on: HEPv3 to 127.0.0.1:" in cluster.proxy.tail(200000)
    finally:
        sngrep.kill()
