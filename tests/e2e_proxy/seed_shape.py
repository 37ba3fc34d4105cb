"""The seed's shape over the e2e cluster, for issue 11's acceptance tests (through the REST API and
through the panel): three servers (SIPp UAS ast1..3) listed in set 1 and set 2, a dialer on 127.0.0.1
(default set 1) and a carrier on 127.0.0.2 (a source rule sends it to set 2). ast3 logs every message
with its time (-trace_msg), to know when its last BYE came. The fixture is `seed_cluster` (conftest.py).
"""

from datetime import datetime

from tests.e2e_proxy.sippctl import Sipp, uac_args, uas_args, wait_udp_sip

DIALER, CARRIER = "127.0.0.1", "127.0.0.2"
SEED_SET2 = {1: (10, 40), 2: (10, 40), 3: (10, 20)}  # the seed's set 2: priority, weight
# SIPp writes its counts and logs every second (-fd 1).
SIPP_DUMP_S = 1.2


def up(counts):
    """Calls a SIPp UAS has up: answered and acknowledged, not yet hung up."""
    return counts.get("ACK_Recv", 0) - counts.get("BYE_Recv", 0)


def make_seed_cluster(cluster_factory):
    """The e2e cluster's set 1 (the seed's set 1 on ast1..3), plus the seed's set 2 on the same three
    servers and a source rule sending the carrier's address to set 2."""
    from dispatcher.models import DispatcherSet, SourceRule
    from dispatcher.services import import_dispatcher_list, save_config

    cluster = cluster_factory(start_proxy=False)
    # ast3 again, logging every message with its time (-trace_msg), to know when its last BYE came.
    cluster.ast[3].kill()
    port = cluster.ports.ast[3]
    cluster.ast[3] = Sipp("uas.xml", cluster.tmp_path / "ast3-traced", [*uas_args(port), "-trace_msg"], "ast3")
    cluster._procs.append(cluster.ast[3])
    wait_udp_sip(port)
    lines = [
        f"2 sip:127.0.0.1:{cluster.ports.ast[n]} 0 {prio} weight={weight};duid=ast{n}" for n, (prio, weight) in SEED_SET2.items()
    ]
    import_dispatcher_list("\n".join(lines) + "\n")
    set2 = DispatcherSet.objects.get(setid=2)
    set2.algorithm = 4
    save_config(set2)
    save_config(SourceRule(network=f"{CARRIER}/32", dset=set2, description="the carrier"))
    cluster.version = int(cluster.redis.get("lb:table:version"))
    cluster.start_proxy()
    return cluster


def caller(cluster, address, *, calls, rate, hold_ms):
    """A SIPp UAC sending from `address` (a loopback address of its own, so source rules see it)."""
    args = uac_args(f"127.0.0.1:{cluster.ports.proxy}", cluster.ports.uac(), calls=calls, rate=rate, hold_ms=hold_ms)
    args[args.index("-i") + 1] = address
    sipp = Sipp("uac.xml", cluster.tmp_path / f"uac-{address}-{next(cluster._runs)}", args, f"uac({address})")
    cluster._procs.append(sipp)
    return sipp


def bye_times(uas):
    """Wall-clock times at which a -trace_msg SIPp UAS received each BYE."""
    times, stamp = [], None
    for path in uas.workdir.glob("*_messages.log"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("-----") and line.rstrip()[-1:].isdigit():
                stamp = datetime.strptime(line.strip("- ").strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            elif line.startswith("BYE sip:") and stamp is not None:
                times.append(stamp)
    return sorted(times)
