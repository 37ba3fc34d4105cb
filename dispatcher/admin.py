from django.contrib import admin, messages
from django.utils import timezone

from dispatcher import services
from dispatcher.choices import Cause
from dispatcher.models import ApiToken, Destination, DispatcherSet, ProbeSettings, ProxySettings, SourceRule, StateEvent


class AuditedAdmin(admin.ModelAdmin):
    """Saves and deletes go through services, so the admin audits and publishes like the panel."""

    def save_model(self, request, obj, form, change):
        services.save_config(obj, actor=request.user, cause=Cause.USER, reason="Django admin")

    def delete_model(self, request, obj):
        services.delete_config(obj, actor=request.user, cause=Cause.USER, reason="Django admin")

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class DestinationInline(admin.TabularInline):
    model = Destination
    fields = ("uri", "duid", "priority", "weight", "admin_state", "health")
    readonly_fields = ("health",)
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DispatcherSet)
class DispatcherSetAdmin(AuditedAdmin):
    list_display = ("setid", "name", "algorithm", "failover_codes", "destination_count")
    list_filter = ("algorithm",)
    search_fields = ("name", "description", "=setid")
    inlines = [DestinationInline]

    @admin.display(description="destinations")
    def destination_count(self, obj):
        return obj.destinations.count()


@admin.register(Destination)
class DestinationAdmin(AuditedAdmin):
    list_display = ("uri", "dset", "duid", "flags_letters", "priority", "weight", "rweight", "maxload", "admin_state", "health")
    list_filter = ("dset", "admin_state", "health", "probing")
    search_fields = ("uri", "duid", "description", "attrs")
    list_select_related = ("dset",)
    readonly_fields = ("health", "health_changed", "created", "updated")
    actions = ["make_active", "make_inactive"]

    @admin.display(description="flags")
    def flags_letters(self, obj):
        return f"{obj.state_letter}{'P' if obj.probing else ''} ({obj.flags})"

    def _set(self, request, queryset, state):
        for dest in queryset:
            services.set_state(dest, state, actor=request.user, cause=Cause.USER, reason="Django admin action")

    @admin.action(description="Set active (A)")
    def make_active(self, request, queryset):
        self._set(request, queryset, "active")

    @admin.action(description="Maintenance: set inactive (I)")
    def make_inactive(self, request, queryset):
        self._set(request, queryset, "inactive")


@admin.register(SourceRule)
class SourceRuleAdmin(AuditedAdmin):
    list_display = ("network", "dset", "description")
    list_filter = ("dset",)
    search_fields = ("network", "description")


@admin.register(ProbeSettings)
class ProbeSettingsAdmin(AuditedAdmin):
    list_display = ("__str__", "ping_interval", "probing_threshold", "inactive_threshold", "ping_reply_codes", "ping_timeout_ms", "probing_mode")

    def has_add_permission(self, request):
        return not ProbeSettings.objects.exists()


@admin.register(ProxySettings)
class ProxySettingsAdmin(AuditedAdmin):
    list_display = ("__str__", "default_set", "fr_timer_ms", "fr_inv_timer_ms", "trying_timeout_ms", "server_header")

    def has_add_permission(self, request):
        return not ProxySettings.objects.exists()


@admin.register(StateEvent)
class StateEventAdmin(admin.ModelAdmin):
    list_display = ("created", "subject", "kind", "old", "new", "cause", "actor", "reason")
    list_filter = ("kind", "cause", "created")
    search_fields = ("subject", "reason", "actor__username")
    date_hierarchy = "created"
    list_select_related = ("actor",)

    # Append-only: the audit log is not edited, from the admin or anywhere.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued here or by `manage.py create_api_token`; the key is shown once, then only its prefix."""

    list_display = ("prefix", "user", "name", "write_enabled", "allowed_networks", "created", "last_used", "revoked")
    list_filter = ("write_enabled", ("revoked", admin.EmptyFieldListFilter))
    search_fields = ("prefix", "name", "user__username")
    list_select_related = ("user",)
    fields = ("user", "name", "write_enabled", "allowed_networks", "prefix", "created", "last_used", "revoked")
    readonly_fields = ("prefix", "created", "last_used", "revoked")
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        key = obj.set_new_key()
        obj.save()
        self.message_user(request, f"The new token's key, shown only now: {key}", messages.WARNING)

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        # Revoked, not deleted: the row keeps who had which token for the audit.
        count = queryset.filter(revoked__isnull=True).update(revoked=timezone.now())
        self.message_user(request, f"{count} token(s) revoked.")
