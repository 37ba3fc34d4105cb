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


@lru_cache(maxsize=4)
def _client(target):
    if not target.sentinels:
        return redis.Redis.from_url(target.url, **OPTIONS)
    # The pool asks the sentinels for the master's address on every new connection, so after a
    # failover the next command (retried by redis-py) lands on the new master.
    sentinel_options = {"socket_timeout": 1, "socket_connect_timeout": 1, "password": target.sentinel_password}
    sentinel = Sentinel(target.sentinels, sentinel_kwargs=sentinel_options, **OPTIONS)
    return sentinel.master_for(target.master, **target.master_options())


def get_redis():
    """One pooled client per Redis target (the panel, the workers and beat all use it)."""
    return _client(redis_target())
