import hashlib
import ipaddress
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from dispatcher.choices import (
    ADMIN_STATE_COLOUR,
    HEALTH_COLOUR,
    AdminState,
    Algorithm,
    Cause,
    EventKind,
    HealthState,
    LoadMode,
    ProbingMode,
)
from dispatcher.ping_attrs import validate_ping_attrs
from dispatcher.validators import (
    normalise_network,
    parse_codes,
    validate_attr_value,
    validate_codes,
    validate_hep_destination,
    validate_network,
    validate_no_control_characters,
    validate_reply_codes,
    validate_server_header,
    validate_sip_method,
    validate_sip_uri,
)
from lbcore import rules
from lbcore.contract import DEFAULT_SETTINGS, FLAG_DISABLED, FLAG_INACTIVE, FLAG_PROBING
from sip.uri import parse_uri


class DispatcherSet(models.Model):
    setid = models.PositiveIntegerField(unique=True, help_text="The set number, as in dispatcher.list.")
    name = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    algorithm = models.PositiveSmallIntegerField(choices=Algorithm.choices, default=Algorithm.ROUND_ROBIN)
    failover_codes = models.CharField(
        max_length=100,
        default="500,503",
        validators=[validate_codes],
        help_text="Final responses that make the proxy try the next destination, comma separated.",
    )
    load_mode = models.CharField(
        max_length=10,
        choices=LoadMode.choices,
        default=LoadMode.WEIGHTED,
        help_text="Algorithm 10 only: lbpanel weighs active calls by weight; Kamailio's alg 10 counts calls alone.",
    )
    ping_reply_codes = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_reply_codes],
        help_text="Probe replies that count as alive for this set's destinations, besides 2xx and the probe settings' "
        "codes. Kamailio syntax: class=4;code=503.",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["setid"]
        verbose_name = "dispatcher set"

    def __str__(self):
        return f"set {self.setid}" + (f" ({self.name})" if self.name else "")

    @property
    def failover_code_list(self):
        return list(parse_codes(self.failover_codes))


class Server(models.Model):
    """One SIP endpoint (transport, host, port): one Asterisk box, listed in any number of sets.

    Derived from the destinations' URIs whenever one is saved or imported (services.attach_server);
    people act on it (maintenance, drain, calls), while sets and rows stay Kamailio's vocabulary.
    """

    transport = models.CharField(max_length=3, choices=[("udp", "UDP"), ("tcp", "TCP"), ("tls", "TLS")])
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    name = models.CharField(
        max_length=100,
        validators=[validate_no_control_characters],
        help_text="The DUID its destinations agree on, else host:port, until someone names it. Unique, whatever the case.",
    )
    name_edited = models.BooleanField(default=False, help_text="Named by a person: imports no longer rename it.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["transport", "host", "port"],
                name="server_endpoint_unique",
                violation_error_message="There is already a server at this transport, host and port.",
            ),
            # The call lookup (and people) find a server by its name, whatever the case: two servers
            # named alike would make it pick one of them. Names the rows give are kept apart too
            # (lbcore.rules.server_name_choices).
            models.UniqueConstraint(
                Lower("name"),
                name="server_name_unique",
                violation_error_message="There is already a server with this name (names are compared without case).",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def hostport(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def endpoint(self):
        return (self.transport, self.host, self.port)


class Destination(models.Model):
    dset = models.ForeignKey(DispatcherSet, on_delete=models.CASCADE, related_name="destinations", verbose_name="set")
    # Derived from `uri` on every save (services.attach_server), never chosen: hence not editable.
    server = models.ForeignKey(Server, on_delete=models.PROTECT, related_name="destinations", editable=False)
    uri = models.CharField("URI", max_length=255, validators=[validate_sip_uri])
    priority = models.IntegerField(default=0, help_text="Higher first for algorithm 8 and for the initial order.")
    weight = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(1_000_000)])
    rweight = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    duid = models.CharField(
        "DUID", max_length=64, blank=True, validators=[validate_attr_value], help_text="Unique id within the set."
    )
    maxload = models.PositiveIntegerField(default=0, help_text="Most active calls (algorithm 10); 0 = no cap.")
    attrs = models.CharField(
        max_length=1024,
        blank=True,
        validators=[validate_no_control_characters, validate_ping_attrs],
        help_text="The dispatcher.list attributes, kept verbatim so unknown ones round-trip.",
    )
    extra_flags = models.PositiveIntegerField(default=0, help_text="Flag bits other than I, D and P, kept for export.")
    description = models.CharField(max_length=200, blank=True)
    admin_state = models.CharField(max_length=10, choices=AdminState.choices, default=AdminState.ACTIVE)
    probing = models.BooleanField(default=False, help_text="Kamailio's P flag: probed even when probing mode is 0.")
    health = models.CharField(max_length=10, choices=HealthState.choices, default=HealthState.UNKNOWN)
    health_changed = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["dset__setid", "-priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dset", "duid"],
                condition=~Q(duid=""),
                name="destination_duid_unique_in_set",
                violation_error_message="Another destination in this set has this DUID.",
            ),
            models.UniqueConstraint(
                fields=["dset", "uri"],
                name="destination_uri_unique_in_set",
                violation_error_message="This URI is already in this set.",
            ),
        ]

    def __str__(self):
        return self.duid or self.uri

    @property
    def parsed_uri(self):
        return parse_uri(self.uri)

    @property
    def flags(self):
        """The dispatcher.list integer: 1 inactive, 4 disabled, 8 probing, plus any other bits kept."""
        value = self.extra_flags
        if self.admin_state == AdminState.INACTIVE:
            value |= FLAG_INACTIVE
        elif self.admin_state == AdminState.DISABLED:
            value |= FLAG_DISABLED
        if self.probing:
            value |= FLAG_PROBING
        return value

    @property
    def state_letter(self):
        return rules.state_letter(self.admin_state)

    @property
    def state_colour(self):
        return ADMIN_STATE_COLOUR[self.admin_state]

    @property
    def health_colour(self):
        return HEALTH_COLOUR[self.health]

    def clean(self):
        if self.rweight and not 1 <= self.rweight <= 100:
            raise ValidationError({"rweight": "rweight is 1-100 (or 0 for none)."})

    def save(self, *args, **kwargs):
        # Every save, whoever calls it (panel form, API, admin through services.save_config; a
        # command or a test through the ORM): the row belongs to the server its URI names.
        from dispatcher import services  # noqa: PLC0415 (services imports the models)

        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "uri" not in update_fields and "duid" not in update_fields:
            return super().save(*args, **kwargs)  # health, state: the server stays as it is
        previous = services.attach_server(self)
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "server"}
        super().save(*args, **kwargs)
        services.settle_servers({self.server_id, previous})

    def delete(self, *args, **kwargs):
        from dispatcher import services  # noqa: PLC0415 (services imports the models)

        server_id = self.server_id
        result = super().delete(*args, **kwargs)
        services.settle_servers({server_id})
        return result


