"""What the API reads and writes. Writes go through dispatcher.services (see errors.call_service)."""

from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dispatcher import services
from dispatcher.api.errors import Conflict, call_service
from dispatcher.choices import AdminState, Cause, HealthState
from dispatcher.models import Destination, DispatcherSet, ProbeSettings, Server, SourceRule, StateEvent
from dispatcher.validators import normalise_network, validate_network
from lbcore import rules

# Sent by the browsable API's HTML forms beside the fields; not a field, and never refused.
FORM_KEYS = {"csrfmiddlewaretoken"}
# When the object was made or last changed: in every GET body, moved by every write, so a body sent
# back after a change elsewhere carries an old one. Nobody asks to change them by sending them.
STAMPS = {"created", "updated", "health_changed", "admin_changed"}


class RefusesWhatItCannotWrite:
    """A key in a request body that this endpoint cannot write, a read-only field or no field at all,
    is a 400 naming it: DRF would drop it without a word, and a script that sent {"host": ...} to a
    server, or "wieght" to a destination, would get 200 and believe it changed something.

    A read-only field sent with the value it has now is no change asked for, and passes: a script
    that GETs an object, edits one field and PUTs the whole body back keeps working.

    `read_only_reasons` and `unknown_reasons` (field -> message) say why and what to do instead."""

    read_only_reasons = {}
    unknown_reasons = {}

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = [name for name, f in self.fields.items() if not f.read_only]
            errors = {}
            current = None
            for key in data:
                field = self.fields.get(key)
                if key in FORM_KEYS or (field is not None and not field.read_only):
                    continue
                if field is not None and key in STAMPS:
                    continue
                if field is not None and self.instance is not None:
                    if current is None:
                        current = self.to_representation(self.instance)
                    if key in current and current[key] == data[key]:
                        continue  # what it is already: a GET body sent back
                if field is None:
                    errors[key] = [
                        self.unknown_reasons.get(key) or f"No such field here; the fields it takes: {', '.join(writable)}."
                    ]
                else:
                    errors[key] = [self.read_only_reasons.get(key) or "Read-only: the API shows it and cannot change it."]
            if errors:
                # With whatever else is wrong (a field it needs that was misspelt is also missing).
                try:
                    super().to_internal_value(data)
                except serializers.ValidationError as exc:
                    if isinstance(exc.detail, dict):
                        errors = {**errors, **exc.detail}
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class ServiceSaveMixin:
    """create/update through services.save_config, as the panel does, audited with cause=api."""

    def _save(self, instance, validated_data):
        for key, value in validated_data.items():
            setattr(instance, key, value)
        request = self.context["request"]
        return call_service(services.save_config, instance, actor=request.user, cause=Cause.API)

    def create(self, validated_data):
        return self._save(self.Meta.model(), validated_data)

    def update(self, instance, validated_data):
        return self._save(instance, validated_data)

    def conflict_if(self, queryset, field, message):
        if self.instance is not None:
            queryset = queryset.exclude(pk=self.instance.pk)
        if queryset.exists():
            raise Conflict({field: [message]})


class DispatcherSetSerializer(RefusesWhatItCannotWrite, ServiceSaveMixin, serializers.ModelSerializer):
    destination_count = serializers.SerializerMethodField()

    class Meta:
        model = DispatcherSet
        fields = [
            "id",
            "setid",
            "name",
            "description",
            "algorithm",
            "load_mode",
            "failover_codes",
            "ping_reply_codes",
            "destination_count",
            "created",
            "updated",
        ]
        # Uniqueness is checked in validate() so that a clash answers 409, not 400.
        extra_kwargs = {"setid": {"validators": []}}

    @extend_schema_field(OpenApiTypes.INT)
    def get_destination_count(self, dset):
        # The list annotates it (one query for the page); a freshly saved set counts once.
        count = getattr(dset, "destination_count", None)
        return count if count is not None else dset.destinations.count()

    def validate(self, attrs):
        if "setid" in attrs:
            self.conflict_if(DispatcherSet.objects.filter(setid=attrs["setid"]), "setid", f"Set {attrs['setid']} already exists.")
        return attrs


