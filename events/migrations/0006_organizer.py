import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def events_to_a_first_organizer(apps, schema_editor):
    """An existing shop's events go to one organizer, whose members are its staff (superusers see all anyway), so
    nobody loses sight of an event they ran before organizers existed. Renamed in the admin as wanted."""
    Event = apps.get_model("events", "Event")
    if not Event.objects.exists():
        return
    Organizer = apps.get_model("events", "Organizer")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    organizer, _ = Organizer.objects.get_or_create(slug="default", defaults={"name": "Default organizer"})
    organizer.members.add(*User.objects.filter(is_staff=True, is_superuser=False))
    Event.objects.filter(organizer__isnull=True).update(organizer=organizer)


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0005_terms"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Organizer",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=200, unique=True)),
                ("slug", models.SlugField(max_length=100, unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "members",
                    models.ManyToManyField(blank=True, related_name="organizers", to=settings.AUTH_USER_MODEL),
                ),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.AddField(
            model_name="event",
            name="organizer",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="events", to="events.organizer"
            ),
        ),
        migrations.RunPython(events_to_a_first_organizer, migrations.RunPython.noop),
    ]
