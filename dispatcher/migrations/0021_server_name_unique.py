"""Server names are unique, whatever the case.

The call lookup (/calls/?server=ast4) and people find a server by its name; two servers named alike
made the lookup pick one of them. Duplicates that exist are renamed here rather than refused: the
rows' own names made some (one DUID in two sets, one host:port over UDP and TCP, as 0012 grouped
them), a PATCH made others, and an upgrade that stopped on them would leave the panel down until
someone fixed the names by hand in the database.

Of servers named alike, the one that has had the name longest keeps it (the earliest `updated`: a
server's row changes only when it is named or renamed; then the lowest id). Each other takes the
first name its rows give it that no server holds (lbcore.rules.derive_server_names, as every later
save does) and is no longer "named by a person". Each rename is in the audit log (cause "upgrade",
the reason saying which server kept the name) and printed by `migrate`.
"""

import django.db.models.functions.text
from django.db import migrations, models
from django.utils import timezone

import dispatcher.validators
from lbcore import rules


def _hostport(server):
    return f"[{server.host}]:{server.port}" if ":" in server.host else f"{server.host}:{server.port}"


def rename_duplicates(apps, schema_editor):
    Server = apps.get_model("dispatcher", "Server")
    Destination = apps.get_model("dispatcher", "Destination")
    StateEvent = apps.get_model("dispatcher", "StateEvent")
    keepers, renamed = {}, []
    for server in Server.objects.order_by("updated", "id"):
        key = rules.server_name_key(server.name)
        if key in keepers:
            renamed.append(server)
        else:
            keepers[key] = server
    if not renamed:
        return
    duids = {}
    for server_id, duid in Destination.objects.filter(server__in=renamed).values_list("server_id", "duid"):
        duids.setdefault(server_id, []).append(duid)
    names = rules.derive_server_names(
        ((s.pk, s.name, duids.get(s.pk, []), s.transport, s.host, s.port) for s in renamed), set(keepers)
    )
    now = timezone.now()
    for server in renamed:
        keeper = keepers[rules.server_name_key(server.name)]
        new = names[server.pk]
        reason = (
            f"Server names are unique now, whatever the case: {keeper.transport} {_hostport(keeper)} "
            f"has had the name {keeper.name!r} longer."
        )
        Server.objects.filter(pk=server.pk).update(name=new, name_edited=False, updated=now)
        StateEvent.objects.create(
            subject=f"renamed server {_hostport(server)}",
            kind="config",
            old=server.name,
            new=new,
            before={"name": server.name, "name_edited": server.name_edited},
            after={"name": new, "name_edited": False},
            cause="upgrade",
            reason=reason,
        )
        print(f"\n  server {server.transport} {_hostport(server)} renamed from {server.name!r} to {new!r}: {reason}", end="")


class Migration(migrations.Migration):
    dependencies = [("dispatcher", "0020_alert_delivery_status")]

    operations = [
        migrations.AlterField(
            model_name="server",
            name="name",
            field=models.CharField(
                help_text="The DUID its destinations agree on, else host:port, until someone names it. Unique, whatever the case.",
                max_length=100,
                validators=[dispatcher.validators.validate_no_control_characters],
            ),
        ),
        migrations.AlterField(
            model_name="stateevent",
            name="cause",
            field=models.CharField(
                choices=[
                    ("user", "User"),
                    ("api", "API"),
                    ("probe", "Probe"),
                    ("proxy", "Proxy"),
                    ("import", "Import"),
                    ("alert", "Alert engine"),
                    ("upgrade", "Upgrade"),
                ],
                max_length=10,
            ),
        ),
        migrations.RunPython(rename_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="server",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("name"),
                name="server_name_unique",
                violation_error_message="There is already a server with this name (names are compared without case).",
            ),
        ),
    ]
