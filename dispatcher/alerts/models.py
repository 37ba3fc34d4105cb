"""What the alert engine keeps in PostgreSQL, so a worker restart neither re-fires nor forgets.

Imported at the end of dispatcher.models, which is where Django looks for the app's models.
"""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from dispatcher.alerts.validators import recipient_list, validate_recipients, validate_webhook_url
from dispatcher.models import SingletonModel

FIRING, RESOLVED = "firing", "resolved"
NOTICE_STATES = [(FIRING, "Firing"), (RESOLVED, "Resolved")]
WEBHOOK, EMAIL = "webhook", "email"
CHANNELS = [(WEBHOOK, "Webhook"), (EMAIL, "E-mail")]


class AlertSettings(SingletonModel):
    """Where alerts go, which rules run, and their thresholds (Configuration → Alerts, admin only)."""

    webhook_url = models.CharField(
        "webhook URL",
        max_length=500,
        blank=True,
        validators=[validate_webhook_url],
        help_text="POSTed JSON with a Slack/Mattermost `text` field. http:// or https:// only; empty: no webhook.",
    )
    email_recipients = models.TextField(
        "e-mail recipients",
        blank=True,
        validators=[validate_recipients],
        help_text="Comma separated; sent through the EMAIL_* settings. Empty: no e-mail.",
    )
    rules_off = models.JSONField(default=list, blank=True, help_text="Names of the rules that do not run.")
    rate_limit_per_minute = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(600)],
        help_text="Most messages per channel per minute; what is held back goes out summarised in the next one.",
    )
    proxy_silent_seconds = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(3), MaxValueValidator(3600)],
        help_text="A proxy whose last heartbeat is older than this has stopped reporting.",
    )
    shedding_quiet_seconds = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(5), MaxValueValidator(86400)],
        help_text="A proxy that shed no INVITE for this long has stopped shedding.",
    )
    proxy_busy_pct = models.PositiveSmallIntegerField(
        "proxy busy threshold (% of a core)",
        default=85,
        validators=[MinValueValidator(10), MaxValueValidator(100)],
        help_text="A proxy process that used this share of its one CPU core over its last 10 s is at its "
        "limit (next, it sheds new calls with 503): alert, and show it red on Proxies.",
    )
    carrier_answer_rate_min_pct = models.PositiveSmallIntegerField(
        "carrier answer rate minimum (%)",
        default=20,
        validators=[MaxValueValidator(100)],
        help_text="Below this share of calls answered, a carrier alert fires.",
    )
    carrier_failure_rate_max_pct = models.PositiveSmallIntegerField(
        "carrier failure rate maximum (%)",
        default=30,
        validators=[MaxValueValidator(100)],
        help_text="Above this share of calls failed (4xx, 5xx, 6xx, timeout), a carrier alert fires.",
    )
    carrier_min_calls = models.PositiveIntegerField(
        "carrier minimum calls",
        default=20,
        validators=[MinValueValidator(1)],
        help_text="A carrier with fewer calls than this in the window is not judged.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "alert settings"

    def __str__(self):
        return "alert settings"

    @property
    def recipients(self):
        return recipient_list(self.email_recipients)

    def rule_on(self, name):
        return name not in (self.rules_off or [])

    def channels(self):
        """The channels configured now, in sending order."""
        return [c for c, on in ((WEBHOOK, bool(self.webhook_url)), (EMAIL, bool(self.recipients))) if on]

    def clean(self):
        from dispatcher.alerts.registry import rule_names  # noqa: PLC0415 (the registry imports rule modules)

        if not isinstance(self.rules_off, list) or any(name not in rule_names() for name in self.rules_off):
            known = ", ".join(rule_names())
            raise ValidationError({"rules_off": f"Only these rules can be turned off: {known}."})


class AlertEpisode(models.Model):
    """One stretch of time a finding fired: opened once, closed once, so each is told once each way."""

    key = models.CharField(max_length=200, help_text="What the finding is about, e.g. server:3:down.")
    rule = models.CharField(max_length=50)
    title = models.CharField(max_length=255)
    text = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True)
    opened = models.DateTimeField()
    closed = models.DateTimeField(null=True, blank=True)
    last_sent = models.DateTimeField(null=True, blank=True, help_text="When its last notice reached a channel.")

    class Meta:
        ordering = ["-opened", "-id"]
        constraints = [
            # Two evaluations at once cannot both open an episode for one key.
            models.UniqueConstraint(fields=["key"], condition=Q(closed=None), name="alert_one_open_episode_per_key")
        ]

    def __str__(self):
        return f"{self.key} ({'open' if self.closed is None else 'closed'})"


