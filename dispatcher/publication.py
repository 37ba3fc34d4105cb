"""Whether the table the database wants has reached Redis and every live proxy.

Truth over optimism: a committed change is "not applied to the proxies" until lb:table was built
from it (lb:table:published names the database revision it came from) and every live proxy reports
that table version. A publish that fails after commit is recorded in the database, shown on every
page and in /healthz, and retried by the beat's tick (every second) until Redis takes it.
"""

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DatabaseError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from redis.exceptions import RedisError

from dispatcher import publisher
from dispatcher.models import TableRevision
from dispatcher.redis_client import get_redis
from lbcore import contract, rules

log = logging.getLogger(__name__)

# A proxy applies a new table within milliseconds of the event and says so in its next
# heartbeat (every second): behind for longer than this is not in transit, it is stuck.
BEHIND_GRACE_SECONDS = 3


def want_new_table():
    """In the caller's transaction: the table changed, publish it after commit.

    The revision bump commits or rolls back with the change itself, so the database always
    knows which table it wants even when the publish after commit fails.
    """
    if not TableRevision.objects.filter(pk=1).update(number=F("number") + 1):
        TableRevision.objects.bulk_create([TableRevision(pk=1, number=0)], ignore_conflicts=True)
        TableRevision.objects.filter(pk=1).update(number=F("number") + 1)
    transaction.on_commit(publish)


def publish():
    """Publish the table now. Returns its version, or None when Redis refused (recorded; the beat retries)."""
    try:
        return publisher.publish_table()
    except RedisError as exc:
        record_failure(f"Redis did not take the table ({exc})")
        return None


def record_failure(error):
    log.error("routing table not published: %s; the beat retries every second", error)
    try:
        TableRevision.objects.filter(pk=1).update(publish_error=error[:500], failing_since=Coalesce(F("failing_since"), Now()))
    except DatabaseError as exc:
        log.error("could not record the failed publish either: %s", exc)


def publish_if_pending(r):
    """The beat's retry: publish when Redis holds no table built from the database's revision.

    Returns the new version, or None when nothing was pending (or Redis refused again).
    """
    wanted = publisher.wanted_revision()
    revision = (_published_doc(r.get(publisher.PUBLISHED_KEY)) or {}).get("revision")
    # No revision on either side: no change was made since install (or upgrade) to republish.
    if revision == wanted or (revision is None and wanted == 0):
        return None
    log.warning("lb:table is from revision %s, the database wants %s: publishing again", revision, wanted)
    return publish()


def _published_doc(raw):
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


@dataclass
class Publication:
    wanted: int = 0
    published: int | None = None  # the revision lb:table was built from; None: no record or Redis away
    version: int | None = None  # lb:table's version, as the proxies see it
    published_at: float | None = None
    error: str = ""  # why the last publish failed (or why Redis cannot be read now)
    failing_since: datetime | None = None
    behind: list = field(default_factory=list)  # live proxies stuck on an older table: {"name", "table_version"}
    published_states: dict | None = None  # destination id -> admin state in lb:table, read only when it differs

    @property
    def publish_failed(self):
        """The last publish after a commit failed and none has succeeded since."""
        return self.failing_since is not None

    @property
    def in_redis(self):
        if self.publish_failed:
            return False
        if self.published is None:
            # Redis unreadable (its own banner says so), or nothing was ever wanted.
            return self.wanted == 0 or bool(self.error)
        return self.published == self.wanted

    @property
    def pending(self):
        return not self.in_redis or bool(self.behind)

    @property
    def since_label(self):
        return timezone.localtime(self.failing_since).strftime("%H:%M") if self.failing_since else ""

    @property
    def message(self):
        """What the banner says: what is wrong, since when, and that it is being retried."""
        if not self.in_redis:
            why = self.error or "Redis holds an older table"
            since = f" since {self.since_label}" if self.since_label else ""
            return (
                f"Change not applied to the proxies: {why}{since}. Retrying every second; until then "
                "the proxies route with the previous table."
            )
        if self.behind:
            names = ", ".join(f"{n['name']} (v{n['table_version']})" for n in self.behind)
            return (
                f"Change not applied to every proxy: {names} still on an older table than v{self.version}. "
                "Restart that proxy if this stays."
            )
        return ""

    def applied(self, dest):
        """Whether this destination's admin state in the database is what lb:table says: True or
        False, or None when nobody can tell (Redis unreadable while a change waits to be published)."""
        if self.published_states is not None:
            return self.published_states.get(dest.id) == dest.admin_state
        if self.publish_failed or (self.published is None and self.error and self.wanted):
            return None
        return True


def status(snap):
    """The publication as it is now; `snap` is a dispatcher.live snapshot (nodes and their versions)."""
    pub = Publication()
    try:
        row = TableRevision.objects.filter(pk=1).values("number", "publish_error", "failing_since").first()
    except DatabaseError:
        return pub  # the database's own check says so; nothing to compare with
    if row:
        pub.wanted, pub.failing_since = row["number"], row["failing_since"]
        pub.error = row["publish_error"] if row["failing_since"] else ""
    if snap.redis_error:
        pub.error = pub.error or snap.redis_error
        return pub
    try:
        r = get_redis()
        doc = _published_doc(r.get(publisher.PUBLISHED_KEY))
        if doc is not None:
            pub.published, pub.version, pub.published_at = doc.get("revision"), doc.get("version"), doc.get("at")
        if not pub.in_redis:
            raw = r.get(contract.TABLE_KEY)
            table = contract.decode_table(raw) if raw else None
            pub.published_states = {d.id: d.admin_state for s in table.sets.values() for d in s.destinations} if table else {}
    except RedisError as exc:
        pub.error = pub.error or f"Redis is not reachable: {exc}"
        return pub
    if pub.version is not None and pub.published_at is not None and time.time() - pub.published_at > BEHIND_GRACE_SECONDS:
        pub.behind = [
            {"name": n.get("name", ""), "table_version": n.get("table_version")}
            for n in snap.nodes
            if n["age"] <= contract.NODE_TTL_SECONDS and rules.versions_behind(pub.version, n.get("table_version"))
        ]
    return pub
