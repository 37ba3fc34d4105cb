"""The alert settings form: every field validated on the model (errors land on the field), and the
rules shown as checkboxes of the rules that run."""

from django import forms

from dispatcher.alerts.models import AlertSettings
from dispatcher.alerts.registry import RULES
from dispatcher.forms import BoundedModelForm


class AlertSettingsForm(BoundedModelForm):
    rules_on = forms.MultipleChoiceField(
        label="Rules that alert",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="An engine that cannot read Redis always says so.",
    )

    class Meta:
        model = AlertSettings
        fields = [
            "webhook_url",
            "email_recipients",
            "rules_on",
            "rate_limit_per_minute",
            "proxy_silent_seconds",
            "shedding_quiet_seconds",
            "proxy_busy_pct",
            "carrier_answer_rate_min_pct",
            "carrier_failure_rate_max_pct",
            "carrier_min_calls",
        ]
        widgets = {"email_recipients": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rules_on"].choices = [(r.name, r.label) for r in RULES]
        self.initial.setdefault("rules_on", [r.name for r in RULES if self.instance.rule_on(r.name)])

    def save(self, commit=True):
        on = set(self.cleaned_data["rules_on"])
        self.instance.rules_off = [r.name for r in RULES if r.name not in on]
        return super().save(commit=commit)
