"""Two carriers over the e2e cluster, for the Carriers acceptance tests: Carrier A (callers on 127.0.0.2)
to set 1 (ast1, ast2; ast2 is killed mid-run), Carrier B (127.0.0.3) to set 2 (ast3 alone, refusing
one INVITE in five with 503, relayed: 503 is no failover code of set 2). Each caller takes a
503 as an answer (uac_or_503.xml), so SIPp's own counts say how many calls each carrier got answered.
"""

from dataclasses import dataclass

from tests.e2e_proxy.sippctl import Sipp, uac_args

CARRIER_A, CARRIER_B = "127.0.0.2", "127.0.0.3"
# uac_or_503.xml: line 0 sends the INVITE, line 3 receives a 503, line 4 the 200
INVITES, REFUSED, ANSWERED = "0_INVITE_Sent", "3_503_Recv", "4_200_Recv"


@dataclass
class SippCounts:
    calls: int
    answered: int
    refused: int


def make_two_carriers(cluster_factory):
    from dispatcher.models import Destination, DispatcherSet, SourceRule
    from dispatcher.services import delete_config, import_dispatcher_list, save_config

    cluster = cluster_factory(start_proxy=False, scenarios={3: "uas_some_503.xml"})
    delete_config(Destination.objects.get(dset__setid=1, duid="ast3"))
    import_dispatcher_list(f"2 sip:127.0.0.1:{cluster.ports.ast[3]} 0 0 duid=ast3\n")
    set1, set2 = DispatcherSet.objects.get(setid=1), DispatcherSet.objects.get(setid=2)
    set2.failover_codes = "500"
    save_config(set2)
    save_config(SourceRule(network=f"{CARRIER_A}/32", dset=set1, description="Carrier A"))
    save_config(SourceRule(network=f"{CARRIER_B}/32", dset=set2, description="Carrier B"))
    cluster.version = int(cluster.redis.get("lb:table:version"))
    cluster.start_proxy()
    return cluster


def caller(cluster, address, *, calls, rate, hold_ms, **kwargs):
    """A carrier's SIPp UAC (uac_or_503.xml) sending from `address`; kwargs go to uac_args (extra=, recv_timeout_ms=)."""
    args = uac_args(f"127.0.0.1:{cluster.ports.proxy}", cluster.ports.uac(), calls=calls, rate=rate, hold_ms=hold_ms, **kwargs)
    args[args.index("-i") + 1] = address
    sipp = Sipp("uac_or_503.xml", cluster.tmp_path / f"uac-{address}", args, f"uac({address})")
    cluster._procs.append(sipp)
    return sipp


def sipp_counts(sipp):
    """What a carrier's SIPp counted: INVITEs sent, 200s and 503s received."""
    return SippCounts(sipp.count(INVITES), sipp.count(ANSWERED), sipp.count(REFUSED))


def run_two_carriers(cluster, *, calls, rate, hold_ms):
    """Both carriers' callers at once, ast2 SIGKILLed once it has answered a few calls; SIPp's counts."""
    a = caller(cluster, CARRIER_A, calls=calls, rate=rate, hold_ms=hold_ms)
    b = caller(cluster, CARRIER_B, calls=calls, rate=rate, hold_ms=hold_ms)
    cluster.wait_uas(lambda c: c[2].get("ACK_Recv", 0) >= 10, "10 calls answered by ast2", deadline_s=30)
    cluster.ast[2].kill()
    for sipp in (a, b):
        sipp.wait(120)
    return {name: sipp_counts(s) for name, s in (("Carrier A", a), ("Carrier B", b))}, (a, b)


def wait_counted(cluster, counts):
    """The proxy's heartbeat once it has counted every call SIPp made (a final response for each)."""

    def done(node):
        carriers = node.get("carriers") or {}
        return all((carriers.get(name) or {}).get("calls") == c.calls for name, c in counts.items())

    return cluster.proxy.wait_node(cluster.redis, done, f"the calls SIPp made: {counts}", deadline_s=20)
