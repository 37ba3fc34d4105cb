"""Panel forms. Model forms validate through the model (full_clean), so errors land on the field;
saving always goes through dispatcher.services."""

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.core.validators import MinValueValidator

from dispatcher.choices import ALGORITHM_HELP, PROBE_PRESETS, AdminState, Algorithm, Cause, EventKind, LoadMode
from dispatcher.kamailio_list import ATTRS_WITH_FIELDS, parse_attrs, without_field_attrs
from dispatcher.kamailio_weight import outside_kamailio, weight_problem
from dispatcher.models import Destination, DispatcherSet, ProbeSettings, ProxySettings, SourceRule
from dispatcher.services import new_destination_weight


class BoundedModelForm(forms.ModelForm):
    """A model form whose number fields state the model's minimum, once. Django gives a
    PositiveIntegerField's form field a minimum of 0 and leaves the model's MinValueValidator(1) to
    the model check after it, so -1 was refused with "greater than or equal to 0" and then 0 with
    "greater than or equal to 1". Each number field takes the highest minimum of the two."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if not isinstance(field, forms.IntegerField | forms.FloatField | forms.DecimalField):
                continue
            try:
                model_field = self._meta.model._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            lows = [v.limit_value for v in model_field.validators if type(v) is MinValueValidator]
            if field.min_value is not None:
                lows.append(field.min_value)
            if not lows or max(lows) == field.min_value:
                continue
            field.min_value = max(lows)
            field.validators = [v for v in field.validators if type(v) is not MinValueValidator]
            field.validators.append(MinValueValidator(field.min_value))
            field.widget.attrs["min"] = field.min_value


class StateChangeForm(forms.Form):
    state = forms.ChoiceField(choices=AdminState.choices)
    reason = forms.CharField(required=False, max_length=500, widget=forms.TextInput(attrs={"autocomplete": "off"}))

    def clean(self):
        data = super().clean()
        # Disabling takes a server out of probing too; the next shift needs to know why.
        if data.get("state") == AdminState.DISABLED and not data.get("reason", "").strip():
            self.add_error("reason", "Say why this server is disabled.")
        return data


def algorithm_choices():
    return [(value, f"{label} — {ALGORITHM_HELP[value]}") for value, label in Algorithm.choices]


class DispatcherSetForm(BoundedModelForm):
    algorithm = forms.TypedChoiceField(
        choices=algorithm_choices, coerce=int, widget=forms.RadioSelect, initial=Algorithm.ROUND_ROBIN
    )

    class Meta:
        model = DispatcherSet
        fields = ["setid", "name", "algorithm", "load_mode", "failover_codes", "ping_reply_codes", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {
            "load_mode": "Algorithm 10 only. lbpanel (default): active calls per unit of weight, as the seed describes it. "
            "Kamailio: the fewest active calls, weight ignored, as Kamailio's algorithm 10 does.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["load_mode"].required = False  # a form or script from before it keeps the seed's load

    def clean_load_mode(self):
        return self.cleaned_data.get("load_mode") or LoadMode.WEIGHTED


# Where weight 0 means "only when every other destination fails" (proxy/selection.py): a weight
# of 0 among weighted rows makes a backup, and a weighted row among 0s takes every call. Algorithm 11
# weighs each row by its rweight, and by its weight only where its rweight is 0 (selection.rweight).
WEIGHTED_ALGORITHMS = (Algorithm.ROUND_ROBIN, Algorithm.WEIGHT, Algorithm.RELATIVE_WEIGHT)


def _share(algorithm, weight, rweight):
    """What a row's calls are weighed by in a set using `algorithm`."""
    return (rweight or weight) if algorithm == Algorithm.RELATIVE_WEIGHT else weight