class DestinationSerializer(RefusesWhatItCannotWrite, ServiceSaveMixin, serializers.ModelSerializer):
    set = serializers.SlugRelatedField(
        source="dset", slug_field="setid", queryset=DispatcherSet.objects.all(), help_text="The set's setid."
    )
    flags = serializers.IntegerField(
        read_only=True, help_text="The dispatcher.list flags integer (1 inactive, 4 disabled, 8 probing)."
    )
    kamailio_flags = serializers.SerializerMethodField(help_text="kamcmd letters: A/I/D, T while suspect, P when probed.")
    health = serializers.SerializerMethodField(
        help_text="The health last recorded; unknown for a disabled destination, which nothing probes (health_unknown)."
    )
    health_unknown = serializers.SerializerMethodField(
        help_text="Why health is unknown, when something says: 'not probed — disabled'; else null."
    )
    server = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="The server (/api/v1/servers/{id}/) its URI names: one box, in any number of sets."
    )
    active_calls = serializers.SerializerMethodField(
        help_text="Calls up through this row, summed over live proxies; null when no live proxy can vouch for the count."
    )
    drained = serializers.SerializerMethodField(
        help_text="Whether its server is safe to restart: true only when no set sends the server new calls (no row "
        "active) and it has no call up in any set on any live proxy; null when unknown. A row at 0 calls is not enough: "
        "the box may take or carry calls through another set."
    )

    class Meta:
        model = Destination
        fields = [
            "id",
            "set",
            "uri",
            "duid",
            "priority",
            "weight",
            "rweight",
            "maxload",
            "attrs",
            "description",
            "admin_state",
            "probing",
            "health",
            "health_unknown",
            "health_changed",
            "flags",
            "kamailio_flags",
            "server",
            "active_calls",
            "drained",
            "created",
            "updated",
        ]
        read_only_fields = ["health", "health_changed"]
        validators = []  # the (set, uri) and (set, duid) clashes are 409s, checked in validate()
        extra_kwargs = {
            "weight": {
                "required": False,
                "help_text": "Share of calls in sets using algorithm 4, 9 or 11. Omitted on create: the weight most of "
                "the set's destinations carry, 1 in an empty set, as the panel's form starts with (never 0 by "
                "accident: 0 in a weighted set means a backup, calls only when every destination with a weight "
                "fails, Kamailio's meaning). Kamailio reads 1-100 only: the dispatcher.list export refuses a "
                "larger weight unless told to write it anyway.",
            }
        }

    read_only_reasons = {
        "server": "Read-only: a destination's server is the one its URI names; change uri.",
        "health": "Read-only: health comes from the probes and the proxies; set admin_state to take a destination out.",
        "health_changed": "Read-only: when the probes or the proxies last changed its health.",
        "flags": "Read-only: the dispatcher.list flags come from admin_state and probing; set those.",
        "kamailio_flags": "Read-only: the letters come from admin_state, health and probing; set admin_state or probing.",
    }

    def _known_health(self, dest):
        return rules.known_health(dest.admin_state, rules.effective_health(None, dest.health))

    @extend_schema_field({"type": "string", "enum": list(HealthState.values)})
    def get_health(self, dest):
        return self._known_health(dest).state

    @extend_schema_field({"type": "string", "nullable": True})
    def get_health_unknown(self, dest):
        return rules.unmeasured(dest.admin_state) or None

    @extend_schema_field(OpenApiTypes.STR)
    def get_kamailio_flags(self, dest):
        return rules.flag_letters(dest.admin_state, self._known_health(dest).state, dest.probing)

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_active_calls(self, dest):
        return self.context["live"].destination_calls(dest.id) if "live" in self.context else None

    @extend_schema_field({"type": "boolean", "nullable": True})
    def get_drained(self, dest):
        figures = self.context["live"].server(dest.server_id) if "live" in self.context else None
        return figures.drained if figures is not None else None

    def validate(self, attrs):
        dset = attrs.get("dset", getattr(self.instance, "dset", None))
        if self.instance is None and "weight" not in attrs:
            attrs["weight"] = services.new_destination_weight(dset.pk)
        uri = attrs.get("uri", getattr(self.instance, "uri", None))
        duid = attrs.get("duid", getattr(self.instance, "duid", ""))
        same_set = Destination.objects.filter(dset=dset)
        self.conflict_if(same_set.filter(uri=uri), "uri", f"{uri} is already in set {dset.setid}.")
        if duid:
            self.conflict_if(same_set.filter(duid=duid), "duid", f"Another destination in set {dset.setid} has DUID {duid!r}.")
        return attrs


