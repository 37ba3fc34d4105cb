from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=4)
def _client(url):
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)


def get_redis():
    """One pooled client per REDIS_URL (tests switch the URL through settings)."""
    return _client(settings.REDIS_URL)