class SourceRule(models.Model):
    network = models.CharField(
        max_length=64,
        unique=True,
        validators=[validate_network],
        help_text="An address or CIDR, e.g. 203.0.113.10 or 198.51.100.0/24.",
    )
    dset = models.ForeignKey(DispatcherSet, on_delete=models.CASCADE, related_name="source_rules", verbose_name="set")
    description = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["network"]

    def __str__(self):
        return f"{self.network} → set {self.dset.setid}"

    def save(self, *args, **kwargs):
        self.network = normalise_network(self.network)
        super().save(*args, **kwargs)


class SingletonModel(models.Model):
    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def load(cls):
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class ProbeSettings(SingletonModel):
    """Named after Kamailio's dispatcher modparams so its users recognise them."""

    ping_interval = models.PositiveIntegerField(
        default=15, validators=[MinValueValidator(1)], help_text="Seconds between probe rounds (ds_ping_interval)."
    )
    probing_threshold = models.PositiveIntegerField(
        default=3, validators=[MinValueValidator(1)], help_text="Failed probes in a row that take a destination down."
    )
    inactive_threshold = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Good replies in a row that bring it back up."
    )
    ping_reply_codes = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_reply_codes],
        help_text="Extra good replies, Kamailio syntax: code=404;class=2. 200 always counts.",
    )
    ping_method = models.CharField(max_length=20, default="OPTIONS", validators=[validate_sip_method])
    ping_from = models.CharField(max_length=255, default="sip:dispatcher@localhost", validators=[validate_sip_uri])
    ping_timeout_ms = models.PositiveIntegerField(default=2000, validators=[MinValueValidator(50), MaxValueValidator(60000)])
    probing_mode = models.PositiveSmallIntegerField(choices=ProbingMode.choices, default=ProbingMode.ALL)
    recovery_interval = models.PositiveIntegerField(
        default=1,
        validators=[MaxValueValidator(3600)],
        help_text="Probe destinations that are down every this many seconds, between rounds, so a restarted server "
        "is back within seconds (still after inactive_threshold good replies). 0: only in rounds, as Kamailio.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "probe settings"

    def __str__(self):
        return f"every {self.ping_interval}s, down after {self.probing_threshold}"


class ProxySettings(SingletonModel):
    """What every proxy reads from the table's `settings`: timers, trust, the default set."""

    default_set = models.ForeignKey(
        DispatcherSet,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Where INVITEs go when no source rule matches.",
    )
    fr_timer_ms = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["fr_timer_ms"],
        validators=[MinValueValidator(100)],
        help_text="No reply at all within this → timeout (408).",
    )
    fr_inv_timer_ms = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["fr_inv_timer_ms"],
        validators=[MinValueValidator(1000)],
        help_text="No final reply to an INVITE after a provisional within this → timeout.",
    )
    trying_timeout_ms = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["trying_timeout_ms"],
        validators=[MinValueValidator(50)],
        help_text="No 100 Trying within this → the server is suspect, fail over at once.",
    )
    suspect_hold_ms = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["suspect_hold_ms"], help_text="A suspect no probe has cleared is tried again after this."
    )
    trusted_networks = models.TextField(
        default=", ".join(DEFAULT_SETTINGS["trusted_networks"]),
        help_text="Out-of-dialog requests from elsewhere (and no source rule) get 403.",
    )
    server_header = models.CharField(
        max_length=100,
        default=DEFAULT_SETTINGS["server_header"],
        validators=[validate_server_header],
        help_text="Server and User-Agent header text.",
    )
    max_pending_invites = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["max_pending_invites"],
        help_text="Past this many INVITEs awaiting a final reply, new ones get 503 + Retry-After.",
    )
    overload_lag_ms = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["overload_lag_ms"],
        validators=[MinValueValidator(20)],
        help_text="When SIP waits this long unread, the proxy sheds new INVITEs with 503 + Retry-After.",
    )
    retry_after_s = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["retry_after_s"],
        validators=[MaxValueValidator(3600)],
        help_text="Retry-After on the 503s the proxy sends itself.",
    )
    dialog_timeout_s = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["dialog_timeout_s"],
        validators=[MinValueValidator(60)],
        help_text="A call with no BYE stops counting as active after this.",
    )
    tcp_idle_timeout_s = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["tcp_idle_timeout_s"],
        validators=[MinValueValidator(1)],
        help_text="A TCP connection with no traffic either way is closed after this (CRLF keepalives count).",
    )
    tcp_message_timeout_ms = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["tcp_message_timeout_ms"],
        validators=[MinValueValidator(100)],
        help_text="A SIP message begun on TCP must be complete within this, else the connection is closed (slowloris).",
    )
    tcp_max_connections = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["tcp_max_connections"],
        validators=[MinValueValidator(1)],
        help_text="Inbound TCP connections per proxy; each proxy also stays under 3/4 of its open file limit. The last tenth is kept for trusted addresses.",
    )
    tcp_max_per_ip = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["tcp_max_per_ip"],
        validators=[MinValueValidator(1)],
        help_text="Inbound TCP connections from one untrusted address; trusted ones are not held to it.",
    )
    max_transactions = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["max_transactions"],
        validators=[MinValueValidator(100)],
        help_text="Live SIP transactions per proxy (a finished one lingers 32 s); past this every new request gets 503 + Retry-After.",
    )
    max_transactions_per_source = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["max_transactions_per_source"],
        validators=[MinValueValidator(1)],
        help_text="Live SIP transactions from one untrusted address (a party in a dialog we record-routed); trusted ones are not held to it.",
    )
    hep_destination = models.CharField(
        "HEP destination",
        max_length=260,
        blank=True,
        default=DEFAULT_SETTINGS["hep_destination"],
        validators=[validate_hep_destination],
        help_text="HOST:PORT of a Homer / heplify-server / sngrep HEP listener: every proxy copies each SIP message it receives and sends there as HEPv3 over UDP. Empty: no capture.",
    )
    hep_capture_id = models.PositiveBigIntegerField(
        "HEP capture id",
        default=DEFAULT_SETTINGS["hep_capture_id"],
        validators=[MaxValueValidator(0xFFFFFFFF)],  # HEP3 chunk 0x000c is a uint32
        help_text="Capture agent id in each HEP packet, to tell these proxies' copies apart in Homer.",
    )
    call_log_retention_s = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["call_log_retention_s"],
        validators=[MinValueValidator(60)],
        help_text="Call records (the Calls page) older than this are removed.",
    )
    call_log_max = models.PositiveIntegerField(
        default=DEFAULT_SETTINGS["call_log_max"],
        help_text="At most this many call records are kept (the oldest go first); 0 turns call records off.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "proxy settings"

    def __str__(self):
        return "proxy settings"

    @property
    def trusted_network_list(self):
        return [normalise_network(n) for n in self.trusted_networks.replace("\n", ",").split(",") if n.strip()]

    def clean(self):
        for item in self.trusted_networks.replace("\n", ",").split(","):
            if item.strip():
                try:
                    validate_network(item.strip())
                except ValidationError as exc:
                    raise ValidationError({"trusted_networks": exc.messages}) from None


class StateEvent(models.Model):
    """Append-only: every change of admin state, health or configuration. The audit log and the downtime record."""

    destination = models.ForeignKey(Destination, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    # A server's state change is one event for all its rows (services.set_server_state); `before`
    # and `after` hold each set's state.
    server = models.ForeignKey(Server, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    subject = models.CharField(max_length=255, help_text="What changed, kept when the destination is deleted.")
    kind = models.CharField(max_length=10, choices=EventKind.choices)
    old = models.CharField(
        max_length=255,
        blank=True,
        help_text="Short text for people and filters: the state, or a summary of a configuration cut to 255 characters.",
    )
    new = models.CharField(max_length=255, blank=True, help_text="As old; the whole configuration is in before and after.")
    # A configuration change keeps every field, however long the row; the diff shown is computed from these.
    before = models.JSONField(
        null=True,
        blank=True,
        encoder=DjangoJSONEncoder,
        help_text="A configuration change: the fields before it (null: created).",
    )
    after = models.JSONField(
        null=True, blank=True, encoder=DjangoJSONEncoder, help_text="A configuration change: the fields after it (null: deleted)."
    )
    cause = models.CharField(max_length=10, choices=Cause.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["destination", "-created"]), models.Index(fields=["server", "-created"])]

    def __str__(self):
        return f"{self.subject}: {self.old} → {self.new} ({self.cause})"


class ApiToken(models.Model):
    """A user's key for the REST API and JSON-RPC. Only a SHA-256 of the key is kept; the key is shown once."""

    KEY_PREFIX = "lbp_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for, e.g. the script that uses it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False, help_text="The key's first characters, to recognise it.")
    write_enabled = models.BooleanField(default=True, help_text="Off: the token can only read, whatever its user's role.")
    allowed_networks = models.TextField(
        blank=True, help_text="Addresses or CIDRs the token may be used from, comma separated; empty = anywhere."
    )
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(
        null=True, blank=True, help_text="Set when the token was revoked; a revoked token never works again."
    )
    expires = models.DateTimeField(
        null=True, blank=True, help_text="The token stops working at this time; empty = until revoked."
    )

    class Meta:
        ordering = ["-created"]
        verbose_name = "API token"

    def __str__(self):
        return f"{self.prefix}… ({self.user}{', read-only' if not self.write_enabled else ''})"

    @staticmethod
    def hash_key(key):
        return hashlib.sha256(key.encode()).hexdigest()

    def set_new_key(self):
        """Give the token a fresh key; returns the key, which exists only in this return value."""
        key = self.KEY_PREFIX + secrets.token_urlsafe(32)
        self.key_hash, self.prefix = self.hash_key(key), key[:12]
        return key

    def has_expired(self, now):
        return self.expires is not None and self.expires <= now

    @property
    def network_list(self):
        return [normalise_network(n) for n in self.allowed_networks.replace("\n", ",").split(",") if n.strip()]

    def allows_address(self, address):
        networks = self.network_list
        if not networks:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(n) for n in networks)

    def clean(self):
        for item in self.allowed_networks.replace("\n", ",").split(","):
            if item.strip():
                try:
                    validate_network(item.strip())
                except ValidationError as exc:
                    raise ValidationError({"allowed_networks": exc.messages}) from None


class TableRevision(models.Model):
    """The routing table the database wants the proxies to have.

    `number` goes up in the same transaction as every change that alters the table, and each
    publish records in Redis the number it was built from, so a change that committed but never
    reached Redis is visible (pending) and the beat publishes it again until it does.
    The last failed publish is kept here, not in Redis: Redis is what failed.
    """

    number = models.BigIntegerField(default=0)
    publish_error = models.CharField(max_length=500, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"table revision {self.number}"


class WriteCheck(models.Model):
    """One row /healthz updates, so "database ok" means the database takes writes, not only reads."""

    checked = models.DateTimeField()


# The alert engine's models live in their own module; imported here, where Django looks for the app's models.
from dispatcher.alerts.models import AlertDelivery, AlertEpisode, AlertMemory, AlertMessage, AlertNotice, AlertSettings  # noqa: E402, F401