class SourceRuleSerializer(RefusesWhatItCannotWrite, ServiceSaveMixin, serializers.ModelSerializer):
    set = serializers.SlugRelatedField(
        source="dset", slug_field="setid", queryset=DispatcherSet.objects.all(), help_text="The set's setid."
    )

    class Meta:
        model = SourceRule
        fields = ["id", "network", "set", "description", "created"]
        extra_kwargs = {"network": {"validators": []}}

    def validate_network(self, value):
        # Emptying the field's validators (for the 409) dropped the model's too, so it runs here;
        # then compare in the stored form, so 10.0.0.1 clashes with 10.0.0.1/32.
        try:
            validate_network(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return normalise_network(value)

    def validate(self, attrs):
        if "network" in attrs:
            self.conflict_if(
                SourceRule.objects.filter(network=attrs["network"]), "network", f"There is already a rule for {attrs['network']}."
            )
        return attrs


class ProbeSettingsSerializer(RefusesWhatItCannotWrite, ServiceSaveMixin, serializers.ModelSerializer):
    class Meta:
        model = ProbeSettings
        exclude = ["id"]


class StateEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )  # null: the system, or a command on the host

    class Meta:
        model = StateEvent
        fields = [
            "id",
            "created",
            "destination",
            "server",
            "subject",
            "kind",
            "old",
            "new",
            "before",
            "after",
            "cause",
            "actor",
            "reason",
        ]


class StateChangeSerializer(RefusesWhatItCannotWrite, serializers.Serializer):
    state = serializers.ChoiceField(
        choices=AdminState.choices, help_text="active (A), inactive (I: maintenance) or disabled (D)."
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class DestinationStatsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    set = serializers.IntegerField()
    uri = serializers.CharField()
    duid = serializers.CharField()
    admin_state = serializers.CharField()
    health = serializers.CharField(help_text="unknown for a disabled destination: nothing probes it (see health_unknown).")
    health_unknown = serializers.CharField(
        allow_null=True, help_text="Why health is unknown, when something says: 'not probed — disabled'; else null."
    )
    kamailio_flags = serializers.CharField()
    usable = serializers.BooleanField()
    rtt_ms = serializers.FloatField(allow_null=True)
    active = serializers.IntegerField(
        allow_null=True,
        help_text="Calls up, summed over live proxies; null when no live proxy can vouch for the count (see active_unknown).",
    )
    active_unknown = serializers.CharField(
        allow_null=True, help_text="Why active is null, e.g. 'proxy lb1 restarted at 14:02 with 40 calls up; counts unknown'."
    )
    cps = serializers.FloatField(
        allow_null=True,
        help_text="New calls per second over the last 10 s, summed over live proxies; null while no proxy reports.",
    )
    cps_1m = serializers.FloatField(allow_null=True, help_text="New calls per second over the last minute; null likewise.")
    invites = serializers.IntegerField()
    answered = serializers.IntegerField()
    failovers = serializers.IntegerField()


class SetStatsSerializer(serializers.Serializer):
    setid = serializers.IntegerField()
    name = serializers.CharField()
    destinations = serializers.IntegerField()
    usable = serializers.IntegerField()
    active = serializers.IntegerField(allow_null=True, help_text="null when any of its destinations' counts is unknown.")
    cps = serializers.FloatField(
        allow_null=True,
        help_text="New calls per second over the last 10 s, summed over live proxies; null while no proxy reports.",
    )
    cps_1m = serializers.FloatField(allow_null=True, help_text="New calls per second over the last minute; null likewise.")
    invites = serializers.IntegerField()
    answered = serializers.IntegerField()
    failovers = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    taken_at = serializers.FloatField()
    table_version = serializers.IntegerField(allow_null=True)
    redis_error = serializers.CharField(allow_blank=True)
    nodes = serializers.IntegerField(help_text="Proxies with a live heartbeat, whose counters are summed here.")
    sets = SetStatsSerializer(many=True)
    destinations = DestinationStatsSerializer(many=True)


class NodeLoadSerializer(serializers.Serializer):
    cpu = serializers.FloatField(help_text="Share of one CPU core this proxy process used (0-1): one process uses one core.")
    delay_ms = serializers.FloatField(help_text="Its worst loop lag or receive-queue delay over the window.")
    window_s = serializers.FloatField(help_text="Over how many seconds (up to 10).")
    reader_cpu = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="A worker behind --steering reader: the reader process's share of one core (0-1), which every "
        "datagram from callers passes first; null when the worker could not read it. Absent otherwise.",
    )

    def to_representation(self, instance):
        out = super().to_representation(instance)
        if "reader_cpu" not in instance:  # no reader: absent, where null means a reader not known
            del out["reader_cpu"]
        return out


