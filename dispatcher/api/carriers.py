"""GET /api/v1/carriers/: every carrier's figures (dispatcher.carriers), as the Carriers page shows them."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatcher.api.views import ApiMixin
from dispatcher.carriers import carrier_figures
from lbcore.carriers import FAILURE_CLASSES, RECENT_SECONDS, SETUP_EDGES

# "4xx" is no Python name: the fields are given as a dict
FailuresSerializer = type(
    "FailuresSerializer", (serializers.Serializer,), {cls: serializers.IntegerField() for cls in FAILURE_CLASSES}
)


class RecentSerializer(serializers.Serializer):
    seconds = serializers.IntegerField(help_text="How far back the window reaches (live proxies only).")
    calls = serializers.IntegerField()
    answered = serializers.IntegerField()
    failed = serializers.IntegerField()


class SetupRangeSerializer(serializers.Serializer):
    low = serializers.FloatField(help_text="Seconds: the quantile is above this (0: the first bucket).")
    high = serializers.FloatField(allow_null=True, help_text="Seconds: the quantile is at most this; null past the last edge.")


class CarrierSerializer(serializers.Serializer):
    name = serializers.CharField(help_text='The source rule\'s description (else its network), or "other".')
    networks = serializers.ListField(child=serializers.CharField())
    sets = serializers.ListField(child=serializers.IntegerField(), source="setids")
    defined = serializers.BooleanField(help_text="False: proxies counted calls under this name, but no rule names it now.")
    calls = serializers.IntegerField(help_text="INVITEs given a final response: answered + canceled + redirected + failures.")
    answered = serializers.IntegerField()
    answer_rate = serializers.FloatField(allow_null=True, help_text="answered / calls; null with no calls.")
    canceled = serializers.IntegerField(help_text="487: the caller gave up. Not a failure.")
    redirected = serializers.IntegerField(source="figures.redirected")
    failures = FailuresSerializer(source="failed", help_text="By the final code sent: 4xx, 5xx, 6xx; 408 is timeout.")
    cps = serializers.FloatField(
        allow_null=True, help_text="New INVITEs per second over the last 10 s; null when no proxy reports."
    )
    setup_p50 = serializers.SerializerMethodField(
        help_text="Seconds from INVITE to final response: an upper bound, the median is at most this. Setup times are "
        "counted in buckets (setup_buckets), so this is the top of the bucket the median falls in (setup_p50_range), "
        "never a point inside it. null with no calls, or when the median is past the last bucket edge."
    )
    setup_p95 = serializers.SerializerMethodField(help_text="As setup_p50, for the 95th percentile.")
    setup_p50_range = serializers.SerializerMethodField(
        help_text="The bucket the median setup time falls in: above `low` and at most `high` seconds; `high` null past "
        f"the last edge ({SETUP_EDGES[-1]} s). null with no calls."
    )
    setup_p95_range = serializers.SerializerMethodField(help_text="As setup_p50_range, for the 95th percentile.")
    setup_buckets = serializers.ListField(
        child=serializers.IntegerField(),
        source="figures.setup_buckets",
        help_text=f"Calls by setup time, bucket upper bounds {list(SETUP_EDGES)} s, then the slower ones.",
    )
    recent = serializers.SerializerMethodField()

    @extend_schema_field({"type": "number", "format": "double", "nullable": True})
    def get_setup_p50(self, row):
        return row.setup_p50.high if row.setup_p50 else None

    @extend_schema_field({"type": "number", "format": "double", "nullable": True})
    def get_setup_p95(self, row):
        return row.setup_p95.high if row.setup_p95 else None

    @extend_schema_field(SetupRangeSerializer(allow_null=True))
    def get_setup_p50_range(self, row):
        return row.setup_p50._asdict() if row.setup_p50 else None

    @extend_schema_field(SetupRangeSerializer(allow_null=True))
    def get_setup_p95_range(self, row):
        return row.setup_p95._asdict() if row.setup_p95 else None

    @extend_schema_field(RecentSerializer)
    def get_recent(self, row):
        return {"seconds": RECENT_SECONDS, **row.recent}

    def to_representation(self, row):
        data = super().to_representation(row)
        if not self.context.get("cps_known", True):
            data["cps"] = None
        return data


class NodeSpanSerializer(serializers.Serializer):
    name = serializers.CharField()
    since = serializers.FloatField(help_text="Epoch seconds the proxy process started: its counts are from then.")
    reporting = serializers.BooleanField()
    last_seen = serializers.FloatField(allow_null=True)


class CarriersSerializer(serializers.Serializer):
    partial = serializers.BooleanField(help_text="True: the figures lack something, `why_partial` says what.")
    why_partial = serializers.ListField(child=serializers.CharField())
    nodes = NodeSpanSerializer(many=True)
    carriers = CarrierSerializer(many=True, source="rows")


class CarriersView(ApiMixin, APIView):
    @extend_schema(responses=CarriersSerializer)
    def get(self, request):
        """Per carrier, summed over the proxies since each started: calls, answered, answer rate, failures by
        class, CPS now, setup time p50/p95, and the last minutes' calls for alerting."""
        figures = carrier_figures()
        return Response(CarriersSerializer(figures, context={"cps_known": figures.cps_known}).data)
