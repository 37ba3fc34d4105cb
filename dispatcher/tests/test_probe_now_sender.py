"""runproxy asks Celery to probe a suspect through one sender thread: a mark never waits for the
broker, and a storm of marks neither starts a thread each nor sends one task each."""

import threading
import time
from types import SimpleNamespace

from dispatcher.management.commands.runproxy import ProbeNowSender


def mark(sender, dest_id, reason="503", server_id=None):
    sender(SimpleNamespace(id=dest_id, server_id=server_id), SimpleNamespace(reason=reason))


def wait_for(condition, timeout=5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_storm_of_marks_is_one_thread_and_one_task_per_destination():
    broker_free = threading.Event()
    sent = []

    def send(dest_id, reason):
        broker_free.wait(5)  # the broker is slow: everything below queues behind this send
        sent.append((dest_id, reason))

    sender = ProbeNowSender(send=send)
    threads_before = threading.active_count()
    mark(sender, 1)
    assert wait_for(lambda: not sender._pending)  # the sender took destination 1 and now blocks on the broker
    start = time.monotonic()
    for i in range(200):
        mark(sender, 2 + i % 3, reason=f"503 #{i}")
    assert time.monotonic() - start < 0.5  # marks never wait for the broker
    assert threading.active_count() <= threads_before + 1
    broker_free.set()
    assert wait_for(lambda: len(sent) == 4)
    assert sent[0] == (1, "503") and sorted(sent[1:]) == [(2, "503 #198"), (3, "503 #199"), (4, "503 #197")]


def test_a_failed_send_is_logged_and_the_next_mark_still_goes(caplog):
    sent = []

    def send(dest_id, reason):
        if dest_id == 1:
            raise ConnectionError("broker down")
        sent.append(dest_id)

    sender = ProbeNowSender(send=send)
    mark(sender, 1)
    assert wait_for(lambda: "probe_now for destination 1 not sent: broker down" in caplog.text)
    mark(sender, 2)
    assert wait_for(lambda: sent == [2])


def test_the_rows_of_one_server_are_one_task():
    # the proxy marks every row of a box at once (ast1 in sets 1 and 2); probe_now probes the box
    broker_free = threading.Event()
    sent = []

    def send(dest_id, reason):
        broker_free.wait(5)
        sent.append(dest_id)

    sender = ProbeNowSender(send=send)
    mark(sender, 1, server_id=1)
    assert wait_for(lambda: not sender._pending)  # the sender blocks on the broker with server 1
    mark(sender, 10, server_id=7)
    mark(sender, 11, server_id=7)
    mark(sender, 20)  # a table without server ids: one task per row, as before
    mark(sender, 21)
    broker_free.set()
    assert wait_for(lambda: len(sent) == 4)
    assert sorted(sent) == [1, 11, 20, 21]
