from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse

from dispatcher import services
from dispatcher.choices import Cause
from dispatcher.forms import BoundedModelForm
from dispatcher.models import ApiToken, Destination, DispatcherSet, ProbeSettings, ProxySettings, Server, SourceRule, StateEvent
from lbcore import rules


class AuditedAdmin(admin.ModelAdmin):
    """Saves and deletes go through services, so the admin audits and publishes like the panel."""

    form = BoundedModelForm  # one minimum per number field, as in the panel

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
    actions = ["delete_sets"]

    @admin.display(description="destinations")
    def destination_count(self, obj):
        return obj.destinations.count()

    # Only a set nothing uses can go (services.delete_set): what keeps one is said as a message,
    # where Django would list the destinations and rules it was about to delete with it.
    def delete_view(self, request, object_id, extra_context=None):
        dset = self.get_object(request, unquote(object_id))
        refused = services.why_set_stays(dset) if dset is not None else []
        if refused:
            self.message_user(request, f"Could not delete {dset}: {' '.join(refused)}", messages.ERROR)
            return redirect(reverse("admin:dispatcher_dispatcherset_change", args=[dset.pk]))
        return super().delete_view(request, object_id, extra_context)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would say "deleted" of sets the rule keeps
        return actions

    @admin.action(description="Delete selected sets nothing uses", permissions=["delete"])
    def delete_sets(self, request, queryset):
        deleted = 0
        for dset in queryset:
            try:
                services.delete_config(dset, actor=request.user, cause=Cause.USER, reason="Django admin")
            except services.SetInUse as exc:
                self.message_user(request, f"Could not delete {dset}: {exc}", messages.ERROR)
            else:
                deleted += 1
        if deleted:
            self.message_user(request, f"{deleted} set(s) deleted.")


@admin.register(Destination)
class DestinationAdmin(AuditedAdmin):
    list_display = ("uri", "dset", "duid", "flags_letters", "priority", "weight", "rweight", "maxload", "admin_state", "health")
    list_filter = ("dset", "admin_state", "health", "probing")
    search_fields = ("uri", "duid", "description", "attrs")
    list_select_related = ("dset",)
    readonly_fields = ("server", "health", "health_changed", "created", "updated")
    actions = ["make_active", "make_inactive"]

    def get_changeform_initial_data(self, request):
        # A new row's weight as the panel's form and the API give it, not the model's 0 (a backup).
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("weight", services.new_destination_weight(initial.get("dset")))
        return initial

    @admin.display(description="flags")
    def flags_letters(self, obj):
        return f"{rules.flag_letters(obj.admin_state, None, obj.probing)} ({obj.flags})"

    def _set(self, request, queryset, state):
        for dest in queryset:
            services.set_state(dest, state, actor=request.user, cause=Cause.USER, reason="Django admin action")

    @admin.action(description="Set active (A)")
    def make_active(self, request, queryset):
        self._set(request, queryset, "active")

    @admin.action(description="Maintenance: set inactive (I)")
    def make_inactive(self, request, queryset):
        self._set(request, queryset, "inactive")


class ServerAdminForm(forms.ModelForm):
    class Meta:
        model = Server
        fields = ["name"]

    def clean_name(self):
        # Names are unique whatever the case; the constraint alone would say so above the form, unnamed.
        name = self.cleaned_data["name"]
        try:
            services.check_server_name_free(self.instance, name.strip())
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["name"]) from None
        return name


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):
    """Servers come and go with the destinations that name them; here they are renamed, and put into
    maintenance, disabled or returned in every set at once (services.set_server_state)."""

    list_display = ("name", "transport", "hostport", "sets", "admin_state", "name_edited")
    list_filter = ("transport", "name_edited")
    search_fields = ("name", "host", "destinations__duid")
    form = ServerAdminForm
    fields = ("name", "transport", "host", "port", "name_edited", "created", "updated")
    readonly_fields = ("transport", "host", "port", "name_edited", "created", "updated")
    actions = ["make_active", "make_inactive", "make_disabled"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("destinations__dset").distinct()

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="address")
    def hostport(self, obj):
        return obj.hostport

    @admin.display(description="sets")
    def sets(self, obj):
        return ", ".join(str(d.dset.setid) for d in obj.destinations.all())

    @admin.display(description="admin state")
    def admin_state(self, obj):
        return rules.server_admin_state(d.admin_state for d in obj.destinations.all())

    def save_model(self, request, obj, form, change):
        services.rename_server(obj, obj.name, actor=request.user, cause=Cause.USER, reason="Django admin")

    def _set(self, request, queryset, state):
        for server in queryset:
            services.set_server_state(server, state, actor=request.user, cause=Cause.USER, reason="Django admin action")

    @admin.action(description="Return: set active (A) in every set")
    def make_active(self, request, queryset):
        self._set(request, queryset, "active")

    @admin.action(description="Maintenance: set inactive (I) in every set")
    def make_inactive(self, request, queryset):
        self._set(request, queryset, "inactive")

    @admin.action(description="Disable (D) in every set")
    def make_disabled(self, request, queryset):
        self._set(request, queryset, "disabled")


