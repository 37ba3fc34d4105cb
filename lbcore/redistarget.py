"""Where lbpanel's Redis is: one URL, or Redis Sentinel naming the master. Shared by the panel and the proxy.

With Sentinel, REDIS_URL still gives the db number and the master's user and password; its host
and port are not used, the sentinels say where the master is now.
"""

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit


@dataclass(frozen=True)
class RedisTarget:
    url: str
    sentinels: tuple = ()  # ((host, port), ...)
    master: str = ""
    sentinel_password: str | None = None

    @classmethod
    def of(cls, value):
        """A RedisTarget as is, a URL as a target without Sentinel."""
        return value if isinstance(value, cls) else cls(url=value)

    @classmethod
    def build(cls, url, sentinels=(), master="", sentinel_password=None):
        """From settings or options: `sentinels` is "host:port,..." or a list of them (or of pairs).
        ValueError names what is wrong."""
        if isinstance(sentinels, str):
            sentinels = sentinels.split(",")
        pairs = tuple(parse_sentinel(s) if isinstance(s, str) else tuple(s) for s in sentinels if s and str(s).strip())
        master = (master or "").strip()
        if pairs and not master:
            raise ValueError("REDIS_SENTINELS is set but REDIS_SENTINEL_MASTER is not: name the master the sentinels monitor")
        if master and not pairs:
            raise ValueError("REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not: list them as host:port,...")
        return cls(url=url, sentinels=pairs, master=master, sentinel_password=sentinel_password or None)

    def master_options(self):
        """db, username and password of the master, from the URL's path and credentials."""
        parts = urlsplit(self.url)
        path = parts.path.strip("/")
        try:
            db = int(path or 0)
        except ValueError:
            raise ValueError(f"REDIS_URL's path {parts.path!r} is not a db number") from None
        options = {"db": db}
        if parts.username:
            options["username"] = unquote(parts.username)
        if parts.password:
            options["password"] = unquote(parts.password)
        return options

    def celery_url(self):
        """Celery's broker and result backend URL: REDIS_URL, or one sentinel:// per sentinel."""
        if not self.sentinels:
            return self.url
        options = self.master_options()
        auth = ""
        if "password" in options:
            auth = f"{quote(options.get('username', ''), safe='')}:{quote(options['password'], safe='')}@"
        return ";".join(f"sentinel://{auth}{_hostport(h, p)}/{options['db']}" for h, p in self.sentinels)

    def celery_transport_options(self):
        """broker_transport_options and result_backend_transport_options for celery_url()."""
        if not self.sentinels:
            return {}
        options = {"master_name": self.master}
        if self.sentinel_password:
            options["sentinel_kwargs"] = {"password": self.sentinel_password}
        return options

    def describe(self):
        """For logs: no password."""
        if self.sentinels:
            return f"sentinel master {self.master} via " + ",".join(_hostport(h, p) for h, p in self.sentinels)
        parts = urlsplit(self.url)
        return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def parse_sentinel(value):
    """ "host:port" or "[v6]:port" -> (host, port)."""
    value = value.strip()
    host, sep, port = value.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or len(port) > 5 or not 0 < int(port) < 65536:
        raise ValueError(f"REDIS_SENTINELS entry {value!r} is not host:port")
    return host.strip("[]"), int(port)


def _hostport(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
