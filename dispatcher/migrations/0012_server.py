"""Servers: one per SIP endpoint (transport, host, port) the destinations name, each row on its own.

The grouping uses the same rules as every later save (lbcore.rules.server_endpoint, server_name), so
a table migrated here and the same table imported afresh give the same servers and names.
"""

import django.db.models.deletion
from django.db import migrations, models

import dispatcher.validators
from lbcore import rules


def group_destinations(apps, schema_editor):
    Destination = apps.get_model("dispatcher", "Destination")
    Server = apps.get_model("dispatcher", "Server")
    rows = {}
    for dest in Destination.objects.only("id", "uri", "duid"):
        rows.setdefault(rules.server_endpoint(dest.uri), []).append(dest)
    for (transport, host, port), dests in rows.items():
        server = Server.objects.create(
            transport=transport, host=host, port=port, name=rules.server_name([d.duid for d in dests], host, port)
        )
        Destination.objects.filter(pk__in=[d.pk for d in dests]).update(server=server)


class Migration(migrations.Migration):
    dependencies = [("dispatcher", "0011_stateevent_before_after")]

    operations = [
        migrations.CreateModel(
            name="Server",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("transport", models.CharField(choices=[("udp", "UDP"), ("tcp", "TCP")], max_length=3)),
                ("host", models.CharField(max_length=255)),
                ("port", models.PositiveIntegerField()),
                (
                    "name",
                    models.CharField(
                        help_text="The DUID its destinations agree on, else host:port, until someone names it.",
                        max_length=100,
                        validators=[dispatcher.validators.validate_no_control_characters],
                    ),
                ),
                (
                    "name_edited",
                    models.BooleanField(default=False, help_text="Named by a person: imports no longer rename it."),
                ),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("updated", models.DateTimeField(auto_now=True)),
            ],
            options={
                "ordering": ["name", "id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("transport", "host", "port"),
                        name="server_endpoint_unique",
                        violation_error_message="There is already a server at this transport, host and port.",
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="destination",
            name="server",
            field=models.ForeignKey(
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="destinations",
                to="dispatcher.server",
            ),
        ),
        migrations.AddField(
            model_name="stateevent",
            name="server",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="events",
                to="dispatcher.server",
            ),
        ),
        migrations.AddIndex(
            model_name="stateevent",
            index=models.Index(fields=["server", "-created"], name="dispatcher__server__91961a_idx"),
        ),
        migrations.RunPython(group_destinations, migrations.RunPython.noop),
    ]
