# Its own migration: PostgreSQL will not alter a table with the grouping's updates pending in the same transaction.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("dispatcher", "0012_server")]

    operations = [
        migrations.AlterField(
            model_name="destination",
            name="server",
            field=models.ForeignKey(
                editable=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="destinations",
                to="dispatcher.server",
            ),
        ),
    ]
