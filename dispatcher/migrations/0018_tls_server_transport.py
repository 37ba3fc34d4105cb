"""Servers may be TLS endpoints (sip:...;transport=tls, sips:...).

A sips: URI without a transport parameter meant TCP before TLS was supported; it means TLS now
(RFC 3261 §26.2.2), so the servers such rows are on move to transport "tls".
"""

from django.db import migrations, models

from lbcore import rules


def sips_servers_to_tls(apps, schema_editor):
    Server = apps.get_model("dispatcher", "Server")
    for server in Server.objects.filter(transport="tcp").prefetch_related("destinations"):
        uris = [d.uri for d in server.destinations.all()]
        if uris and all(rules.server_endpoint(uri)[0] == "tls" for uri in uris):
            if not Server.objects.filter(transport="tls", host=server.host, port=server.port).exists():
                Server.objects.filter(pk=server.pk).update(transport="tls")


class Migration(migrations.Migration):
    dependencies = [("dispatcher", "0017_calls_log_settings")]

    operations = [
        migrations.AlterField(
            model_name="server",
            name="transport",
            field=models.CharField(choices=[("udp", "UDP"), ("tcp", "TCP"), ("tls", "TLS")], max_length=3),
        ),
        migrations.RunPython(sips_servers_to_tls, migrations.RunPython.noop),
    ]
