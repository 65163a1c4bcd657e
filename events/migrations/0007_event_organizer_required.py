import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Apart from 0006: on PostgreSQL, the events that 0006 gave an organizer leave foreign-key checks pending in
    its transaction, and a table with pending checks cannot be altered in that transaction."""

    dependencies = [
        ("events", "0006_organizer"),
    ]

    operations = [
        migrations.AlterField(
            model_name="event",
            name="organizer",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="events", to="events.organizer"
            ),
        ),
    ]