class NodeSerializer(serializers.Serializer):
    name = serializers.CharField()
    heartbeat = serializers.FloatField(help_text="Epoch seconds of the last heartbeat.")
    age = serializers.FloatField(help_text="Seconds since the last heartbeat.")
    table_version = serializers.IntegerField(allow_null=True, help_text="The routing table version this proxy has applied.")
    behind = serializers.BooleanField(help_text="True when the proxy has not applied the latest published table.")
    started = serializers.FloatField(allow_null=True)
    pid = serializers.IntegerField(allow_null=True)
    listen = serializers.ListField(child=serializers.CharField())
    totals = serializers.DictField(child=serializers.FloatField())
    table_applied_at = serializers.FloatField(allow_null=True, help_text="Epoch seconds (ms kept) this proxy applied its table.")
    propagation_ms = serializers.FloatField(
        allow_null=True, help_text="Its table's published_at to table_applied_at: how long the change took to reach it."
    )
    advertise = serializers.CharField(
        allow_null=True, help_text="HOST:PORT it names in Via and Record-Route; null: its sockets'."
    )
    holds_address = serializers.BooleanField(
        allow_null=True, help_text="Whether the advertised (floating) address is on this node now; null when it cannot tell."
    )
    load = NodeLoadSerializer(allow_null=True, help_text="Its CPU load; null when unknown (load_unknown_why says why).")
    load_level = serializers.ChoiceField(
        choices=rules.LOAD_LEVELS,
        allow_null=True,
        help_text="ok; busy: within 20 points of the alerts' proxy busy threshold; limit: at or past it "
        "(next it sheds new calls with 503). Of the busier of the process and its reader. Null when unknown.",
    )
    load_unknown_why = serializers.CharField(allow_null=True)


class ImportResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    changed = serializers.IntegerField(help_text="How many changes were (or, with dry_run, would be) made.")
    changes = serializers.ListField(child=serializers.CharField(), help_text="+ added, ~ changed, - removed.")
    kept = serializers.ListField(
        child=serializers.CharField(), help_text="Sets replace would delete but something still uses, and why."
    )
    warnings = serializers.ListField(
        child=serializers.CharField(), help_text="Lines a Kamailio would read differently (a weight outside 1-100), by line."
    )


class ImportRequestSerializer(RefusesWhatItCannotWrite, serializers.Serializer):
    text = serializers.CharField(help_text="The dispatcher.list content.", allow_blank=True, trim_whitespace=False)

    unknown_reasons = {
        "dry_run": "dry_run is a query parameter, not part of the body: POST /api/v1/dispatcher.list?dry_run=1.",
        "replace": "replace is a query parameter, not part of the body: POST /api/v1/dispatcher.list?replace=1.",
    }


SERVER_ADMIN_STATES = [*AdminState.values, rules.MIXED]


class ServerSetSerializer(serializers.Serializer):
    setid = serializers.IntegerField()
    destination_id = serializers.IntegerField(help_text="The server's row in this set (/api/v1/destinations/{id}/).")
    admin_state = serializers.ChoiceField(choices=AdminState.choices)
    active_calls = serializers.IntegerField(allow_null=True, help_text="Calls up through this set; null when unknown.")


