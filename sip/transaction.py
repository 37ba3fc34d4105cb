"""What every SIP sender in this project shares about transactions (RFC 3261 §8.1.1.7, §17).

Timer T1 and T2, and the Via branch that names a client transaction. The proxy and the
prober both send requests; they make branches and retransmit the same way from here.
"""

import hashlib
import hmac
import itertools
import os

T1 = 0.5  # RTT estimate: the first UDP retransmission, doubling from there
T2 = 4.0  # the cap on that doubling (non-INVITE requests and final responses)

BRANCH_MAGIC = b"z9hG4bK"  # RFC 3261 §8.1.1.7: marks a branch as globally unique

_NODE = os.urandom(4).hex().encode()
_KEY = os.urandom(16)  # seals each branch's count: see new_branch
_counter = itertools.count(1)
BRANCH_PREFIX = BRANCH_MAGIC + _NODE  # every branch this process makes starts so


def _after_fork():
    # A forked child (a Celery prefork worker) keeps the parent's prefix, so each child
    # counts from its own random start: two children never send the same branch.
    global _counter
    _counter = itertools.count(int.from_bytes(os.urandom(6), "big"))


os.register_at_fork(after_in_child=_after_fork)


def new_branch():
    """A branch for a new client transaction: bytes, unique across processes and time, and not
    to be guessed. A peer sees our branches (a BYE we relay to a carrier carries one); were they
    only a count, it could name the transactions in flight beside it and answer them from
    anywhere: a forged 200 or 486 for another carrier's call. So each count carries a keyed seal."""
    count = b"%x" % next(_counter)
    return BRANCH_PREFIX + count + b"-" + _seal(count)


def is_own_branch(branch):
    """Did this process (or a fork of it) make `branch`? Checks the seal, not only the prefix."""
    if not branch or not branch.startswith(BRANCH_PREFIX):
        return False
    count, dash, seal = branch[len(BRANCH_PREFIX) :].partition(b"-")
    return bool(dash) and hmac.compare_digest(seal, _seal(count))


def _seal(count):
    return hashlib.blake2s(count, key=_KEY, digest_size=4).hexdigest().encode()
