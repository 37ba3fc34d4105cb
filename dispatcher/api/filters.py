"""Query filters for list endpoints, named as people ask: ?set=1&state=inactive&duid=ast1."""

import django_filters
from django.db.models import Q

from dispatcher.choices import AdminState, Cause, EventKind, HealthState
from dispatcher.models import Destination, StateEvent


class DestinationFilter(django_filters.FilterSet):
    set = django_filters.NumberFilter(field_name="dset__setid", help_text="The set's setid.")
    state = django_filters.ChoiceFilter(field_name="admin_state", choices=AdminState.choices)
    health = django_filters.ChoiceFilter(
        choices=HealthState.choices, method="filter_health", help_text="As `health` reads: a disabled row is unknown."
    )
    duid = django_filters.CharFilter()
    uri = django_filters.CharFilter()

    class Meta:
        model = Destination
        fields = ["set", "state", "health", "duid", "uri", "probing", "server"]

    def filter_health(self, queryset, name, value):
        # lbcore.rules.known_health: nothing probes a disabled row, so its recorded health is not its health
        disabled = Q(admin_state=AdminState.DISABLED)
        if value == HealthState.UNKNOWN:
            return queryset.filter(Q(health=value) | disabled)
        return queryset.filter(health=value).exclude(disabled)


class StateEventFilter(django_filters.FilterSet):
    set = django_filters.NumberFilter(field_name="destination__dset__setid", help_text="The destination's setid.")
    kind = django_filters.ChoiceFilter(choices=EventKind.choices)
    cause = django_filters.ChoiceFilter(choices=Cause.choices)
    actor = django_filters.CharFilter(field_name="actor__username")
    since = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="lt")

    class Meta:
        model = StateEvent
        fields = ["destination", "server", "set", "kind", "cause", "actor", "since", "until"]
