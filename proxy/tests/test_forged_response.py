"""A peer that saw one of our branches (a BYE we relay to a carrier carries one) must not be able
to answer another call's INVITE: branches used to be a process prefix and a count, so the next
call's was the seen one plus one, and a forged 486 from anywhere ended that call."""

from proxy.tests.harness import Harness, dest, run
from sip.transaction import BRANCH_PREFIX


def one_server(ports):
    return [dest(1, ports[0])], ports[:1]


def test_a_guessed_branch_does_not_answer_another_call():
    async def scenario():
        async with Harness(one_server) as h:
            a = h.dest_ports[0]
            h.invite(b"seen")
            seen = (await h.uas[a].recv()).via.branch
            h.invite(b"victim")
            victim = await h.uas[a].recv()
            count = int(seen[len(BRANCH_PREFIX) :].split(b"-")[0], 16)
            guess = BRANCH_PREFIX + b"%x" % (count + 1)
            top = victim.values[victim.find(b"via")].split(b",")[0]
            forged = (
                b"SIP/2.0 486 Busy Here\r\n"
                b"Via: " + top.split(b";branch=")[0] + b";branch=" + guess + b"\r\n"
                b"From: " + victim.get(b"from") + b"\r\n"
                b"To: " + victim.get(b"to") + b";tag=forged\r\n"
                b"Call-ID: victim\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
            )
            h.send(forged)  # from the caller's side, not from the server
            assert await h.uac.silent(within=0.5)
            h.uas[a].answer(victim, 200, b"OK")
            ok = await h.uac.recv()
            assert (ok.code, ok.call_id) == (200, b"victim")

    run(scenario())