class AlertNotice(models.Model):
    """A thing to tell: an episode opened (firing) or closed (resolved), or a person's test alert."""

    episode = models.ForeignKey(AlertEpisode, null=True, blank=True, on_delete=models.CASCADE, related_name="notices")
    state = models.CharField(max_length=10, choices=NOTICE_STATES)
    rule = models.CharField(max_length=50)
    key = models.CharField(max_length=200)
    title = models.CharField(max_length=255)
    text = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True, help_text="Absolute when PANEL_URL is set.")
    created = models.DateTimeField()

    class Meta:
        ordering = ["created", "id"]

    def __str__(self):
        return f"{self.state}: {self.title}"


class AlertDelivery(models.Model):
    """A notice on one channel: pending until sent (alone or in a digest); retried every round while failing."""

    PENDING, SENT, DROPPED = "pending", "sent", "dropped"

    notice = models.ForeignKey(AlertNotice, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=CHANNELS)
    state = models.CharField(max_length=10, default=PENDING, choices=[(s, s) for s in (PENDING, SENT, DROPPED)])
    sent = models.DateTimeField(null=True, blank=True)
    in_digest = models.BooleanField(default=False, help_text="Sent summarised with others because of the rate limit.")
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, help_text="The last failure, or why it was dropped.")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["channel", "state"])]


class AlertMessage(models.Model):
    """One message that went out on a channel: what the rate limit counts."""

    channel = models.CharField(max_length=10, choices=CHANNELS)
    sent = models.DateTimeField(db_index=True)
    notices = models.PositiveIntegerField(default=1)


class AlertChannelStatus(models.Model):
    """How delivery on one channel went lately: the panel's banner, Configuration → Alerts, /metrics and
    /healthz read it. One row per channel, updated in place on each attempt (the worker's evaluations,
    which try a channel only while it has something to send, and the test button): it never grows.
    Saving another webhook URL or other recipients deletes the row: the new target was never tried."""

    channel = models.CharField(max_length=10, choices=CHANNELS, unique=True)
    last_success = models.DateTimeField(null=True, blank=True)
    last_failure = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(
        max_length=300, blank=True, help_text="Why the last failure failed, without the webhook's secret path."
    )
    consecutive_failures = models.PositiveIntegerField(default=0, help_text="Failed attempts since the last success.")
    failing_since = models.DateTimeField(null=True, blank=True, help_text="The first of the consecutive failures.")
    failures_total = models.PositiveBigIntegerField(default=0, help_text="Every failed attempt (a counter for /metrics).")

    class Meta:
        verbose_name = verbose_name_plural = "alert channel status"

    def __str__(self):
        return f"{self.channel}: {'failing' if self.failing else 'ok'}"

    @property
    def failing(self):
        """The latest attempt failed."""
        return self.consecutive_failures > 0

    @property
    def tried(self):
        return self.last_success is not None or self.last_failure is not None


class AlertMemory(SingletonModel):
    """What rules remember between evaluations (nodes seen, shed counters) and how many evaluations ran."""

    state = models.JSONField(default=dict, blank=True)
    evaluations = models.PositiveBigIntegerField(default=0)
    last_evaluated = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "alert memory"


def proxy_busy_pct():
    """The proxy busy threshold as saved, else its default (a page read must not insert the row)."""
    saved = AlertSettings.objects.filter(pk=1).values_list("proxy_busy_pct", flat=True).first()
    return saved if saved is not None else AlertSettings._meta.get_field("proxy_busy_pct").default