class DestinationForm(BoundedModelForm):
    class Meta:
        model = Destination
        fields = ["dset", "uri", "duid", "priority", "weight", "rweight", "maxload", "attrs", "probing", "description"]
        widgets = {
            "uri": forms.TextInput(attrs={"placeholder": "sip:10.0.0.11:5080", "size": 40}),
            "attrs": forms.TextInput(attrs={"placeholder": "socket=udp:10.0.0.5:5060;ping_from=sip:lb@10.0.0.5", "size": 60}),
        }
        labels = {"attrs": "Attributes (attrs)"}
        help_texts = {
            "attrs": "Kamailio's dispatcher.list attributes, separated by ;. socket and ping_from are used; "
            "others are kept and exported as written. weight, rweight, duid and maxload come from their own fields.",
            "weight": "Share of calls in sets using algorithm 4 or 9 (algorithm 11 uses rweight, and this weight only "
            "for a row whose rweight is 0). 0 there means a backup: calls only when every destination with a weight "
            "fails (Kamailio's meaning). Algorithm 10 counts a row's calls per unit of weight. Kamailio reads 1-100 only: "
            "the dispatcher.list export refuses a larger weight unless told to write it anyway.",
            "rweight": "Share of calls in sets using algorithm 11 (relative weight), 1-100; 0: the row's weight is used.",
        }

    def __init__(self, *args, initial=None, **kwargs):
        super().__init__(*args, initial=initial, **kwargs)
        # A new row starts with the weight its set's rows carry (1 in an empty or unknown set), not the
        # model's 0, which a dispatcher.list line without weight= keeps; the API's default is the same.
        if self.instance.pk is None and "weight" not in (initial or {}):
            self.initial["weight"] = new_destination_weight((initial or {}).get("dset"))
        # The attributes that have their own fields are edited there; save_config writes them back in.
        self.initial["attrs"] = without_field_attrs(self.initial.get("attrs") or "")

    def weight_warning(self):
        """After a save: the weight makes this row a backup, or the only row to get calls, in its set,
        or a Kamailio reading the exported list would ignore it."""
        dest = self.instance
        if outside_kamailio(dest.weight):
            return f"{dest.uri}: {weight_problem(dest.weight)}; the dispatcher.list export refuses it unless written anyway."
        algorithm = dest.dset.algorithm
        if algorithm not in WEIGHTED_ALGORITHMS:
            return ""
        rows = Destination.objects.filter(dset=dest.dset).exclude(pk=dest.pk).values_list("weight", "rweight")
        others = {_share(algorithm, weight, rweight) for weight, rweight in rows}
        if not others:
            return ""
        mine = _share(algorithm, dest.weight, dest.rweight)
        what = "weight 0 and rweight 0" if algorithm == Algorithm.RELATIVE_WEIGHT else "weight 0"
        if mine == 0 and max(others) > 0:
            return f"{dest.uri} has {what}: in set {dest.dset.setid} it gets calls only when every weighted destination fails."
        if mine > 0 and others == {0}:
            return (
                f"{dest.uri} is the only destination with a weight in set {dest.dset.setid}: it gets every call while it is up."
            )
        return ""

    def clean(self):
        # The model's unique constraints would report these without a field; say which field.
        data = super().clean()
        others = Destination.objects.filter(dset=data.get("dset")).exclude(pk=self.instance.pk)
        if data.get("uri") and others.filter(uri=data["uri"]).exists():
            self.add_error("uri", "This URI is already in this set.")
        if data.get("duid") and others.filter(duid=data["duid"]).exists():
            self.add_error("duid", "Another destination in this set has this DUID.")
        self._refuse_field_attrs(data)
        return data

    def _refuse_field_attrs(self, data):
        """weight=50 typed into attrs would be overwritten by the Weight field on save without a word:
        say which field holds it instead."""
        for key, value in parse_attrs(data.get("attrs") or ""):
            field = key.lower()
            if field in ATTRS_WITH_FIELDS:
                label = self.fields[field].label
                self.add_error("attrs", f"{key}={value or ''}: set this in the {label} field, which writes {field}= itself.")


