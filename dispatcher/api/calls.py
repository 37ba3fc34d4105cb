"""GET /api/v1/calls/ and /api/v1/calls/<call_id>/: the call log (dispatcher.calls), viewer role."""

from drf_spectacular.utils import extend_schema
from redis.exceptions import RedisError
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatcher import calls
from dispatcher.api.auth import AUTHENTICATION, RolePermission
from dispatcher.api.schema import ApiSchema
from dispatcher.live import snapshot
from dispatcher.redis_client import get_redis
from lbcore.calls import CALL_ID_MAX


class RedisUnavailable(APIException):
    status_code = 503
    default_detail = "Redis, where call records are kept, cannot be read now."


class CallQuerySerializer(serializers.Serializer):
    call_id = serializers.CharField(required=False, max_length=CALL_ID_MAX, help_text="Exact Call-ID.")
    number = serializers.CharField(required=False, max_length=64, help_text="Part of the From or To user (substring).")
    server = serializers.CharField(required=False, max_length=100, help_text="Server id or name: calls that tried it.")
    carrier = serializers.CharField(required=False, max_length=120, help_text="Carrier name (case-insensitive), or 'other'.")
    final_code = serializers.CharField(required=False, max_length=3, help_text="503, or a class: 5xx.")
    since = serializers.DateTimeField(required=False, help_text="Setups recorded at or after this (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Setups recorded at or before this (ISO 8601).")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=calls.LIMIT_MAX, default=50)

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise ValidationError({"until": ["Must not be before since."]})
        return attrs


class AttemptSerializer(serializers.Serializer):
    server = serializers.CharField(help_text="The server's name now; its URI when it no longer exists.")
    server_id = serializers.IntegerField(allow_null=True)
    destination_id = serializers.IntegerField()
    uri = serializers.CharField(help_text="The destination URI when the call was made.")
    code = serializers.IntegerField(allow_null=True, help_text="Its final reply; null: none (see reason).")
    ms = serializers.IntegerField(help_text="From sending the INVITE to its final reply, or to giving up on it.")
    reason = serializers.CharField(help_text="Why there was no final reply (timeout, ICMP, cancelled); empty otherwise.")


class CallSerializer(serializers.Serializer):
    call_id = serializers.CharField()
    started = serializers.DateTimeField(help_text="When the INVITE reached the proxy.")
    node = serializers.CharField(help_text="The proxy that carried it.")
    source = serializers.CharField(help_text="ip:port it came from.")
    carrier = serializers.CharField()
    set = serializers.IntegerField(allow_null=True)
    why = serializers.CharField(help_text="'rule <network>' or 'default': how the set was chosen.")
    from_user = serializers.CharField(allow_blank=True)
    to_user = serializers.CharField(allow_blank=True)
    final_code = serializers.IntegerField(allow_null=True)
    canceled = serializers.BooleanField()
    setup_ms = serializers.IntegerField(allow_null=True, help_text="INVITE in to final response out.")
    answered = serializers.BooleanField()
    state = serializers.ChoiceField(
        ["failed", "up", "ended", "unknown"],
        help_text="up: answered, no BYE recorded yet; unknown: no end recorded though dialog_timeout_s has passed (its record was lost).",
    )
    duration_s = serializers.FloatField(allow_null=True, help_text="Answer to BYE; null while up or when not answered.")
    ended = serializers.DateTimeField(allow_null=True)
    ended_by = serializers.CharField(allow_null=True, help_text="caller, callee or expired (dialog_timeout).")
    attempts = AttemptSerializer(many=True, help_text="Servers in the order tried.")


class CallListSerializer(serializers.Serializer):
    results = CallSerializer(many=True)
    truncated = serializers.BooleanField(
        help_text="The scan stopped before the start of the range: older calls were not looked at."
    )
    searched_until = serializers.DateTimeField(allow_null=True, help_text="When truncated: the oldest time looked at.")
    more = serializers.BooleanField(help_text="Stopped at `limit` matches: older calls may match too.")
    scanned = serializers.IntegerField(help_text="Records looked at.")
    oldest_record = serializers.DateTimeField(allow_null=True, help_text="The oldest record kept (retention).")
    dropped_records = serializers.IntegerField(
        help_text="Records the live proxies lost (Redis away too long) since they started."
    )


class CallsMixin:
    authentication_classes = AUTHENTICATION
    permission_classes = [RolePermission]
    schema = ApiSchema()

    def redis_call(self, fn, *args, **kwargs):
        try:
            return fn(get_redis(), *args, **kwargs)
        except RedisError as exc:
            raise RedisUnavailable() from exc


def filters_from(data):
    """calls.Filters from validated query data; a bad server or code is a 400 naming its field."""
    try:
        server_ids = dest_ids = None
        if data.get("server"):
            server_ids, dest_ids = calls.server_filter(data["server"])
        return calls.Filters(
            call_id=data.get("call_id", ""),
            number=data.get("number", "").strip(),
            server_ids=server_ids,
            destination_ids=dest_ids,
            carrier=data.get("carrier", "").strip(),
            final_code=calls.check_code(data.get("final_code", "")),
            since=data.get("since"),
            until=data.get("until"),
        )
    except calls.FilterError as exc:
        raise ValidationError({exc.field: [exc.message]}) from None


class CallListView(CallsMixin, APIView):
    @extend_schema(parameters=[CallQuerySerializer], responses=CallListSerializer)
    def get(self, request):
        """Calls newest first, filtered; says when the search could not cover the whole range."""
        query = CallQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = filters_from(query.validated_data)
        result = self.redis_call(calls.search, found, limit=query.validated_data["limit"], dialog_timeout=calls.dialog_timeout())
        calls.name_servers(result.calls)
        doc = {
            "results": result.calls,
            "truncated": result.truncated,
            "searched_until": result.searched_until,
            "more": result.more,
            "scanned": result.scanned,
            "oldest_record": result.oldest_record,
            "dropped_records": calls.dropped_records(snapshot()),
        }
        return Response(CallListSerializer(doc).data)


class CallDetailView(CallsMixin, APIView):
    @extend_schema(responses=CallSerializer)
    def get(self, request, call_id):
        """The newest call with this Call-ID, with its attempts in order."""
        call, result = self.redis_call(calls.find_call, call_id, calls.dialog_timeout())
        if call is None:
            where = f" (searched back to {result.searched_until:%H:%M:%S} UTC only)" if result.truncated else ""
            raise NotFound(f"No call with this Call-ID in the call records{where}.")
        calls.name_servers([call])
        return Response(CallSerializer(call).data)
