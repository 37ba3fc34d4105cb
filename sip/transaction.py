"""What every SIP sender in this project shares about transactions (RFC 3261 §8.1.1.7, §17).

Timer T1 and T2, and the Via branch that names a client transaction. The proxy and the
prober both send requests; they make branches and retransmit the same way from here.
"""

import itertools
import os

T1 = 0.5  # RTT estimate: the first UDP retransmission, doubling from there
T2 = 4.0  # the cap on that doubling (non-INVITE requests and final responses)

BRANCH_MAGIC = b"z9hG4bK"  # RFC 3261 §8.1.1.7: marks a branch as globally unique

_NODE = os.urandom(4).hex().encode()
_counter = itertools.count(1)
BRANCH_PREFIX = BRANCH_MAGIC + _NODE  # every branch this process makes starts so


def _after_fork():
    # A forked child (a Celery prefork worker) keeps the parent's prefix, so each child
    # counts from its own random start: two children never send the same branch.
    global _counter
    _counter = itertools.count(int.from_bytes(os.urandom(6), "big"))


os.register_at_fork(after_in_child=_after_fork)


def new_branch():
    """A branch for a new client transaction: bytes, unique across processes and time."""
    return BRANCH_PREFIX + b"%x" % next(_counter)
