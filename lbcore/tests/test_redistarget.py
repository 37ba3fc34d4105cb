"""REDIS_URL alone, or Sentinel naming the master: what the panel, Celery and the proxy are given."""

import pytest

from lbcore.redistarget import RedisTarget
from proxy import cli


def test_a_url_alone_is_that_redis():
    target = RedisTarget.build("redis://127.0.0.1:6379/3", "", "")
    assert target.sentinels == () and target.celery_url() == "redis://127.0.0.1:6379/3"
    assert target.celery_transport_options() == {}
    assert RedisTarget.of("redis://h/1") == RedisTarget(url="redis://h/1")


def test_with_sentinels_the_url_gives_only_db_and_password():
    target = RedisTarget.build("redis://:p%40ss@ignored:1/4", "10.0.0.1:26379, [fd00::2]:26380", "lb", "spw")
    assert target.sentinels == (("10.0.0.1", 26379), ("fd00::2", 26380))
    assert target.master_options() == {"db": 4, "password": "p@ss"}
    assert target.celery_url() == "sentinel://:p%40ss@10.0.0.1:26379/4;sentinel://:p%40ss@[fd00::2]:26380/4"
    assert target.celery_transport_options() == {"master_name": "lb", "sentinel_kwargs": {"password": "spw"}}
    assert "p@ss" not in target.describe() and "spw" not in target.describe()


@pytest.mark.parametrize(
    "sentinels, master, message",
    [
        ("10.0.0.1:26379", "", "REDIS_SENTINEL_MASTER is not"),
        ("", "lb", "REDIS_SENTINELS is not"),
        ("10.0.0.1", "lb", "'10.0.0.1' is not host:port"),
        ("10.0.0.1:0", "lb", "is not host:port"),
        ("10.0.0.1:\u0662\u0666\u0663\u0667\u0669", "lb", "is not host:port"),  # int() reads 26379
        ("10.0.0.1:\u00b2", "lb", "is not host:port"),
    ],
)
def test_it_refuses_a_half_or_bad_sentinel_setting(sentinels, master, message):
    with pytest.raises(ValueError, match=message):
        RedisTarget.build("redis://127.0.0.1/0", sentinels, master)


def test_proxy_options_override_the_environment(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://a/2")
    monkeypatch.setenv("REDIS_SENTINELS", "127.0.0.1:1")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "env")
    monkeypatch.setenv("REDIS_SENTINEL_PASSWORD", "x")
    env = cli.env_redis_target()
    assert cli.redis_target(None, None, None, env) == RedisTarget("redis://a/2", (("127.0.0.1", 1),), "env", "x")
    target = cli.redis_target(None, "127.0.0.1:26379,127.0.0.1:26380", "opt", env)
    assert target == RedisTarget("redis://a/2", (("127.0.0.1", 26379), ("127.0.0.1", 26380)), "opt", "x")
    assert cli.redis_target("redis://b/3", None, None, RedisTarget.of("redis://a/2")) == RedisTarget.of("redis://b/3")
