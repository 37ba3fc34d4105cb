"""The proxy runs on glibc's malloc with a heap that grows in large steps and is never trimmed
(proxy/memory.py): started without those settings, it starts itself again, same pid, with them.
A proxy that took memory from the system while carrying calls was seen blocked 2.5 s in brk."""

import os

from proxy import memory
from tests.e2e_proxy.proxyctl import ProxyProcess


def _environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as fh:
        return dict(item.split(b"=", 1) for item in fh.read().split(b"\0") if b"=" in item)


def _bare_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in memory.ENV and k != memory.OPT_OUT}
    return {**env, **extra}


def _start(tmp_path, redis_url, port, env):
    proxy = ProxyProcess(port=port, redis_url=redis_url, node_name=f"t-alloc-{port}", logdir=tmp_path)
    proxy.env = {**env, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    proxy.start()
    return proxy


def test_a_proxy_started_without_the_settings_restarts_itself_with_them(tmp_path, redis_url, ports):
    proxy = _start(tmp_path, redis_url, ports.proxy, _bare_env())
    try:
        env = _environ(proxy.proc.pid)  # the pid we started: execve keeps it
        assert env[b"PYTHONMALLOC"] == b"malloc"
        assert env[b"MALLOC_TRIM_THRESHOLD_"] == memory.ENV["MALLOC_TRIM_THRESHOLD_"].encode()
        assert env[b"MALLOC_TOP_PAD_"] == memory.ENV["MALLOC_TOP_PAD_"].encode()
    finally:
        proxy.stop()


def test_the_operator_can_keep_pythons_allocator(tmp_path, redis_url, ports):
    proxy = _start(tmp_path, redis_url, ports.proxy, _bare_env(LBPANEL_PROXY_ALLOCATOR="python"))
    try:
        assert b"PYTHONMALLOC" not in _environ(proxy.proc.pid)
    finally:
        proxy.stop()


def test_settings_already_given_need_no_restart():
    assert memory.wanted(dict(memory.ENV)) == {}
    assert memory.wanted({}) == memory.ENV
    assert memory.wanted({memory.OPT_OUT: "Python"}) == {}