class ServerSerializer(RefusesWhatItCannotWrite, serializers.ModelSerializer):
    """A server with its live figures; they come from the view's LiveFigures (dispatcher.servers)."""

    name = serializers.CharField(
        max_length=100,
        allow_blank=True,
        help_text="Editable (admin). Unique, whatever the case: a name another server has is refused (409, naming "
        "the field). Empty gives back the DUID its rows agree on, else host:port (or transport:host:port when "
        "another server has that name).",
    )
    admin_state = serializers.SerializerMethodField(help_text="The state its rows share, or mixed (see state_summary).")
    state_summary = serializers.SerializerMethodField(
        help_text="When mixed, which set is in which state: 'maintenance in set 1 only'."
    )
    health = serializers.SerializerMethodField(
        help_text="The worst of its rows' health; a disabled row's is not counted, nothing probes it, so a server "
        "disabled in every set is unknown (see health_unknown)."
    )
    health_unknown = serializers.SerializerMethodField(
        help_text="Why health is unknown, when something says: 'not probed — disabled'; else null."
    )
    rtt_ms = serializers.SerializerMethodField(help_text="The last probe's round trip, in ms; null when none answered.")
    active_calls = serializers.SerializerMethodField(
        help_text="Calls up over every set and live proxy; null when no live proxy can vouch for the count."
    )
    active_unknown = serializers.SerializerMethodField(help_text="Why active_calls is null, else null.")
    cps = serializers.SerializerMethodField(
        help_text="New calls per second over the last 10 s, over every set and live proxy; null while no proxy reports."
    )
    cps_1m = serializers.SerializerMethodField(help_text="The same, averaged over the last minute.")
    drained = serializers.SerializerMethodField(
        help_text="true: no set sends it new calls and no call is up in any set on any live proxy, safe to restart; "
        "false: a set still sends it calls, or calls are up; null: unknown (a proxy that carried its calls is not "
        "reporting, or restarted with calls up)."
    )
    dns_warning = serializers.SerializerMethodField(
        help_text="Set while its host name has stopped resolving on a live proxy: when, why, and the last "
        "known addresses still in use; else null."
    )
    sets = serializers.SerializerMethodField()

    class Meta:
        model = Server
        fields = [
            "id",
            "name",
            "transport",
            "host",
            "port",
            "admin_state",
            "state_summary",
            "health",
            "health_unknown",
            "rtt_ms",
            "active_calls",
            "active_unknown",
            "cps",
            "cps_1m",
            "drained",
            "dns_warning",
            "sets",
        ]
        read_only_fields = ["transport", "host", "port"]

    read_only_reasons = {
        **dict.fromkeys(
            ("transport", "host", "port"),
            "Read-only: a server is the endpoint its destinations' URIs name; change the uri of its destinations "
            "(/api/v1/destinations/), which moves them to the server at the new address.",
        ),
        "admin_state": 'Read-only here: POST /api/v1/servers/{id}/state with {"state": ...} changes it in every set.',
    }

    def _figures(self, server):
        return self.context["live"].server(server.id)

    @extend_schema_field({"type": "string", "enum": SERVER_ADMIN_STATES})
    def get_admin_state(self, server):
        return self._figures(server).admin_state

    @extend_schema_field(OpenApiTypes.STR)
    def get_state_summary(self, server):
        return self._figures(server).state_summary

    @extend_schema_field({"type": "string", "enum": list(HealthState.values)})
    def get_health(self, server):
        return self._figures(server).health

    @extend_schema_field({"type": "string", "nullable": True})
    def get_health_unknown(self, server):
        return self._figures(server).health_unknown or None

    @extend_schema_field({"type": "number", "format": "double", "nullable": True})
    def get_rtt_ms(self, server):
        return self._figures(server).rtt_ms

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_active_calls(self, server):
        return self._figures(server).active_calls

    @extend_schema_field({"type": "string", "nullable": True})
    def get_active_unknown(self, server):
        return self._figures(server).unknown_reason or None

    @extend_schema_field({"type": "number", "format": "double", "nullable": True})
    def get_cps(self, server):
        return self._figures(server).cps

    @extend_schema_field({"type": "number", "format": "double", "nullable": True})
    def get_cps_1m(self, server):
        return self._figures(server).cps_1m

    @extend_schema_field({"type": "boolean", "nullable": True})
    def get_drained(self, server):
        return self._figures(server).drained

    @extend_schema_field({"type": "string", "nullable": True})
    def get_dns_warning(self, server):
        return self._figures(server).dns_warning or None

    @extend_schema_field(ServerSetSerializer(many=True))
    def get_sets(self, server):
        return ServerSetSerializer([vars(s) for s in self._figures(server).sets], many=True).data

    def update(self, server, validated_data):
        request = self.context["request"]
        if "name" in validated_data:
            server = call_service(services.rename_server, server, validated_data["name"], actor=request.user, cause=Cause.API)
        return server
