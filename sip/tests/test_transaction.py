"""sip/transaction.py: the branches every sender in this project makes."""

import os

from sip.transaction import BRANCH_PREFIX, is_own_branch, new_branch


def test_branches_are_rfc3261_and_unique():
    a, b = new_branch(), new_branch()
    assert a.startswith(b"z9hG4bK") and a != b


def test_every_branch_starts_with_the_process_prefix():
    assert new_branch().startswith(BRANCH_PREFIX)


def test_a_forked_child_makes_branches_its_parent_does_not():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, new_branch())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100)
    os.close(read)
    mine = {new_branch() for _ in range(1000)}
    assert child.startswith(BRANCH_PREFIX) and child not in mine


def test_a_branch_is_ours_only_with_its_seal():
    branch = new_branch()
    assert is_own_branch(branch)
    count = branch[len(BRANCH_PREFIX) :].split(b"-")[0]
    assert not is_own_branch(BRANCH_PREFIX + count)  # the count alone, as branches used to be
    assert not is_own_branch(BRANCH_PREFIX + b"%x-00000000" % (int(count, 16) + 1))
    assert not is_own_branch(b"z9hG4bK-someone-else") and not is_own_branch(None)
