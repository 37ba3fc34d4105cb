"""REST API /api/v1/: a few declarative viewsets; every write goes through dispatcher.services."""

from functools import cached_property

from django.db.models import Count
from django.http import HttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatcher import publication, services
from dispatcher.alerts.models import proxy_busy_pct
from dispatcher.api import serializers as s
from dispatcher.api.auth import AUTHENTICATION, RolePermission
from dispatcher.api.errors import call_service
from dispatcher.api.filters import DestinationFilter, StateEventFilter
from dispatcher.api.parsers import JSONParser
from dispatcher.api.schema import ApiSchema
from dispatcher.api.stats import node_rows, stats_document
from dispatcher.choices import Cause
from dispatcher.kamailio_list import DispatcherListError
from dispatcher.kamailio_weight import KamailioWeightRefused
from dispatcher.live import snapshot
from dispatcher.models import Destination, DispatcherSet, ProbeSettings, Server, SourceRule, StateEvent
from dispatcher.roles import ADMIN, OPERATOR
from dispatcher.servers import LiveFigures

DELETED = {204: OpenApiResponse(description="Deleted.")}


class ApiMixin:
    authentication_classes = AUTHENTICATION
    permission_classes = [RolePermission]
    filter_backends = [DjangoFilterBackend]
    schema = ApiSchema()
    # Anything between slashes reaches the view, so a malformed id is DRF's JSON 404, not the site's HTML one.
    lookup_value_regex = "[^/]+"
    write_role = ADMIN


class LiveMixin:
    """Serializers that show live figures, and the publication after a state change, read one snapshot per request."""

    @cached_property
    def live_snapshot(self):
        return snapshot()

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "live": LiveFigures(self.live_snapshot)}


class AuditedDestroyMixin:
    def perform_destroy(self, instance):
        call_service(services.delete_config, instance, actor=self.request.user, cause=Cause.API)


@extend_schema_view(destroy=extend_schema(responses=DELETED))
class DispatcherSetViewSet(ApiMixin, AuditedDestroyMixin, viewsets.ModelViewSet):
    """Dispatcher sets, addressed by their setid as in dispatcher.list."""

    queryset = DispatcherSet.objects.annotate(destination_count=Count("destinations")).order_by("setid")
    serializer_class = s.DispatcherSetSerializer
    lookup_field = "setid"


@extend_schema_view(destroy=extend_schema(responses=DELETED))
class DestinationViewSet(LiveMixin, ApiMixin, AuditedDestroyMixin, viewsets.ModelViewSet):
    """Destinations (Asterisk servers). Changing one needs the admin role; changing its state, operator."""

    queryset = Destination.objects.select_related("dset")
    serializer_class = s.DestinationSerializer
    filterset_class = DestinationFilter
    action_roles = {"state": OPERATOR}

    @extend_schema(request=s.StateChangeSerializer, responses=s.DestinationSerializer)
    @action(detail=True, methods=["post"])
    def state(self, request, pk=None):
        """Set the admin state, as kamcmd dispatcher.set_state a/i/d does; answers the destination as it now is."""
        dest = self.get_object()
        change = s.StateChangeSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        dest = services.set_state(
            dest, change.validated_data["state"], actor=request.user, cause=Cause.API, reason=change.validated_data["reason"]
        )
        pub = publication.status(self.live_snapshot)
        if pub.publish_failed:
            # Saved, but Redis refused the publish: 202, and why (the beat retries until it takes it).
            return Response({**self.get_serializer(dest).data, "applied": False, "detail": pub.message}, status=202)
        return Response(self.get_serializer(dest).data)


