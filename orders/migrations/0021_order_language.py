import importlib

from django.db import migrations, models

# SQLite adds (and drops) this column by rebuilding the table, which drops the table's triggers: the order status
# transition trigger (0005) is made again after each rebuild, as 0013 does.
recreate_status_trigger = importlib.import_module("orders.migrations.0013_accepted_terms").recreate_status_trigger


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0020_order_lookup"),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, recreate_status_trigger),
        migrations.AddField(
            model_name="order",
            name="language",
            field=models.CharField(blank=True, default="", max_length=8),
        ),
        migrations.RunPython(recreate_status_trigger, migrations.RunPython.noop),
    ]
