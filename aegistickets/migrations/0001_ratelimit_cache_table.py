from django.conf import settings
from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations


def create_cache_table(apps, schema_editor):
    """The table of the shared abuse counters when no Redis is configured (settings CACHES["ratelimit"]). Created
    whatever the current configuration, so that dropping Redis later needs no extra step."""
    command = CreateCacheTable()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, settings.RATELIMIT_CACHE_TABLE, dry_run=False)


def drop_cache_table(apps, schema_editor):
    table = schema_editor.connection.ops.quote_name(settings.RATELIMIT_CACHE_TABLE)
    schema_editor.execute(f"DROP TABLE IF EXISTS {table}")


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.RunPython(create_cache_table, drop_cache_table)]