class ServerViewSet(
    LiveMixin, ApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    """Servers: one SIP endpoint (transport, host, port), one Asterisk box, with its row in every set.
    Made and removed with the destinations that name them; an admin may rename one, an operator
    puts it into maintenance, disables it or returns it, in every set at once."""

    queryset = Server.objects.all()
    serializer_class = s.ServerSerializer
    filter_backends = []
    http_method_names = ["get", "post", "patch", "head", "options"]
    action_roles = {"state": OPERATOR}

    @extend_schema(request=s.StateChangeSerializer, responses=s.ServerSerializer)
    @action(detail=True, methods=["post"])
    def state(self, request, pk=None):
        """Maintenance (inactive), Disable or Return (active) for the whole server: every set's row at once,
        one audit entry, one publish. Answers the server as it now is."""
        server = self.get_object()
        change = s.StateChangeSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        server = services.set_server_state(
            server, change.validated_data["state"], actor=request.user, cause=Cause.API, reason=change.validated_data["reason"]
        )
        data = self.get_serializer(server).data
        pub = publication.status(self.live_snapshot)
        if pub.publish_failed:
            return Response({**data, "applied": False, "detail": pub.message}, status=202)
        return Response(data)


@extend_schema_view(destroy=extend_schema(responses=DELETED))
class SourceRuleViewSet(ApiMixin, AuditedDestroyMixin, viewsets.ModelViewSet):
    """Which set INVITEs from a source address go to (the seed's carrier check)."""

    queryset = SourceRule.objects.select_related("dset")
    serializer_class = s.SourceRuleSerializer


class ProbeSettingsView(ApiMixin, generics.RetrieveUpdateAPIView):
    """The prober's settings, named after Kamailio's dispatcher modparams."""

    serializer_class = s.ProbeSettingsSerializer

    def get_object(self):
        return ProbeSettings.load()


class StateEventViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    """The audit log: every admin state, health and configuration change, newest first."""

    queryset = StateEvent.objects.select_related("actor")
    serializer_class = s.StateEventSerializer
    filterset_class = StateEventFilter


class NodeViewSet(ApiMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Live proxies: heartbeat age, the table version each has applied, their counters."""

    serializer_class = s.NodeSerializer
    filter_backends = []

    def get_queryset(self):
        return node_rows(snapshot(), proxy_busy_pct())


class StatsView(ApiMixin, APIView):
    @extend_schema(responses=s.StatsSerializer)
    def get(self, request):
        """Per destination and per set: active calls, CPS, answered, failovers, health, RTT, summed over live proxies."""
        return Response(s.StatsSerializer(stats_document(snapshot())).data)


class PlainTextParser(BaseParser):
    media_type = "text/plain"

    def parse(self, stream, media_type=None, parser_context=None):
        charset = (parser_context or {}).get("encoding") or "utf-8"
        try:
            return stream.read().decode(charset)
        except UnicodeDecodeError as exc:
            raise serializers.ValidationError({"text": [f"The body is not {charset} text: {exc}"]}) from None


class ExportQuerySerializer(serializers.Serializer):
    anyway = serializers.BooleanField(
        required=False, default=False, help_text="1: write weights outside Kamailio's 1-100 as they are instead of refusing."
    )


class ImportQuerySerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="1: answer the changes it would make, change nothing."
    )
    replace = serializers.BooleanField(
        required=False, default=False, help_text="1: make the table exactly the file (removes what it lacks)."
    )


class DispatcherListView(ApiMixin, APIView):
    parser_classes = [PlainTextParser, JSONParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        parameters=[ExportQuerySerializer],
        responses={(200, "text/plain"): OpenApiTypes.STR, 409: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        """The whole table in Kamailio's dispatcher.list format; 409 naming the lines whose weight a
        Kamailio would ignore (outside 1-100), unless anyway=1."""
        query = ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            text = services.export_dispatcher_list(anyway=query.validated_data["anyway"])
        except KamailioWeightRefused as exc:
            errors = [{"line": e.lineno, "text": e.text, "message": e.message} for e in exc.errors]
            detail = f"Not exported: Kamailio would ignore the weight on {len(errors)} line(s); anyway=1 writes it as it is."
            return Response({"detail": detail, "errors": errors}, status=status.HTTP_409_CONFLICT)
        return HttpResponse(text, content_type="text/plain; charset=utf-8")

    @extend_schema(
        parameters=[ImportQuerySerializer],
        request={"text/plain": OpenApiTypes.STR, "application/json": s.ImportRequestSerializer},
        responses={200: s.ImportResultSerializer},
    )
    def post(self, request):
        """Import a dispatcher.list (text/plain body, or JSON {"text": ...}); all or nothing, errors by line."""
        query = ImportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        text = self._text(request.data)
        try:
            result = call_service(
                services.import_dispatcher_list,
                text,
                replace=query.validated_data["replace"],
                dry_run=query.validated_data["dry_run"],
                actor=request.user,
                cause=Cause.API,
            )
        except DispatcherListError as exc:
            errors = [{"line": e.lineno, "text": e.text, "message": e.message} for e in exc.errors]
            return Response(
                {"detail": f"Nothing imported: {len(errors)} bad line(s).", "errors": errors}, status=status.HTTP_400_BAD_REQUEST
            )
        return Response(
            {
                "dry_run": result.dry_run,
                "changed": len(result.changes),
                "changes": result.changes,
                "kept": result.kept,
                "warnings": result.warnings,
            }
        )

    def _text(self, data):
        if isinstance(data, str):
            text = data
        else:
            body = s.ImportRequestSerializer(data=data)
            body.is_valid(raise_exception=True)
            text = body.validated_data["text"]
        if "\x00" in text:
            raise serializers.ValidationError({"text": ["The list contains a NUL character."]})
        return text
