from functools import lru_cache

import redis
from django.conf import settings
from redis.sentinel import Sentinel

from lbcore.redistarget import RedisTarget

OPTIONS = {"socket_timeout": 2, "socket_connect_timeout": 2, "health_check_interval": 30}


def redis_target():
    """REDIS_URL, or the Sentinel master, as settings say now (tests switch them through settings)."""
    return RedisTarget.build(
        settings.REDIS_URL, settings.REDIS_SENTINELS, settings.REDIS_SENTINEL_MASTER, settings.REDIS_SENTINEL_PASSWORD
    )


def connect(target, **options):
    """A new client for `target`: REDIS_URL's server, or the master the sentinels name (`options`
    override the socket timeouts and health check)."""
    options = {**OPTIONS, **options}
    if not target.sentinels:
        return redis.Redis.from_url(target.url, **options)
    # The pool asks the sentinels for the master's address on every new connection, so after a
    # failover the next command (retried by redis-py) lands on the new master.
    sentinel_options = {
        "socket_timeout": options["socket_timeout"],
        "socket_connect_timeout": options["socket_connect_timeout"],
        "password": target.sentinel_password,
    }
    sentinel = Sentinel(target.sentinels, sentinel_kwargs=sentinel_options, **options)
    return sentinel.master_for(target.master, **target.master_options())


@lru_cache(maxsize=4)
def _client(target):
    return connect(target)


def get_redis():
    """One pooled client per Redis target (the panel, the workers and beat all use it)."""
    return _client(redis_target())
