"""Whether alerts reach anyone: each channel's delivery outcome, recorded by the engine on every attempt
and read by the panel's banner, Configuration → Alerts, /metrics and /healthz.

A failing channel is retried every evaluation (LBPANEL_ALERT_INTERVAL, 5 s) while it has notices
pending, so a failure costs one UPDATE of one row per channel per evaluation; a channel with nothing to
send is not tried and not written.
"""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from dispatcher.alerts.models import CHANNELS, AlertChannelStatus, AlertSettings

ERROR_LENGTH = AlertChannelStatus._meta.get_field("last_error").max_length
CHANNEL_NAMES = dict(CHANNELS)


def _update(channel, **changes):
    """One UPDATE; the row is created on a channel's first attempt (in a savepoint: a concurrent first
    attempt, the worker's and the test button's, must not abort the caller's transaction)."""
    if AlertChannelStatus.objects.filter(channel=channel).update(**changes):
        return
    try:
        with transaction.atomic():
            AlertChannelStatus.objects.create(channel=channel)
    except IntegrityError:
        pass
    AlertChannelStatus.objects.filter(channel=channel).update(**changes)


def record_success(channel, at):
    _update(channel, last_success=at, consecutive_failures=0, failing_since=None)


def record_failure(channel, at, error):
    _update(
        channel,
        last_failure=at,
        last_error=error[:ERROR_LENGTH],
        consecutive_failures=F("consecutive_failures") + 1,
        failures_total=F("failures_total") + 1,
        failing_since=Coalesce(F("failing_since"), Value(at, output_field=DateTimeField())),
    )


def forget(channels):
    """The channels' targets changed (another URL, other recipients): what the old ones did says
    nothing about the new ones."""
    AlertChannelStatus.objects.filter(channel__in=channels).delete()


@dataclass(frozen=True)
class ChannelState:
    """A configured channel as the panel shows it; `status` is None while it was never tried."""

    channel: str
    status: AlertChannelStatus | None

    @property
    def name(self):
        return CHANNEL_NAMES.get(self.channel, self.channel).lower()

    @property
    def failing(self):
        return self.status is not None and self.status.failing

    @property
    def since(self):
        """When the failures began, as a time of day (with the date when not today)."""
        began = timezone.localtime(self.status.failing_since or self.status.last_failure)
        return began.strftime("%H:%M" if began.date() == timezone.localdate() else "%Y-%m-%d %H:%M")

    @property
    def failed(self):
        """ "webhook failed 12 times since 14:02"."""
        n = self.status.consecutive_failures
        return f"{self.name} failed {n} time{'s' * (n != 1)} since {self.since}"

    @property
    def summary(self):
        """ "webhook failed 12 times since 14:02: connection refused to 127.0.0.1:5099"."""
        return f"{self.failed}: {self.status.last_error}"


def channel_states(config=None):
    """Every configured channel, in sending order, with its status (None: never tried). Unconfigured
    channels are left out: a channel nobody set up is not a failure."""
    config = config or AlertSettings.objects.filter(pk=1).first()
    if config is None:
        return []
    rows = {s.channel: s for s in AlertChannelStatus.objects.all()}
    return [ChannelState(channel, rows.get(channel)) for channel in config.channels()]


def failing_channels():
    """The configured channels whose latest attempt failed. One small query on every page; the
    settings are read only when a channel is failing."""
    failing = {s.channel: s for s in AlertChannelStatus.objects.filter(consecutive_failures__gt=0)}
    if not failing:
        return []
    config = AlertSettings.objects.filter(pk=1).first()
    configured = config.channels() if config else []
    return [ChannelState(c, failing[c]) for c in configured if c in failing]
