"""One evaluation: run the rules on a live snapshot, open and close episodes, queue a notice per
transition, and send what each channel's rate limit allows.

Everything happens under a lock on the AlertSettings row (SELECT ... FOR UPDATE SKIP LOCKED), so two
workers never evaluate at once and a notice is never queued twice; an evaluation that finds the lock
taken does nothing. Delivery is at least once: a send that succeeded just before the worker died is
sent again by the next evaluation.
"""

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from dispatcher import live
from dispatcher.alerts import channels, registry, status
from dispatcher.alerts.models import (
    EMAIL,
    FIRING,
    RESOLVED,
    WEBHOOK,
    AlertDelivery,
    AlertEpisode,
    AlertMemory,
    AlertMessage,
    AlertNotice,
    AlertSettings,
)
from dispatcher.alerts.rules import AlertSnapshot, Finding
from dispatcher.choices import Cause, EventKind
from dispatcher.models import StateEvent

log = logging.getLogger(__name__)
RATE_WINDOW = timedelta(minutes=1)
KEEP_NOTICES = timedelta(days=30)
KEY_LENGTH = AlertEpisode._meta.get_field("key").max_length


def absolute(link):
    """A panel path as a link that works from a chat or a mailbox: PANEL_URL in front when set."""
    base = settings.PANEL_URL
    return base.rstrip("/") + link if base and link.startswith("/") else link


def evaluate(now=None):
    """Returns the number of notices queued, or None when another evaluation holds the lock."""
    now = now if now is not None else time.time()
    at = datetime.fromtimestamp(now, UTC)
    AlertSettings.load()
    with transaction.atomic():
        config = AlertSettings.objects.select_for_update(skip_locked=True).filter(pk=1).first()
        if config is None:
            return None
        memory = AlertMemory.load()
        snap = AlertSnapshot.of(live.snapshot(), memory.state, now)
        queued = _apply(_findings(snap, config), config, at)
        memory.state = snap.memory
        memory.evaluations += 1
        memory.last_evaluated = at
        memory.save()
        _prune(at)
    deliver_all(config, at)
    return queued


def deliver_all(config, at):
    """Send what each channel has pending. On PostgreSQL under the AlertSettings row lock (only that
    row: the panel's other writes go on), so two workers never send one notice twice. SQLite has one
    writer for the whole database, and a transaction around a slow webhook would hold every write in
    the panel: there (one worker, as `make run` has) the sends happen outside any transaction."""
    if not connection.features.has_select_for_update_skip_locked:
        return sum(deliver(channel, config, at) for channel in (WEBHOOK, EMAIL))
    with transaction.atomic():
        if AlertSettings.objects.select_for_update(skip_locked=True).filter(pk=1).first() is None:
            return 0
        return sum(deliver(channel, config, at) for channel in (WEBHOOK, EMAIL))


def _prune(at):
    """The rate limit needs a minute of messages; the notices are kept KEEP_NOTICES for the record."""
    AlertMessage.objects.filter(sent__lt=at - 2 * RATE_WINDOW).delete()
    AlertNotice.objects.filter(created__lt=at - KEEP_NOTICES).exclude(deliveries__state=AlertDelivery.PENDING).delete()


def _findings(snap, config):
    """(rule name, Finding) from every rule that is on. A rule that raises is itself an alert."""
    for rule in registry.ENGINE_RULES + [r for r in registry.RULES if config.rule_on(r.name)]:
        key = f"engine:rule:{rule.name}"
        try:
            with transaction.atomic():  # a savepoint: a rule's failed query must not abort the evaluation's transaction
                found = list(rule(snap, config))
        except Exception as exc:  # noqa: BLE001 (a broken rule must not silence the others, and must be seen)
            log.error("alert rule %s failed: %s: %s", rule.name, type(exc).__name__, exc)
            link = reverse("panel:config-alerts")
            yield rule.name, Finding(key, True, f"Alert rule {rule.name} failed", f"{type(exc).__name__}: {exc}", link)
            continue
        yield from ((rule.name, f) for f in found)
        yield rule.name, Finding(key, False, f"Alert rule {rule.name} works again", "", reverse("panel:config-alerts"))


def _apply(findings, config, at):
    open_episodes = {e.key: e for e in AlertEpisode.objects.filter(closed=None)}
    queued = 0
    for rule, finding in findings:
        if len(finding.key) > KEY_LENGTH:  # a long proxy name: the column holds this much of it
            finding = replace(finding, key=finding.key[:KEY_LENGTH])
        episode = open_episodes.get(finding.key)
        if finding.firing and episode is None:
            try:
                with transaction.atomic():
                    episode = AlertEpisode.objects.create(
                        key=finding.key,
                        rule=rule,
                        title=finding.title[:255],
                        text=finding.text,
                        link=finding.link[:500],
                        opened=at,
                    )
            except IntegrityError:
                continue  # opened by another evaluation meanwhile: it tells it
            open_episodes[finding.key] = episode
            _notice(episode, FIRING, rule, finding, config, at)
            queued += 1
        elif not finding.firing and episode is not None:
            if AlertEpisode.objects.filter(pk=episode.pk, closed=None).update(closed=at) != 1:
                continue
            del open_episodes[finding.key]
            _notice(episode, RESOLVED, rule, finding, config, at)
            queued += 1
    return queued


