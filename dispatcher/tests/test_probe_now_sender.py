"""runproxy asks Celery to probe a suspect through one sender thread: a mark never waits for the
broker, and a storm of marks neither starts a thread each nor sends one task each."""

import threading
import time
from types import SimpleNamespace

from dispatcher.management.commands.runproxy import ProbeNowSender


def mark(sender, dest_id, reason="503"):
    sender(SimpleNamespace(id=dest_id), SimpleNamespace(reason=reason))


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