@admin.register(SourceRule)
class SourceRuleAdmin(AuditedAdmin):
    list_display = ("network", "dset", "description")
    list_filter = ("dset",)
    search_fields = ("network", "description")


@admin.register(ProbeSettings)
class ProbeSettingsAdmin(AuditedAdmin):
    list_display = (
        "__str__",
        "ping_interval",
        "probing_threshold",
        "inactive_threshold",
        "ping_reply_codes",
        "ping_timeout_ms",
        "probing_mode",
    )

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
    """Tokens are issued here or by `manage.py create_api_token`; the key is shown once, then only its prefix.
    Issuing, editing and revoking go through services, so each is in the audit log."""

    list_display = ("prefix", "user", "name", "write_enabled", "allowed_networks", "created", "expires", "last_used", "revoked")
    list_filter = ("write_enabled", ("revoked", admin.EmptyFieldListFilter), ("expires", admin.EmptyFieldListFilter))
    search_fields = ("prefix", "name", "user__username")
    list_select_related = ("user",)
    fields = ("user", "name", "write_enabled", "allowed_networks", "expires", "prefix", "created", "last_used", "revoked")
    readonly_fields = ("prefix", "created", "last_used", "revoked")
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        # A token keeps its user: handing a key to someone else is a new token.
        return self.readonly_fields + (("user",) if obj is not None else ())

    def save_model(self, request, obj, form, change):
        if change:
            services.update_token(obj, actor=request.user, reason="Django admin")
            return
        token, key = services.issue_token(
            obj.user,
            actor=request.user,
            reason="Django admin",
            name=obj.name,
            write_enabled=obj.write_enabled,
            allowed_networks=obj.allowed_networks,
            expires=obj.expires,
        )
        obj.pk = token.pk  # the admin's "added" message and redirect need the saved row
        self.message_user(request, f"The new token's key, shown only now: {key}", messages.WARNING)

    def delete_model(self, request, obj):
        services.revoke_token(obj, actor=request.user, reason="Django admin: delete means revoke")

    def delete_queryset(self, request, queryset):
        for token in queryset.select_related("user"):
            self.delete_model(request, token)

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        count = sum(services.revoke_token(t, actor=request.user, reason="Django admin") for t in queryset.select_related("user"))
        self.message_user(request, f"{count} token(s) revoked.")


class AuditedUserAdmin(UserAdmin):
    """Django's user admin, with the acting admin handed to the account audit (dispatcher.signals)
    and role, superuser and active changes recorded as the panel records them."""

    def get_object(self, request, object_id, from_field=None):
        # Also the object of the password change view: its set_password + save is then audited with the actor.
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._lbpanel_actor = request.user
            obj._lbpanel_before = services.account_state(obj)
        return obj

    def save_model(self, request, obj, form, change):
        obj._lbpanel_actor = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)  # groups are saved here, after the user
        person = form.instance
        before = getattr(person, "_lbpanel_before", None)
        if change and before is not None and before != services.account_state(person):
            services.record_account_change(person, before, actor=request.user, reason="Django admin")


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), AuditedUserAdmin)