def _notice(episode, state, rule, finding, config, at):
    notice = AlertNotice.objects.create(
        episode=episode,
        state=state,
        rule=rule,
        key=finding.key,
        title=finding.title[:255],
        text=finding.text,
        link=absolute(finding.link)[:500],
        created=at,
    )
    AlertDelivery.objects.bulk_create(AlertDelivery(notice=notice, channel=c) for c in config.channels())
    StateEvent.objects.create(
        subject=finding.title[:255],
        kind=EventKind.ALERT,
        old="" if state == FIRING else FIRING,
        new=state,
        cause=Cause.ALERT,
        reason=" ".join(p for p in (finding.text, notice.link) if p),
    )
    log.info("alert %s %s: %s", state, finding.key, finding.title)
    return notice


def deliver(channel, config, at):
    """Send a channel's pending notices: one message each while the rate limit allows, and once it
    does not, the rest in one digest. A failure stops the channel until the next evaluation."""
    pending = list(AlertDelivery.objects.filter(channel=channel, state=AlertDelivery.PENDING).select_related("notice"))
    if not pending:
        return 0
    if channel not in config.channels():
        why = f"not sent: the {channel} channel was turned off"
        AlertDelivery.objects.filter(pk__in=[d.pk for d in pending]).update(state=AlertDelivery.DROPPED, error=why)
        log.warning("alerts: %d %s notices dropped: the channel was turned off", len(pending), channel)
        return 0
    limit = config.rate_limit_per_minute
    budget = limit - AlertMessage.objects.filter(channel=channel, sent__gt=at - RATE_WINDOW).count()
    if budget <= 0:
        return 0
    if len(pending) <= budget:
        batches = [[d] for d in pending]
    else:  # the last message the limit allows carries every notice left
        batches = [[d] for d in pending[: budget - 1]] + [pending[budget - 1 :]]
    sent, failure = 0, None
    for batch in batches:
        notices = [d.notice for d in batch]
        subject, text, body = channels.single(notices[0]) if len(batch) == 1 else channels.digest(notices, limit)
        ids = [d.pk for d in batch]
        try:
            channels.send(channel, config, subject, text, body)
        except channels.ChannelError as exc:
            log.warning(
                "alerts: %s; %d notice%s kept, retried next evaluation", exc, len(pending) - sent, "s" * (len(pending) != 1)
            )
            for delivery in pending[sent:]:
                AlertDelivery.objects.filter(pk=delivery.pk).update(attempts=delivery.attempts + 1, error=str(exc)[:500])
            failure = exc
            break
        AlertDelivery.objects.filter(pk__in=ids).update(state=AlertDelivery.SENT, sent=at, in_digest=len(batch) > 1, error="")
        AlertMessage.objects.create(channel=channel, sent=at, notices=len(batch))
        AlertEpisode.objects.filter(notices__deliveries__pk__in=ids).update(last_sent=at)
        sent += len(batch)
    # Seen by the panel (banner, Configuration → Alerts), /metrics and /healthz, not only in this log.
    if sent:
        status.record_success(channel, at)
    if failure is not None:
        status.record_failure(channel, at, failure.reason)
    return sent


def send_test(config, actor):
    """A person's "Send test alert": every configured channel at once, not rate limited.
    Returns [(channel, None or the error)], and records it in the audit log and in each channel's
    delivery status (a real attempt: a working channel clears the banner, a broken one raises it)."""
    at = datetime.now(UTC)
    link = absolute(reverse("panel:config-alerts"))
    notice = AlertNotice(
        state="test",
        rule="test",
        key="test",
        title="Test alert from lbpanel",
        text=f"Sent by {actor.get_username()} from the alert settings page: this channel works.",
        link=link,
        created=at,
    )
    subject, text, body = channels.single(notice)
    results = []
    for channel in config.channels():
        try:
            channels.send(channel, config, subject, text, body)
        except channels.ChannelError as exc:
            log.warning("alerts: test alert: %s", exc)
            status.record_failure(channel, at, exc.reason)
            results.append((channel, str(exc)))
        else:
            status.record_success(channel, at)
            results.append((channel, None))
    summary = "; ".join(f"{c}: {'delivered' if e is None else e}" for c, e in results) or "no channel configured"
    StateEvent.objects.create(
        subject="test alert", kind=EventKind.ALERT, old="", new="test", cause=Cause.USER, actor=actor, reason=f"{summary} {link}"
    )
    return results