class SourceRuleForm(BoundedModelForm):
    class Meta:
        model = SourceRule
        fields = ["network", "dset", "description"]


class ProbeSettingsForm(BoundedModelForm):
    class Meta:
        model = ProbeSettings
        fields = [
            "ping_interval",
            "probing_threshold",
            "inactive_threshold",
            "ping_reply_codes",
            "ping_method",
            "ping_from",
            "ping_timeout_ms",
            "probing_mode",
            "recovery_interval",
        ]


class ProxySettingsForm(BoundedModelForm):
    class Meta:
        model = ProxySettings
        fields = [
            "default_set",
            "fr_timer_ms",
            "fr_inv_timer_ms",
            "trying_timeout_ms",
            "suspect_hold_ms",
            "trusted_networks",
            "server_header",
            "max_pending_invites",
            "overload_lag_ms",
            "retry_after_s",
            "dialog_timeout_s",
            "tcp_idle_timeout_s",
            "tcp_message_timeout_ms",
            "tcp_max_connections",
            "tcp_max_per_ip",
            "max_transactions",
            "max_transactions_per_source",
            "hep_destination",
            "hep_capture_id",
            "call_log_retention_s",
            "call_log_max",
        ]
        widgets = {"trusted_networks": forms.Textarea(attrs={"rows": 3})}


class ProbePresetForm(forms.Form):
    preset = forms.ChoiceField(choices=[(name, p["label"]) for name, p in PROBE_PRESETS.items()])


class ImportForm(forms.Form):
    text = forms.CharField(
        required=False,
        label="dispatcher.list",
        widget=forms.Textarea(
            attrs={"rows": 12, "spellcheck": "false", "placeholder": "1 sip:10.0.0.11:5080 0 0 weight=50;duid=ast1"}
        ),
    )
    upload = forms.FileField(required=False, label="or upload a file")
    replace = forms.BooleanField(
        required=False, help_text="Make the table exactly this file: destinations not in it are deleted."
    )

    def clean(self):
        data = super().clean()
        upload = data.get("upload")
        if upload:
            if upload.size > 1_000_000:
                self.add_error("upload", "The file is over 1 MB; a dispatcher.list is a few KB.")
                return data
            try:
                data["text"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                self.add_error("upload", "The file is not UTF-8 text.")
                return data
        if not (data.get("text") or "").strip():
            self.add_error("text", "Paste a dispatcher.list or choose a file.")
        return data


class AuditFilterForm(forms.Form):
    destination = forms.ModelChoiceField(
        queryset=Destination.objects.select_related("dset").order_by("dset__setid", "duid", "uri"),
        required=False,
        empty_label="any destination",
    )
    kind = forms.ChoiceField(choices=[("", "any kind"), *EventKind.choices], required=False)
    cause = forms.ChoiceField(choices=[("", "any cause"), *Cause.choices], required=False)
    user = forms.ModelChoiceField(queryset=None, required=False, empty_label="any user")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = get_user_model().objects.order_by("username")
        self.fields["destination"].label_from_instance = lambda d: f"set {d.dset.setid} · {d.duid or d.uri}"

    def filter(self, events):
        if not self.is_valid():
            return events
        data = self.cleaned_data
        if data["destination"]:
            events = events.filter(destination=data["destination"])
        if data["kind"]:
            events = events.filter(kind=data["kind"])
        if data["cause"]:
            events = events.filter(cause=data["cause"])
        if data["user"]:
            events = events.filter(actor=data["user"])
        return events


ROLE_CHOICES = [
    ("viewer", "viewer — read-only"),
    ("operator", "operator — maintenance and drain"),
    ("admin", "admin — everything"),
]


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput, min_length=8)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="viewer")

    def clean_username(self):
        name = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username__iexact=name).exists():
            raise forms.ValidationError("A user with this name exists.")
        return name


class UserRoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)
    active = forms.BooleanField(required=False)
